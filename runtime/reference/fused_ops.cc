// The runtime's fused operators, produced by the fusion pass (domain
// "slimserve"): a Conv, Gemm or MatMul followed by an optional residual or
// bias addend and an activation. The reference computes them step by step
// with the base op's reference kernel, which keeps the fused graph checkable
// against the unfused one.
//
//   FusedConv(X, W, B?, Sum?)     = act(Conv(X, W, B) + Sum)
//   FusedGemm(A, B, C?)           = act(Gemm(A, B, C))
//   FusedMatMul(A, B, Bias?)      = act(MatMul(A, B) + Bias)
#include "runtime/activation.h"
#include "runtime/reference/common.h"
#include "runtime/reference/op_registry.h"
#include "runtime/status_macros.h"

namespace slimserve::runtime::reference {
namespace {

// How many leading inputs the base op takes.
size_t BaseInputs(const Node& node) { return node.op_type == "FusedMatMul" ? 2 : 3; }

const OpDef& BaseOp(const Node& node) {
  return *FindOp(node.op_type.substr(5));  // "FusedConv" -> "Conv"
}

absl::Status InferFused(InferContext& c) {
  const size_t n = std::min(c.num_inputs(), BaseInputs(c.node));
  InferContext base{c.node, c.opset, c.inputs.subspan(0, n), c.outputs};
  RETURN_IF_ERROR(BaseOp(c.node).infer(base));
  if (c.num_inputs() > n && c.input(n).defined()) {
    absl::StatusOr<Shape> s = BroadcastShapes(c.outputs[0].shape, c.input(n).shape);
    if (!s.ok() || *s != c.outputs[0].shape) {
      return c.Error(absl::StrCat("addend of shape ", ShapeToString(c.input(n).shape),
                                  " does not broadcast to ", ShapeToString(c.outputs[0].shape)));
    }
  }
  return absl::OkStatus();
}

absl::Status ComputeFused(ComputeContext& c) {
  if (c.outputs[0].dtype() != DataType::kFloat32) return absl::UnimplementedError("fused ops are float32");
  const size_t n = std::min(c.num_inputs(), BaseInputs(c.node));
  ComputeContext base{c.node, c.opset, c.inputs.subspan(0, n), c.outputs, c.num_threads};
  RETURN_IF_ERROR(BaseOp(c.node).compute(base));
  Tensor& y = c.outputs[0];
  float* out = y.data<float>();
  if (c.has_input(n)) {
    const Tensor& addend = c.input(n);
    BroadcastIterator it(y.shape(), {addend.shape()});
    for (int64_t i = 0; i < y.num_elements(); ++i, it.Next()) out[i] += addend.data<float>()[it.offset(0)];
  }
  const Activation activation = FusedActivation(c.node);
  for (int64_t i = 0; i < y.num_elements(); ++i) out[i] = activation.Apply(out[i]);
  return absl::OkStatus();
}

}  // namespace

void RegisterFusedOps(OpTable& t) {
  for (const char* name : {"FusedConv", "FusedGemm", "FusedMatMul"}) {
    t[absl::StrCat(kFusedDomain, ".", name)] = OpDef{.infer = InferFused, .compute = ComputeFused};
  }
  // LayerNormalization before opset 17, from the layer-norm fusion pass.
  t[absl::StrCat(kFusedDomain, ".LayerNormalization")] = t.at("LayerNormalization");
}

}  // namespace slimserve::runtime::reference
