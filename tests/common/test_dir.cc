#include "tests/common/test_dir.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/executor.h"
#include "runtime/onnx_import.h"
#include "runtime/onnx_tensor.h"
#include "runtime/passes/passes.h"

namespace slimserve::tests {
namespace {

namespace fs = std::filesystem;
using runtime::DataType;
using runtime::Tensor;

std::vector<fs::path> SortedEntries(const fs::path& dir, const std::string& prefix) {
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().rfind(prefix, 0) == 0) entries.push_back(e.path());
  }
  // input_10 after input_9.
  std::sort(entries.begin(), entries.end(), [](const fs::path& a, const fs::path& b) {
    const std::string sa = a.filename().string(), sb = b.filename().string();
    return sa.size() != sb.size() ? sa.size() < sb.size() : sa < sb;
  });
  return entries;
}

// "" when close enough; else what differs. Updates `max_abs_diff`.
std::string Compare(const Tensor& got, const Tensor& want, double rtol, double atol,
                    double* max_abs_diff) {
  if (got.dtype() != want.dtype()) {
    return absl::StrCat("type ", runtime::DataTypeName(got.dtype()), " instead of ",
                        runtime::DataTypeName(want.dtype()));
  }
  if (got.shape() != want.shape()) {
    return absl::StrCat("shape ", runtime::ShapeToString(got.shape()), " instead of ",
                        runtime::ShapeToString(want.shape()));
  }
  std::string first;
  for (int64_t i = 0; i < want.num_elements(); ++i) {
    const double g = got.GetDouble(i), w = want.GetDouble(i);
    if (std::isnan(w) && std::isnan(g)) continue;
    if (std::isinf(w) && g == w) continue;
    const double diff = std::fabs(g - w);
    *max_abs_diff = std::max(*max_abs_diff, std::isnan(diff) ? INFINITY : diff);
    if (!(diff <= atol + rtol * std::fabs(w)) && first.empty()) {
      first = absl::StrCat("element ", i, " is ", g, ", expected ", w);
    }
  }
  return first;
}

// Failure, or a skip for Unimplemented.
DirTestResult FromStatus(const absl::Status& s) {
  return {s.code() == absl::StatusCode::kUnimplemented ? Outcome::kSkipped : Outcome::kFailed,
          std::string(s.message())};
}

// The suite stores bfloat16 and float16 tensors as their uint16 bits: read
// them as the type `like` has.
Tensor Relabeled(const Tensor& t, DataType like) {
  if (t.dtype() == DataType::kUint16 && runtime::IsHalfFloat(like)) {
    return Tensor::View(like, t.shape(), const_cast<void*>(t.raw_data())).Clone();
  }
  return t;
}

}  // namespace

DirTestResult RunTestDir(const fs::path& dir, const DirTestOptions& options) {
  absl::StatusOr<runtime::Graph> graph =
      runtime::ImportOnnxFile((dir / "model.onnx").string(), runtime::ImportOptions{});
  if (!graph.ok()) return FromStatus(graph.status());
  if (options.optimize) {
    const absl::Status optimized = runtime::Optimize(*graph, {});
    if (!optimized.ok()) return FromStatus(optimized);
  }
  const std::vector<runtime::ValueInfo> inputs = graph->inputs;
  runtime::ExecutorOptions executor_options;
  executor_options.num_threads = 2;
  if (options.backends != nullptr) executor_options.backends = options.backends->pointers();
  auto executor = runtime::Executor::Create(*std::move(graph), executor_options);
  if (!executor.ok()) return FromStatus(executor.status());

  const auto sets = SortedEntries(dir, "test_data_set_");
  if (sets.empty()) return {Outcome::kFailed, "no test_data_set folder"};
  DirTestResult result;
  for (const fs::path& set : sets) {
    std::vector<Tensor> feeds;
    for (const fs::path& p : SortedEntries(set, "input_")) {
      absl::StatusOr<Tensor> t = runtime::ReadTensorProtoFile(p.string());
      if (!t.ok()) return FromStatus(t.status());
      const size_t k = feeds.size();
      feeds.push_back(k < inputs.size() ? Relabeled(*t, inputs[k].dtype) : *t);
    }
    if (feeds.size() != inputs.size()) {
      return FromStatus(absl::UnimplementedError(absl::StrCat(
          "test feeds ", feeds.size(), " inputs, the graph declares ", inputs.size())));
    }
    absl::StatusOr<std::vector<Tensor>> outputs = (*executor)->Run(feeds);
    if (!outputs.ok()) return FromStatus(outputs.status());
    const auto expected = SortedEntries(set, "output_");
    if (expected.size() != outputs->size()) {
      return {Outcome::kFailed, absl::StrCat(outputs->size(), " outputs, expected ", expected.size())};
    }
    for (size_t k = 0; k < expected.size(); ++k) {
      absl::StatusOr<Tensor> want = runtime::ReadTensorProtoFile(expected[k].string());
      if (!want.ok()) return FromStatus(want.status());
      const Tensor& got = (*outputs)[k];
      const std::string diff = Compare(got, Relabeled(*want, got.dtype()), options.rtol,
                                       options.atol, &result.max_abs_diff);
      if (!diff.empty()) {
        result.outcome = Outcome::kFailed;
        result.reason = absl::StrCat(set.filename().string(), " output ", k, ": ", diff);
        return result;
      }
    }
  }
  return result;
}

}  // namespace slimserve::tests
