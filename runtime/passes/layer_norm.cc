// Recognizes layer normalization written out op by op, as exporters emit it
// for opsets before 17:
//
//   m = ReduceMean(x, axes=[-1]);  d = Sub(x, m);  v = ReduceMean(Pow(d, 2), axes=[-1])
//   y = Div(d, Sqrt(Add(v, eps))) [* gamma] [+ beta]
//
// and replaces it with one LayerNormalization node (the runtime's own, in its
// fused domain, since the ONNX op needs opset 17).
#include "absl/strings/str_cat.h"
#include "runtime/activation.h"
#include "runtime/passes/graph_util.h"
#include "runtime/passes/passes.h"

namespace slimserve::runtime {
namespace {

bool Is(const Node& node, const char* op) { return node.domain.empty() && node.op_type == op; }

// A float scalar constant, or nullopt.
std::optional<float> Scalar(const GraphIndex& index, const std::string& value) {
  const Tensor* t = index.Constant(value);
  if (t == nullptr || t->dtype() != DataType::kFloat32 || t->num_elements() != 1) return std::nullopt;
  return t->data<float>()[0];
}

// The node producing `value` if it is `op`, read only once; else null.
const Node* SoleProducer(const Graph& graph, const GraphIndex& index, const std::string& value,
                         const char* op, int uses = 1) {
  const int p = index.Producer(value);
  if (p < 0 || !Is(graph.nodes[p], op) || index.Readers(value) != uses || index.IsGraphOutput(value)) {
    return nullptr;
  }
  return &graph.nodes[p];
}

bool LastAxisMean(const Node* node, int64_t opset) {
  if (node == nullptr || opset >= 18 || node->GetInt("keepdims", 1) != 1) return false;
  return node->GetInts("axes") == std::vector<int64_t>{-1};
}

}  // namespace

void FuseLayerNorm(Graph& graph) {
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (!Is(graph.nodes[i], "Div")) continue;
    GraphIndex index(graph);
    const Node& div = graph.nodes[i];
    const Node* sub = SoleProducer(graph, index, div.inputs[0], "Sub", 2);
    const Node* sqrt = SoleProducer(graph, index, div.inputs[1], "Sqrt");
    if (sub == nullptr || sqrt == nullptr) continue;
    const Node* add_eps = SoleProducer(graph, index, sqrt->inputs[0], "Add");
    if (add_eps == nullptr) continue;
    const std::optional<float> eps = Scalar(index, add_eps->inputs[1]);
    const Node* var = SoleProducer(graph, index, add_eps->inputs[0], "ReduceMean");
    if (!eps || !LastAxisMean(var, graph.opset)) continue;
    const Node* pow = SoleProducer(graph, index, var->inputs[0], "Pow");
    if (pow == nullptr || pow->inputs[0] != div.inputs[0] || Scalar(index, pow->inputs[1]) != 2.0f) {
      continue;
    }
    const Node* mean = SoleProducer(graph, index, sub->inputs[1], "ReduceMean");
    if (!LastAxisMean(mean, graph.opset) || mean->inputs[0] != sub->inputs[0]) continue;
    const std::string x = sub->inputs[0];

    // Optional affine part: Mul by a 1-D gamma, then Add of a 1-D beta.
    std::string out = div.outputs[0], gamma, beta;
    std::vector<std::string> absorbed = {div.outputs[0]};
    auto one_d_constant = [&](const Node& node, const std::string& operand) -> std::string {
      const std::string& other = node.inputs[0] == operand ? node.inputs[1] : node.inputs[0];
      const Tensor* t = index.Constant(other);
      return t != nullptr && t->rank() == 1 && t->dtype() == DataType::kFloat32 ? other : "";
    };
    auto single_reader = [&](const std::string& value, const char* op) -> const Node* {
      if (index.Readers(value) != 1 || index.IsGraphOutput(value)) return nullptr;
      for (const Node& n : graph.nodes) {
        if (Is(n, op) && (n.inputs[0] == value || n.inputs[1] == value)) return &n;
      }
      return nullptr;
    };
    if (const Node* mul = single_reader(out, "Mul"); mul != nullptr && !one_d_constant(*mul, out).empty()) {
      gamma = one_d_constant(*mul, out);
      out = mul->outputs[0];
      if (const Node* add = single_reader(out, "Add"); add != nullptr && !one_d_constant(*add, out).empty()) {
        beta = one_d_constant(*add, out);
        out = add->outputs[0];
      }
    }
    if (gamma.empty()) continue;  // LayerNormalization needs a scale

    // Replace the Div with the fused node; the rest become dead.
    Node fused;
    fused.name = div.name.empty() ? out : absl::StrCat(div.name, "_layer_norm");
    fused.op_type = "LayerNormalization";
    fused.domain = kFusedDomain;
    fused.inputs = {x, gamma};
    if (!beta.empty()) fused.inputs.push_back(beta);
    fused.outputs = {out};
    fused.attributes["axis"].type = Attribute::Type::kInt;
    fused.attributes["axis"].i = -1;
    fused.attributes["epsilon"].type = Attribute::Type::kFloat;
    fused.attributes["epsilon"].f = *eps;
    // Nodes that wrote `out` (the final Mul/Add) must stop writing it.
    for (Node& n : graph.nodes) {
      for (std::string& o : n.outputs) {
        if (o == out) o = UniqueName(graph, absl::StrCat(out, "_unfused"));
      }
    }
    graph.nodes[i] = std::move(fused);
  }
  EliminateDeadNodes(graph);
}

}  // namespace slimserve::runtime
