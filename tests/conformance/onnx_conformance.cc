// Runs ONNX's conformance suite (libonnx-testdata) against the runtime.
//
// Every test folder holds model.onnx and test_data_set_N/{input,output}_K.pb.
// A test is skipped, with its reason, when the model needs an operator or a
// type the runtime does not support (an Unimplemented status); any other
// error or a mismatch is a failure. One summary line per suite folder.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "runtime/executor.h"
#include "runtime/onnx_import.h"
#include "runtime/onnx_tensor.h"
#include "runtime/status_macros.h"

namespace fs = std::filesystem;
using namespace slimserve::runtime;

namespace {

constexpr char kUsage[] =
    "usage: onnx_conformance [options]\n"
    "  --data DIR             suite root (default /usr/share/libonnx-testdata/data)\n"
    "  --folders A,B          suite folders (default node,pytorch-converted,pytorch-operator,simple)\n"
    "  --filter TEXT          only tests whose name contains TEXT\n"
    "  --expected-failures F  file of 'test_name reason' lines allowed to fail\n"
    "  --min-passed N         fail unless at least N tests pass\n"
    "  --verbose              print every test's result and every skip reason\n";

struct Options {
  std::string data = "/usr/share/libonnx-testdata/data";
  std::vector<std::string> folders = {"node", "pytorch-converted", "pytorch-operator", "simple"};
  std::string filter;
  std::string expected_failures;
  int64_t min_passed = 0;
  bool verbose = false;
};

enum class Outcome { kPassed, kFailed, kSkipped };

struct Result {
  Outcome outcome;
  std::string reason;
};

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

std::string Compare(const Tensor& got, const Tensor& want, double rtol, double atol) {
  if (got.dtype() != want.dtype()) {
    return absl::StrCat("type ", DataTypeName(got.dtype()), " instead of ", DataTypeName(want.dtype()));
  }
  if (got.shape() != want.shape()) {
    return absl::StrCat("shape ", ShapeToString(got.shape()), " instead of ", ShapeToString(want.shape()));
  }
  for (int64_t i = 0; i < want.num_elements(); ++i) {
    const double g = got.GetDouble(i), w = want.GetDouble(i);
    if (std::isnan(w) && std::isnan(g)) continue;
    if (std::isinf(w) && g == w) continue;
    if (!(std::fabs(g - w) <= atol + rtol * std::fabs(w))) {
      return absl::StrCat("element ", i, " is ", g, ", expected ", w);
    }
  }
  return "";
}

Result Skip(const absl::Status& s) { return {Outcome::kSkipped, std::string(s.message())}; }
Result Fail(const std::string& why) { return {Outcome::kFailed, why}; }

Result RunTest(const fs::path& dir) {
  absl::StatusOr<Graph> graph = ImportOnnxFile((dir / "model.onnx").string(), ImportOptions{});
  if (!graph.ok()) {
    if (graph.status().code() == absl::StatusCode::kUnimplemented) return Skip(graph.status());
    return Fail(std::string(graph.status().message()));
  }
  const std::vector<ValueInfo> inputs = graph->inputs;
  absl::StatusOr<std::unique_ptr<Executor>> executor = Executor::Create(*std::move(graph), {});
  if (!executor.ok()) {
    if (executor.status().code() == absl::StatusCode::kUnimplemented) return Skip(executor.status());
    return Fail(std::string(executor.status().message()));
  }
  const auto sets = SortedEntries(dir, "test_data_set_");
  if (sets.empty()) return Fail("no test_data_set folder");
  for (const fs::path& set : sets) {
    std::vector<Tensor> feeds;
    for (const fs::path& p : SortedEntries(set, "input_")) {
      absl::StatusOr<Tensor> t = ReadTensorProtoFile(p.string());
      if (!t.ok()) {
        if (t.status().code() == absl::StatusCode::kUnimplemented) return Skip(t.status());
        return Fail(std::string(t.status().message()));
      }
      // The suite stores bfloat16 and float16 inputs as uint16 bits: relabel them.
      const size_t k = feeds.size();
      if (k < inputs.size() && t->dtype() == DataType::kUint16 &&
          (inputs[k].dtype == DataType::kBFloat16 || inputs[k].dtype == DataType::kFloat16)) {
        *t = Tensor::View(inputs[k].dtype, t->shape(), t->raw_data()).Clone();
      }
      feeds.push_back(*std::move(t));
    }
    // Test data may omit trailing optional inputs that the graph declares.
    if (feeds.size() != inputs.size()) {
      return Skip(absl::UnimplementedError(absl::StrCat("test feeds ", feeds.size(),
                                                        " inputs, the graph declares ",
                                                        inputs.size())));
    }
    absl::StatusOr<std::vector<Tensor>> outputs = (*executor)->Run(feeds);
    if (!outputs.ok()) {
      if (outputs.status().code() == absl::StatusCode::kUnimplemented) return Skip(outputs.status());
      return Fail(std::string(outputs.status().message()));
    }
    const auto expected = SortedEntries(set, "output_");
    if (expected.size() != outputs->size()) {
      return Fail(absl::StrCat(outputs->size(), " outputs, expected ", expected.size()));
    }
    for (size_t k = 0; k < expected.size(); ++k) {
      absl::StatusOr<Tensor> want = ReadTensorProtoFile(expected[k].string());
      if (!want.ok()) {
        if (want.status().code() == absl::StatusCode::kUnimplemented) return Skip(want.status());
        return Fail(std::string(want.status().message()));
      }
      const std::string diff = Compare((*outputs)[k], *want, 1e-3, 1e-7);
      if (!diff.empty()) {
        return Fail(absl::StrCat(set.filename().string(), " output ", k, ": ", diff));
      }
    }
  }
  return {Outcome::kPassed, ""};
}

// "unsupported operator If (If node 'x'); all ..." -> "operator If".
std::string SkipCategory(const std::string& reason) {
  const std::string op_marker = "unsupported operator ";
  if (reason.rfind(op_marker, 0) == 0) {
    const size_t end = reason.find(' ', op_marker.size());
    return "operator " + reason.substr(op_marker.size(), end - op_marker.size());
  }
  return reason.substr(0, std::min<size_t>(reason.size(), 60));
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << arg << " needs a value\n" << kUsage;
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (arg == "--data") {
      options.data = value();
    } else if (arg == "--folders") {
      options.folders = absl::StrSplit(value(), ',');
    } else if (arg == "--filter") {
      options.filter = value();
    } else if (arg == "--expected-failures") {
      options.expected_failures = value();
    } else if (arg == "--min-passed") {
      if (!absl::SimpleAtoi(value(), &options.min_passed)) {
        std::cerr << "--min-passed needs a number\n";
        return 2;
      }
    } else if (arg == "--verbose") {
      options.verbose = true;
    } else {
      std::cerr << "unknown option " << arg << "\n" << kUsage;
      return 2;
    }
  }
  std::map<std::string, std::string> allowed;
  if (!options.expected_failures.empty()) {
    std::ifstream file(options.expected_failures);
    if (!file) {
      std::cerr << "cannot read " << options.expected_failures << "\n";
      return 2;
    }
    std::string line;
    while (std::getline(file, line)) {
      if (line.empty() || line[0] == '#') continue;
      const size_t space = line.find(' ');
      allowed[line.substr(0, space)] = space == std::string::npos ? "" : line.substr(space + 1);
    }
  }

