// Evaluation of a compressed variant against its original on a data set:
// top-1 against the labels (when there are labels) for both, top-1
// agreement between them, and the SQNR and cosine similarity of the
// variant's first output against the original's.
//
//   ASSIGN_OR_RETURN(Evaluation e, Evaluate(original, variant, data, {}));
#ifndef SLIMSERVE_COMPRESSION_EVALUATE_H_
#define SLIMSERVE_COMPRESSION_EVALUATE_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "compression/dataset.h"
#include "compression/progress.h"
#include "runtime/backends.h"
#include "runtime/executor.h"
#include "runtime/graph.h"

namespace slimserve::compression {

struct EvaluateOptions {
  int64_t max_rows = 0;  // 0: all
  int64_t batch = 100;
  int num_threads = 0;
  Progress progress;  // may be empty
};

// Weights of a graph: the elements of its float and int8 constants.
struct Parameters {
  int64_t total = 0;
  int64_t zeros = 0;
};
Parameters CountParameters(const runtime::Graph& graph);

struct Evaluation {
  int64_t rows = 0;
  double original_top1 = -1;  // percent right against the labels; -1 without labels
  double variant_top1 = -1;
  double agreement = 0;       // percent of rows whose top-1 class is the same
  double sqnr_db = 0;         // 10 log10(sum original^2 / sum (original - variant)^2)
  double cosine = 0;
  Parameters original_parameters, variant_parameters;
};

// How far a variant's outputs are from the original's, summed over tensors.
struct OutputDifference {
  double signal = 0, noise = 0, dot = 0, variant_energy = 0;
  // `original` and `variant`: float tensors of the same shape.
  void Add(const runtime::Tensor& original, const runtime::Tensor& variant);
  // 10 log10(signal / noise); infinity when they are the same.
  double SqnrDb() const;
  double Cosine() const;
};

// A graph optimized and compiled with the automatic backend choice.
struct CompiledGraph {
  runtime::BackendSet backends;  // the executor's kernels borrow them
  std::unique_ptr<runtime::Executor> executor;
};
absl::StatusOr<CompiledGraph> Compile(runtime::Graph graph, int num_threads, bool measure_kernels = true);

// Both graphs are optimized and compiled here; their first outputs must have
// rows first (classes along the last dimension for top-1).
absl::StatusOr<Evaluation> Evaluate(runtime::Graph original, runtime::Graph variant, const DataSet& data,
                                    const EvaluateOptions& options);

}  // namespace slimserve::compression

#endif  // SLIMSERVE_COMPRESSION_EVALUATE_H_
