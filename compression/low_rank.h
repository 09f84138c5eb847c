// Low-rank factorization: a layer y = x W with W of in x out is replaced by
// two, y = (x A) B, A of in x r and B of r x out, where that lowers its
// parameters and FLOPs (r (in + out) < in out). Layers are MatMul and Gemm
// with constant 2-D weights and 1x1 Conv (group 1).
//
// The factors are fitted to the layer's inputs on calibration data X: the
// product A B is the rank-r matrix closest to W in ||X W - X A B||, i.e.
// the projection of the layer's outputs on their r principal directions
// (with no data, X = I: the truncated SVD of W). Computed by the
// eigenvectors of the r x r side's Gram matrix (W^T C W, or L^T W W^T L
// with C = X^T X = L L^T when the input side is smaller).
//
//   ASSIGN_OR_RETURN(PruneReport report, Factorize(graph, {.ratio = 0.5}, batches, 0, {}));
#ifndef SLIMSERVE_COMPRESSION_LOW_RANK_H_
#define SLIMSERVE_COMPRESSION_LOW_RANK_H_

#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "compression/progress.h"
#include "compression/prune.h"
#include "runtime/graph.h"
#include "runtime/tensor.h"

namespace slimserve::compression {

struct LowRankOptions {
  // Share of each factorized layer's parameters (and FLOPs) kept, in (0, 1):
  // r = ratio x in x out / (in + out), rounded down to a multiple of 8.
  double ratio = 0.5;
  // When > 0 (at most 1): instead, the smallest rank (a multiple of 8) that
  // keeps this share of the layer's output energy on the calibration data.
  double energy = 0;
};

// Factorizes the layers of `graph` (constants folded) where a rank of at
// least 8 lowers their FLOPs; the layers' lines and the parameter counts go
// in the report. Layers with more than 1024 rows and columns, or more than
// 4096 inputs, are left. FailedPrecondition when no layer can be factorized.
absl::StatusOr<PruneReport> Factorize(runtime::Graph& graph, const LowRankOptions& options,
                                      absl::Span<const std::vector<runtime::Tensor>> batches, int num_threads,
                                      const Progress& progress);

}  // namespace slimserve::compression

#endif  // SLIMSERVE_COMPRESSION_LOW_RANK_H_
