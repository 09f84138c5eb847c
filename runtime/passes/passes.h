// Graph passes that make a model cheaper to run without changing its outputs
// (up to float rounding): each is a function from a Graph to a Graph, in place.
//
//   RETURN_IF_ERROR(Optimize(graph, OptimizeOptions{}));
#ifndef SLIMSERVE_RUNTIME_PASSES_PASSES_H_
#define SLIMSERVE_RUNTIME_PASSES_PASSES_H_

#include "absl/status/status.h"
#include "runtime/graph.h"

namespace slimserve::runtime {

struct OptimizeOptions {
  bool remove_identities = true;
  bool fold_constants = true;
  bool fold_channel_affine = true;  // BatchNormalization, Mul/Add by constants
  bool fuse = true;  // bias, residual-add and activation fusion
  // With `fuse`: QDQ patterns -> int8 fused ops (runs before folding, which
  // would turn int8 weights back into float).
  bool fuse_quantized = true;
};

// Runs the enabled passes in order, then removes dead nodes.
absl::Status Optimize(Graph& graph, const OptimizeOptions& options);

// Identity and inference-mode Dropout nodes disappear; readers read the input.
void RemoveIdentities(Graph& graph);
// Nodes whose inputs are all constants (or Shape of a fully static input)
// are computed now and become initializers, if their outputs stay small.
absl::Status FoldConstants(Graph& graph);
// BatchNormalization, or a Mul or Add by a per-channel constant, after a Conv,
// a ConvTranspose or a Gemm with transB, is folded into its weights and bias.
absl::Status FoldChannelAffine(Graph& graph);
// x * Clip(x + 3, 0, 6) / 6 and x * HardSigmoid(x) (alpha 1/6) -> HardSwish(x).
void FuseHardSwish(Graph& graph);
// Layer normalization written out op by op -> one LayerNormalization.
void FuseLayerNorm(Graph& graph);
// MatMul + constant bias Add -> FusedMatMul.
void FuseMatMulBias(Graph& graph);
// Conv + Add(residual) -> FusedConv with a sum addend.
void FuseResidualAdd(Graph& graph);
// Conv/Gemm/MatMul (fused or not) + an activation -> the fused op with it,
// and a Mul or Add by a single constant after that activation too.
void FuseActivations(Graph& graph);
// Rewrites an opset 9-12 graph in opset 13's forms (parameters that became
// inputs: Clip, Slice, Pad, TopK, Squeeze, Unsqueeze, ReduceSum, Split;
// Softmax's axis) so that it can carry opset-13 ops such as per-channel
// DequantizeLinear. All or nothing: fails, naming the node, where a form has
// no conversion here (Upsample, Resize before 11, subgraphs).
absl::Status UpgradeOpset(Graph& graph, int64_t target);
// DequantizeLinear(x) and DequantizeLinear(constant int8 weights, per tensor
// or per output channel, no zero point) into a Conv, Gemm or MatMul ->
// QFusedConv, QFusedGemm or QFusedMatMul (reference/quantized_fused_ops.cc)
// with float output. Other patterns stay as they are.
void FuseQuantizedInputs(Graph& graph);
// After fusion: a QuantizeLinear that alone reads an int8 fused op's output
// becomes that op's requantization (attributes y_scale, y_zero_point,
// y_type), taking a residual addend as int8 when it comes from a
// DequantizeLinear (attributes sum_scale, sum_zero_point), else staying
// apart; a QuantizeLinear after a MaxPool moves in front of it.
void FuseQuantizedOutputs(Graph& graph);
// Drops nodes and initializers nothing reads.
void EliminateDeadNodes(Graph& graph);

}  // namespace slimserve::runtime

#endif  // SLIMSERVE_RUNTIME_PASSES_PASSES_H_