  int64_t total_passed = 0, total_failed = 0, total_skipped = 0, unexpected = 0;
  for (const std::string& folder : options.folders) {
    const fs::path root = fs::path(options.data) / folder;
    if (!fs::is_directory(root)) {
      std::cerr << "missing suite folder " << root << " (apt-get install libonnx-testdata)\n";
      return 2;
    }
    int64_t passed = 0, failed = 0, skipped = 0;
    std::map<std::string, int> skip_reasons;
    for (const fs::path& dir : SortedEntries(root, "test_")) {
      const std::string name = dir.filename().string();
      if (!options.filter.empty() && name.find(options.filter) == std::string::npos) continue;
      const Result r = RunTest(dir);
      switch (r.outcome) {
        case Outcome::kPassed:
          ++passed;
          if (options.verbose) std::cout << "PASS " << folder << "/" << name << "\n";
          break;
        case Outcome::kSkipped:
          ++skipped;
          ++skip_reasons[SkipCategory(r.reason)];
          if (options.verbose) std::cout << "SKIP " << folder << "/" << name << ": " << r.reason << "\n";
          break;
        case Outcome::kFailed: {
          ++failed;
          const bool expected = allowed.count(name) > 0;
          if (!expected) ++unexpected;
          std::cout << (expected ? "XFAIL " : "FAIL ") << folder << "/" << name << ": " << r.reason
                    << "\n";
          break;
        }
      }
      std::cout.flush();
    }
    std::vector<std::pair<int, std::string>> reasons;
    for (const auto& [reason, count] : skip_reasons) reasons.emplace_back(count, reason);
    std::sort(reasons.rbegin(), reasons.rend());
    std::string reason_text;
    for (const auto& [count, reason] : reasons) absl::StrAppend(&reason_text, "\n    ", count, " ", reason);
    std::cout << folder << ": " << passed << " passed, " << failed << " failed, " << skipped
              << " skipped" << (reasons.empty() ? "" : "; skip reasons:") << reason_text << "\n";
    total_passed += passed;
    total_failed += failed;
    total_skipped += skipped;
  }
  std::cout << "total: " << total_passed << " passed, " << total_failed << " failed, "
            << total_skipped << " skipped\n";
  if (unexpected > 0) {
    std::cout << unexpected << " unexpected failures\n";
    return 1;
  }
  if (total_passed < options.min_passed) {
    std::cout << "only " << total_passed << " passed; at least " << options.min_passed
              << " must\n";
    return 1;
  }
  return 0;
}
