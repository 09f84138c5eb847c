// Fusion into Conv, Gemm and MatMul: the ops that follow them (a bias or
// residual Add, an activation) become part of one fused node, which a backend
// runs as post-ops instead of extra passes over memory.
#include <cmath>
#include <optional>

#include "runtime/activation.h"
#include "runtime/passes/graph_util.h"
#include "runtime/passes/passes.h"

namespace slimserve::runtime {
namespace {

bool Is(const Node& node, const char* op) { return node.domain.empty() && node.op_type == op; }

bool IsFused(const Node& node, const char* op) {
  return node.domain == kFusedDomain && node.op_type == op;
}

bool HasActivation(const Node& node) {
  return FusedActivation(node).kind != Activation::Kind::kNone;
}

// Turns `node` (Conv, Gemm, MatMul) into its fused form, in place.
void MakeFused(Node& node) {
  if (node.domain == kFusedDomain) return;
  node.op_type = "Fused" + node.op_type;
  node.domain = kFusedDomain;
}

// For an Add reading `value` and something else: the index of the other input.
int OtherInput(const Node& add, const std::string& value) {
  return add.inputs[0] == value ? 1 : 0;
}

// The value of a single-element float constant, if `value` is one.
std::optional<float> Scalar(const GraphIndex& index, const std::string& value) {
  const Tensor* t = index.Constant(value);
  if (t == nullptr || t->dtype() != DataType::kFloat32 || t->num_elements() != 1) return std::nullopt;
  return t->data<float>()[0];
}

// The node producing `value` if it is `op` and `value` has no other reader.
const Node* SingleUseProducer(const Graph& graph, const GraphIndex& index, const std::string& value,
                              const char* op) {
  const int p = index.Producer(value);
  if (p < 0 || !index.SingleUse(value) || !Is(graph.nodes[p], op)) return nullptr;
  return &graph.nodes[p];
}

// For `mul` = x * gate(x): the x for which `gate` is HardSigmoid(x) with
// alpha 1/6 and beta 1/2, or Clip(x + 3, 0, 6) (then `divisor` is 6).
std::optional<std::string> HardSwishInput(const Graph& graph, const GraphIndex& index, const Node& mul,
                                          float divisor) {
  for (int k = 0; k < 2; ++k) {
    const std::string& x = mul.inputs[1 - k];
    if (const Node* g = SingleUseProducer(graph, index, mul.inputs[k], "HardSigmoid")) {
      const bool match = g->inputs[0] == x && std::abs(g->GetFloat("alpha", 0.2f) - 1 / 6.0f) < 1e-6f &&
                         g->GetFloat("beta", 0.5f) == 0.5f;
      if (match && divisor == 1) return x;
    }
    const Node* clip = SingleUseProducer(graph, index, mul.inputs[k], "Clip");
    if (clip == nullptr || divisor != 6) continue;
    const std::optional<Activation> range =
        ActivationOf(*clip, graph.opset, [&](size_t i) { return index.Constant(clip->inputs[i]); });
    if (!range.has_value() || range->alpha != 0 || range->beta != 6) continue;
    const Node* add = SingleUseProducer(graph, index, clip->inputs[0], "Add");
    if (add == nullptr) continue;
    const int other = OtherInput(*add, x);
    if (add->inputs[1 - other] == x && Scalar(index, add->inputs[other]) == 3.0f) return x;
  }
  return std::nullopt;
}

}  // namespace

void FuseMatMulBias(Graph& graph) {
  std::vector<bool> dead(graph.nodes.size(), false);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& add = graph.nodes[i];
    if (!Is(add, "Add") || add.inputs.size() != 2) continue;
    GraphIndex index(graph);
    for (int k = 0; k < 2; ++k) {
      const int p = index.Producer(add.inputs[k]);
      if (p < 0 || !index.SingleUse(add.inputs[k])) continue;
      Node& matmul = graph.nodes[p];
      // The int8 form has its weights at input 3, after the input's scale and zero point.
      const bool quantized = IsFused(matmul, "QFusedMatMul") && matmul.inputs.size() == 5;
      if (!Is(matmul, "MatMul") && !quantized) continue;
      const Tensor* weights = index.Constant(matmul.inputs[quantized ? 3 : 1]);
      const Tensor* bias = index.Constant(add.inputs[1 - k]);
      // A per-column bias [N] of a constant [K, N] weight: what Linear exports.
      if (weights == nullptr || bias == nullptr || weights->rank() != 2 || bias->rank() != 1 ||
          bias->dim(0) != weights->dim(1) || bias->dtype() != DataType::kFloat32) {
        continue;
      }
      MakeFused(matmul);
      matmul.inputs.push_back(add.inputs[1 - k]);
      matmul.outputs[0] = add.outputs[0];
      dead[i] = true;
      break;
    }
  }
  RemoveNodes(graph, dead);
}

