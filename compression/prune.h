// Pruning: removing weights of Conv and Gemm layers, by magnitude.
//
// Structured pruning (filters) removes whole output channels of Conv and
// Gemm layers, physically: the model becomes a smaller dense model. The
// channels of a value are coupled wherever two layers must agree on them (a
// residual Add or Mul joins its inputs' channels, a depthwise Conv or a
// BatchNormalization keeps its input's, Concat stacks them, Flatten spreads
// them over the next Gemm's inputs), so a channel is removed from every
// layer that produces it and every layer that reads it, or not at all
// (the dependency-graph idea of Torch-Pruning). Channels that reach a graph
// output or an op this does not know stay.
//
// Unstructured pruning sets single weights (or 1x4 vectors along the input
// channels, or whole kh x kw kernels) to zero; the shapes stay.
//
// Recover() then solves every changed layer again, in order, on calibration
// data: by least squares, the weights (zeros staying zero) and bias that
// best give the original model's outputs from the pruned model's inputs;
// layers too large for that get their output channels' mean and standard
// deviation matched instead. Both re-estimate what BatchNorm's statistics
// and the biases lost with the removed channels.
//
//   ASSIGN_OR_RETURN(PruneReport report, Prune(graph, {.sparsity = 0.3}));
//   RETURN_IF_ERROR(Optimize(graph, {.fuse = false}));  // fold BN
//   RETURN_IF_ERROR(Recover(folded_original, graph, report, batches, {}));
#ifndef SLIMSERVE_COMPRESSION_PRUNE_H_
#define SLIMSERVE_COMPRESSION_PRUNE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "compression/progress.h"
#include "runtime/graph.h"
#include "runtime/tensor.h"

namespace slimserve::compression {

enum class PruneStructure {
  kFilter,  // whole output channels, removed (structured)
  kWeight,  // single weights, zeroed
  kVector,  // 4 consecutive weights along the input channels, zeroed
  kKernel,  // a whole kh x kw kernel (one input channel of one filter), zeroed
};

enum class PruneCriterion {
  kL1,       // sum of |w| of the group
  kL2,       // Euclidean norm of the group
  kBnGamma,  // |gamma| of the BatchNormalization after the filter (filters only)
};

struct PruneOptions {
  PruneStructure structure = PruneStructure::kFilter;
  double sparsity = 0.5;  // share of the groups removed, in [0, 1)
  PruneCriterion criterion = PruneCriterion::kL1;
  // One threshold across layers (scores normalized by each layer's mean)
  // instead of the same share in every layer.
  bool global = false;
  // Unstructured only: each layer's own share from its measured sensitivity
  // (SensitivityAnalysis, then AllocateSparsity), `sparsity` of all weights in total.
  bool sensitivity = false;
  // Unstructured only: shares for single layers (node name), instead of `sparsity`.
  std::map<std::string, double> layer_sparsity;
};

// How much a layer's output matters: the model's output SQNR on calibration
// data with that layer alone pruned (no recovery) at each of kSensitivityLevels.
inline constexpr double kSensitivityLevels[] = {0.5, 0.7, 0.8, 0.9, 0.95};
struct LayerSensitivity {
  std::string node;    // name
  int64_t weights = 0;
  std::vector<double> sqnr_db;  // per level
};

struct PruneReport {
  // Float and int8 constants of the graph (compression/evaluate.h), and those not zero.
  int64_t parameters_before = 0, parameters_after = 0, nonzero_after = 0;
  // Per changed layer: "Conv 'c1': 64 -> 45 filters" or "... 80.1 % zeros".
  std::vector<std::string> layers;
  // For every Conv or Gemm the pruning changed (node name): which of its
  // original output channels it still has, in order.
  std::map<std::string, std::vector<int64_t>> kept_outputs;
};

// Prunes `graph` in place (before BatchNorm is folded, for kBnGamma). Fails
// with InvalidArgument for a sparsity outside [0, 1) and FailedPrecondition
// when the model has nothing this structure can prune.
absl::StatusOr<PruneReport> Prune(runtime::Graph& graph, const PruneOptions& options);

// Measures every prunable layer of `graph` (unstructured `options`) alone
// at each of kSensitivityLevels on `batches`: 5 runs per layer.
absl::StatusOr<std::vector<LayerSensitivity>> SensitivityAnalysis(
    const runtime::Graph& graph, const PruneOptions& options, absl::Span<const std::vector<runtime::Tensor>> batches,
    int num_threads, const Progress& progress);

// Per-layer shares (node name -> sparsity, at most the highest level) that
// remove `sparsity` of all the measured layers' weights, greedily taking the
// step with the least added output error (noise power, from the SQNRs) per
// weight removed.
std::map<std::string, double> AllocateSparsity(const std::vector<LayerSensitivity>& layers, double sparsity);

struct RecoverOptions {
  int num_threads = 0;  // 0: one per core
  Progress progress;    // over the layers; may be empty
};

// Solves every layer in `report.kept_outputs` of `pruned` again (see above)
// against the same layer of `original` (both with BatchNorm folded), in
// order, each with the earlier ones already solved.
absl::Status Recover(const runtime::Graph& original, runtime::Graph& pruned, const PruneReport& report,
                     absl::Span<const std::vector<runtime::Tensor>> batches, const RecoverOptions& options);

}  // namespace slimserve::compression

#endif  // SLIMSERVE_COMPRESSION_PRUNE_H_
