// Fusion into Conv, Gemm and MatMul: the ops that follow them (a bias or
// residual Add, an activation) become part of one fused node, which a backend
// runs as post-ops instead of extra passes over memory.
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

}  // namespace

void FuseMatMulBias(Graph& graph) {
  std::vector<bool> dead(graph.nodes.size(), false);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& add = graph.nodes[i];
    if (!Is(add, "Add") || add.inputs.size() != 2) continue;
    GraphIndex index(graph);
    for (int k = 0; k < 2; ++k) {
      const int p = index.Producer(add.inputs[k]);
      if (p < 0 || !Is(graph.nodes[p], "MatMul") || !index.SingleUse(add.inputs[k])) continue;
      Node& matmul = graph.nodes[p];
      const Tensor* weights = index.Constant(matmul.inputs[1]);
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
      const bool fused = IsFused(conv, "FusedConv") && conv.inputs.size() <= 3 && !HasActivation(conv);
      const std::string& other = add.inputs[OtherInput(add, value)];
      // The addend must be an activation, not a constant (that is a bias).
      if ((!plain && !fused) || index.Constant(other) != nullptr) continue;
      // The fused node takes the Add's place: by then both operands exist.
      Node merged = conv;
      MakeFused(merged);
      merged.inputs.resize(3);
      merged.inputs.push_back(other);
      merged.outputs = add.outputs;
      add = std::move(merged);
      dead[p] = true;
      break;
    }
  }
  RemoveNodes(graph, dead);
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
                         IsFused(producer, "FusedMatMul");
    if (!fusable || HasActivation(producer)) continue;
    MakeFused(producer);
    SetFusedActivation(*activation, producer);
    producer.outputs[0] = act.outputs[0];
    dead[i] = true;
  }
  RemoveNodes(graph, dead);
}

}  // namespace slimserve::runtime