void FuseResidualAdd(Graph& graph) {
  std::vector<bool> dead(graph.nodes.size(), false);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& add = graph.nodes[i];
    if (!Is(add, "Add") || add.inputs.size() != 2) continue;
    GraphIndex index(graph);
    for (int k = 0; k < 2; ++k) {
      const std::string& value = add.inputs[k];
      const int p = index.Producer(value);
      if (p < 0 || dead[p] || !index.SingleUse(value)) continue;
      const Node& conv = graph.nodes[p];
      const bool plain = Is(conv, "Conv");
      const bool quantized = IsFused(conv, "QFusedConv");
      const size_t base = quantized ? 6 : 3;  // inputs before the addend
      const bool fused = (IsFused(conv, "FusedConv") || quantized) && conv.inputs.size() <= base &&
                         !HasActivation(conv) && !conv.Has("y_scale");
      const std::string& other = add.inputs[OtherInput(add, value)];
      // The addend must be an activation, not a constant (that is a bias).
      if ((!plain && !fused) || index.Constant(other) != nullptr) continue;
      // The fused node takes the Add's place: by then both operands exist.
      Node merged = conv;
      MakeFused(merged);
      merged.inputs.resize(base);
      merged.inputs.push_back(other);
      merged.outputs = add.outputs;
      add = std::move(merged);
      dead[p] = true;
      break;
    }
  }
  RemoveNodes(graph, dead);
}

namespace {

// A Mul or Add by a single constant after a fused activation joins it as
// the activation's scale and shift.
void FuseAffineAfterActivations(Graph& graph) {
  std::vector<bool> dead(graph.nodes.size(), false);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& op = graph.nodes[i];
    if ((!Is(op, "Mul") && !Is(op, "Add")) || op.inputs.size() != 2) continue;
    GraphIndex index(graph);
    for (int k = 0; k < 2; ++k) {
      const int p = index.Producer(op.inputs[k]);
      const std::optional<float> c = Scalar(index, op.inputs[1 - k]);
      if (p < 0 || !c.has_value() || !index.SingleUse(op.inputs[k])) continue;
      Node& fused = graph.nodes[p];
      if (fused.domain != kFusedDomain || !HasActivation(fused)) continue;
      Activation a = FusedActivation(fused);
      if (Is(op, "Mul")) {
        a.scale *= *c;
        a.shift *= *c;
      } else {
        a.shift += *c;
      }
      SetFusedActivation(a, fused);
      fused.outputs[0] = op.outputs[0];
      op.outputs.clear();  // out of the index before the next lookup
      dead[i] = true;
      break;
    }
  }
  RemoveNodes(graph, dead);
}

}  // namespace

void FuseHardSwish(Graph& graph) {
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& node = graph.nodes[i];
    GraphIndex index(graph);
    std::optional<std::string> x;
    if (Is(node, "Div") && Scalar(index, node.inputs[1]) == 6.0f) {
      // x * Clip(x + 3, 0, 6) / 6
      if (const Node* mul = SingleUseProducer(graph, index, node.inputs[0], "Mul")) {
        x = HardSwishInput(graph, index, *mul, 6);
      }
    } else if (Is(node, "Mul") && node.inputs.size() == 2) {
      x = HardSwishInput(graph, index, node, 1);  // x * HardSigmoid(x)
    }
    if (!x.has_value()) continue;
    Node hard_swish;
    hard_swish.op_type = "HardSwish";
    hard_swish.name = node.name;
    hard_swish.inputs = {*x};
    hard_swish.outputs = node.outputs;
    graph.nodes[i] = std::move(hard_swish);
  }
  // The gates' nodes are read by nothing now; until they go, x looks shared.
  EliminateDeadNodes(graph);
}

void FuseActivations(Graph& graph) {
  std::vector<bool> dead(graph.nodes.size(), false);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& act = graph.nodes[i];
    if (act.inputs.empty() || act.inputs[0].empty()) continue;
    GraphIndex index(graph);
    const std::optional<Activation> activation = ActivationOf(
        act, graph.opset, [&](size_t k) { return index.Constant(act.inputs[k]); });
    if (!activation.has_value()) continue;
    const int p = index.Producer(act.inputs[0]);
    if (p < 0 || !index.SingleUse(act.inputs[0])) continue;
    Node& producer = graph.nodes[p];
    const bool fusable = Is(producer, "Conv") || Is(producer, "Gemm") || Is(producer, "MatMul") ||
                         IsFused(producer, "FusedConv") || IsFused(producer, "FusedGemm") ||
                         IsFused(producer, "FusedMatMul") || IsFused(producer, "QFusedConv") ||
                         IsFused(producer, "QFusedGemm") || IsFused(producer, "QFusedMatMul");
    if (!fusable || HasActivation(producer) || producer.Has("y_scale")) continue;
    MakeFused(producer);
    SetFusedActivation(*activation, producer);
    producer.outputs[0] = act.outputs[0];
    dead[i] = true;
  }
  RemoveNodes(graph, dead);
  FuseAffineAfterActivations(graph);
}

}  // namespace slimserve::runtime
