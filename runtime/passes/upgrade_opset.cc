// Opset upgrade to 13: what changed between opsets 9 and 13 for the ops this
// runtime runs is mostly parameters moving from attributes to inputs; those
// become constant inputs here. Softmax's 2-D coercion (before 13) is 13's
// single axis when the axis is the last one, else Flatten -> Softmax ->
// Reshape to the input's shape.
#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "runtime/passes/graph_util.h"
#include "runtime/passes/passes.h"
#include "runtime/status_macros.h"

namespace slimserve::runtime {
namespace {

// Adds `value` as an initializer named after the node and returns its name.
std::string AddInput(Graph& graph, const Node& node, const std::string& what, Tensor value) {
  const std::string name = UniqueName(graph, absl::StrCat(node.name.empty() ? node.outputs[0] : node.name, "_", what));
  graph.initializers[name] = std::move(value);
  return name;
}

Tensor Int64s(const std::vector<int64_t>& v) {
  return Tensor::FromVector<int64_t>({static_cast<int64_t>(v.size())}, v);
}

// Moves int-list attribute `attr` to input `index` (inputs before it padded
// with omitted ones); nothing when the attribute is absent.
void AttributeToInput(Graph& graph, Node& node, const std::string& attr, size_t index) {
  if (!node.Has(attr)) return;
  const std::string name = AddInput(graph, node, attr, Int64s(node.GetInts(attr)));
  node.attributes.erase(attr);
  if (node.inputs.size() <= index) node.inputs.resize(index + 1);
  node.inputs[index] = name;
}

// Rank of `value`, when the graph declares it or its producer settles it
// (Reshape to a constant shape, Gemm, Flatten, or the widest input of an
// elementwise op or MatMul); -1 if unknown.
int64_t RankOf(const Graph& graph, const GraphIndex& index, const std::string& value, int depth = 0) {
  if (auto it = graph.value_info.find(value); it != graph.value_info.end() && it->second.has_shape) {
    return static_cast<int64_t>(it->second.shape.size());
  }
  for (const ValueInfo& in : graph.inputs) {
    if (in.name == value) return in.has_shape ? static_cast<int64_t>(in.shape.size()) : -1;
  }
  if (const Tensor* t = index.Constant(value)) return t->rank();
  const int producer = index.Producer(value);
  if (producer < 0 || depth > 64) return -1;
  const Node& p = graph.nodes[producer];
  if (p.op_type == "Gemm" || p.op_type == "Flatten") return 2;
  if (p.op_type == "Reshape") {
    const Tensor* shape = p.inputs.size() > 1 ? index.Constant(p.inputs[1]) : nullptr;
    return shape != nullptr ? shape->num_elements() : -1;
  }
  static const auto* widest = new absl::flat_hash_set<std::string>{
      "MatMul", "Add", "Sub", "Mul", "Div", "Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Cast"};
  if (!widest->contains(p.op_type)) return -1;
  int64_t rank = -1;
  for (const std::string& in : p.inputs) {
    if (in.empty() || (p.op_type == "Clip" && in != p.inputs[0])) continue;
    const int64_t r = RankOf(graph, index, in, depth + 1);
    if (r < 0) return -1;
    rank = std::max(rank, r);
  }
  return rank;
}

// Appends `node` in its opset-13 form to `out` (with the nodes it needs).
absl::Status Upgrade(Graph& graph, Node node, int64_t from, std::vector<Node>& out) {
  const std::string& op = node.op_type;
  if (op == "Clip" && from < 11) {
    node.inputs.resize(3);
    if (node.Has("min")) node.inputs[1] = AddInput(graph, node, "min", Tensor::FromVector<float>({}, {node.GetFloat("min", 0)}));
    if (node.Has("max")) node.inputs[2] = AddInput(graph, node, "max", Tensor::FromVector<float>({}, {node.GetFloat("max", 0)}));
    node.attributes.erase("min");
    node.attributes.erase("max");
  } else if (op == "Slice" && from < 10) {
    AttributeToInput(graph, node, "starts", 1);
    AttributeToInput(graph, node, "ends", 2);
    AttributeToInput(graph, node, "axes", 3);
  } else if (op == "Pad" && from < 11) {
    AttributeToInput(graph, node, "pads", 1);
    const float value = node.GetFloat("value", 0);
    if (value != 0) node.inputs.push_back(AddInput(graph, node, "value", Tensor::FromVector<float>({}, {value})));
    node.attributes.erase("value");
  } else if (op == "TopK" && from < 10) {
    node.inputs.push_back(AddInput(graph, node, "k", Int64s({node.GetInt("k", 1)})));
    node.attributes.erase("k");
  } else if ((op == "Squeeze" || op == "Unsqueeze" || op == "ReduceSum") && from < 13) {
    AttributeToInput(graph, node, "axes", 1);
  } else if (op == "Split" && from < 13) {
    AttributeToInput(graph, node, "split", 1);
  } else if ((op == "Softmax" || op == "LogSoftmax" || op == "Hardmax") && from < 13) {
    const int64_t rank = RankOf(graph, GraphIndex(graph), node.inputs[0]);
    const int64_t axis = node.GetInt("axis", 1);
    node.attributes["axis"].i = -1;
    if (rank < 0 || (axis != rank - 1 && axis != -1)) {
      // The old meaning, spelled out: over the input flattened to 2-D at `axis`.
      const std::string x = node.inputs[0], y = node.outputs[0];
      const std::string flat = UniqueName(graph, y + "_flat"), soft = UniqueName(graph, y + "_2d"),
                        shape = UniqueName(graph, y + "_shape");
      Node flatten{node.name + "_flatten", "Flatten", "", {x}, {flat}, {}};
      flatten.attributes["axis"].i = axis;
      Node shape_of{node.name + "_shape", "Shape", "", {x}, {shape}, {}};
      Node reshape{node.name + "_reshape", "Reshape", "", {soft, shape}, {y}, {}};
      node.inputs[0] = flat;
      node.outputs[0] = soft;
      out.push_back(std::move(flatten));
      out.push_back(std::move(shape_of));
      out.push_back(std::move(node));
      out.push_back(std::move(reshape));
      return absl::OkStatus();
    }
  } else if (op == "Dropout" && from < 12) {
    node.attributes.erase("ratio");  // inference: Dropout passes its input through
  } else if ((op == "Upsample" || op == "Resize") && from < 11) {
    return absl::UnimplementedError(absl::StrCat(node.Describe(), " of opset ", from,
                                                 " has no conversion to opset 13 here (Resize-11 changed the "
                                                 "coordinate rules)"));
  } else if (op == "Scan" || op == "Loop" || op == "If") {
    return absl::UnimplementedError(absl::StrCat(node.Describe(), ": subgraphs are not upgraded"));
  }
  out.push_back(std::move(node));
  return absl::OkStatus();
}

}  // namespace

absl::Status UpgradeOpset(Graph& graph, int64_t target) {
  if (target != 13) return absl::InvalidArgumentError("opset upgrades go to 13 only");
  if (graph.opset >= target) return absl::OkStatus();
  if (graph.opset < 9) {
    return absl::UnimplementedError(absl::StrCat("the model is opset ", graph.opset, "; upgrades start at opset 9"));
  }
  Graph upgraded = graph;  // all or nothing
  std::vector<Node> nodes;
  for (Node& node : upgraded.nodes) {
    if (node.domain.empty()) {
      RETURN_IF_ERROR(Upgrade(upgraded, std::move(node), graph.opset, nodes));
    } else {
      nodes.push_back(std::move(node));
    }
  }
  upgraded.nodes = std::move(nodes);
  upgraded.opset = target;
  graph = std::move(upgraded);
  return absl::OkStatus();
}

}  // namespace slimserve::runtime
