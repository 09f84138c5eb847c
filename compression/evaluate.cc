#include "compression/evaluate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "absl/strings/str_cat.h"
#include "runtime/backends.h"
#include "runtime/executor.h"
#include "runtime/passes/passes.h"
#include "runtime/status_macros.h"

namespace slimserve::compression {
namespace {

using runtime::Tensor;

int64_t ArgMax(const float* row, int64_t n) { return std::max_element(row, row + n) - row; }

}  // namespace

absl::StatusOr<CompiledGraph> Compile(runtime::Graph graph, int num_threads, bool measure_kernels) {
  CompiledGraph c;
  RETURN_IF_ERROR(runtime::Optimize(graph, {}));
  ASSIGN_OR_RETURN(c.backends, runtime::MakeBackends("auto", num_threads));
  runtime::ExecutorOptions options;
  options.num_threads = num_threads;
  options.backends = c.backends.pointers();
  options.measure_kernels = measure_kernels;
  ASSIGN_OR_RETURN(c.executor, runtime::Executor::Create(std::move(graph), options));
  return c;
}

void OutputDifference::Add(const runtime::Tensor& original, const runtime::Tensor& variant) {
  for (int64_t i = 0; i < original.num_elements(); ++i) {
    const double u = original.data<float>()[i], v = variant.data<float>()[i];
    signal += u * u;
    noise += (u - v) * (u - v);
    dot += u * v;
    variant_energy += v * v;
  }
}

double OutputDifference::SqnrDb() const {
  return noise > 0 ? 10 * std::log10(signal / noise) : std::numeric_limits<double>::infinity();
}

double OutputDifference::Cosine() const {
  return signal > 0 && variant_energy > 0 ? dot / std::sqrt(signal * variant_energy) : 0;
}

Parameters CountParameters(const runtime::Graph& graph) {
  Parameters p;
  for (const auto& [name, t] : graph.initializers) {
    if (t.dtype() == runtime::DataType::kFloat32) {
      p.total += t.num_elements();
      p.zeros += std::count(t.data<float>(), t.data<float>() + t.num_elements(), 0.0f);
    } else if (t.dtype() == runtime::DataType::kInt8) {
      p.total += t.num_elements();
      p.zeros += std::count(t.data<int8_t>(), t.data<int8_t>() + t.num_elements(), int8_t{0});
    }
  }
  return p;
}

absl::StatusOr<Evaluation> Evaluate(runtime::Graph original, runtime::Graph variant, const DataSet& data,
                                    const EvaluateOptions& options) {
  const Parameters original_parameters = CountParameters(original), variant_parameters = CountParameters(variant);
  ASSIGN_OR_RETURN(CompiledGraph a, Compile(std::move(original), options.num_threads));
  ASSIGN_OR_RETURN(CompiledGraph b, Compile(std::move(variant), options.num_threads));
  const int64_t rows = options.max_rows > 0 ? std::min(options.max_rows, data.rows()) : data.rows();
  Evaluation e;
  e.original_parameters = original_parameters;
  e.variant_parameters = variant_parameters;
  int64_t right_a = 0, right_b = 0, same = 0;
  OutputDifference difference;
  int64_t row = 0;
  for (const auto& batch : data.Batches(0, rows, options.batch)) {
    RETURN_IF_ERROR(Report(options.progress, static_cast<double>(row) / rows));
    ASSIGN_OR_RETURN(std::vector<Tensor> out_a, a.executor->Run(batch));
    ASSIGN_OR_RETURN(std::vector<Tensor> out_b, b.executor->Run(batch));
    const Tensor& x = out_a[0];
    const Tensor& y = out_b[0];
    if (x.dtype() != runtime::DataType::kFloat32 || x.shape() != y.shape() || x.rank() < 1) {
      return absl::InvalidArgumentError("the variant's first output differs from the original's in type or shape");
    }
    const int64_t n = batch[0].shape()[0];
    const int64_t per_row = x.num_elements() / std::max<int64_t>(n, 1);
    difference.Add(x, y);
    for (int64_t r = 0; r < n; ++r, ++row) {
      const int64_t ca = ArgMax(x.data<float>() + r * per_row, per_row);
      const int64_t cb = ArgMax(y.data<float>() + r * per_row, per_row);
      same += ca == cb;
      if (data.labels.defined()) {
        right_a += ca == data.labels.data<int64_t>()[row];
        right_b += cb == data.labels.data<int64_t>()[row];
      }
    }
  }
  e.rows = row;
  if (row == 0) return absl::InvalidArgumentError("the data set has no rows");
  if (data.labels.defined()) {
    e.original_top1 = 100.0 * right_a / row;
    e.variant_top1 = 100.0 * right_b / row;
  }
  e.agreement = 100.0 * same / row;
  e.sqnr_db = difference.SqnrDb();
  e.cosine = difference.Cosine();
  return e;
}

}  // namespace slimserve::compression
