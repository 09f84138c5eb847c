// Data sets for calibration and evaluation: one tensor per model input (rows
// along the first dimension) and optional integer labels, read from a .npz
// whose members are named after the model's inputs (a single-input model
// also takes any one member) plus `labels`.
//
//   ASSIGN_OR_RETURN(DataSet data, LoadDataSet("eval.npz", graph));
//   for (const auto& batch : data.Batches(0, 1000, 100)) ...
#ifndef SLIMSERVE_COMPRESSION_DATASET_H_
#define SLIMSERVE_COMPRESSION_DATASET_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/graph.h"
#include "runtime/tensor.h"

namespace slimserve::compression {

struct DataSet {
  std::vector<runtime::Tensor> inputs;  // in the order of the model's inputs
  runtime::Tensor labels;               // int64 [rows], or undefined

  int64_t rows() const { return inputs.empty() ? 0 : inputs[0].shape()[0]; }
  // Rows [begin, begin + count) in batches of at most `batch` rows (copies).
  std::vector<std::vector<runtime::Tensor>> Batches(int64_t begin, int64_t count, int64_t batch) const;
};

// Fails with InvalidArgument naming the member when the file's tensors do
// not match the model's inputs (names, dtypes, dimensions after the first,
// row counts).
absl::StatusOr<DataSet> LoadDataSet(const std::string& path, const runtime::Graph& graph);
// The same for arrays already in memory (name, tensor); `what` names their
// source in errors.
absl::StatusOr<DataSet> MakeDataSet(std::vector<std::pair<std::string, runtime::Tensor>> arrays,
                                    const runtime::Graph& graph, const std::string& what);

}  // namespace slimserve::compression

#endif  // SLIMSERVE_COMPRESSION_DATASET_H_
