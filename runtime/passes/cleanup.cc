// Passes that remove work: identities, constant subgraphs, dead nodes; and
// Optimize, which runs every pass in order.
#include "absl/container/flat_hash_set.h"
#include "runtime/passes/graph_util.h"
#include "runtime/passes/passes.h"
#include "runtime/reference/op_registry.h"
#include "runtime/status_macros.h"

namespace slimserve::runtime {
namespace {

// Folded outputs larger than this stay computed at run time, so folding never
// bloats a model (e.g. a ConstantOfShape of a large activation).
constexpr int64_t kMaxFoldedBytes = int64_t{16} << 20;

bool IsIdentity(const Node& node) {
  if (!node.domain.empty() || node.inputs.empty() || node.inputs[0].empty()) return false;
  if (node.op_type == "Identity") return true;
  // Dropout in inference mode, mask unused, no training_mode input.
  return node.op_type == "Dropout" && (node.outputs.size() == 1 || node.outputs[1].empty()) &&
         node.inputs.size() < 3;
}

}  // namespace

void RemoveIdentities(Graph& graph) {
  std::vector<bool> dead(graph.nodes.size(), false);
  absl::flat_hash_set<std::string> graph_inputs;
  for (const ValueInfo& v : graph.inputs) graph_inputs.insert(v.name);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (!IsIdentity(graph.nodes[i])) continue;
    const std::string in = graph.nodes[i].inputs[0];
    const std::string out = graph.nodes[i].outputs[0];
    GraphIndex index(graph);
    if (!index.IsGraphOutput(out)) {
      RenameReads(graph, out, in);
      dead[i] = true;
      continue;
    }
    // The output is a graph output: let the producer write it directly.
    const int producer = index.Producer(in);
    if (producer < 0 || index.IsGraphOutput(in) || graph_inputs.contains(in)) continue;
    for (std::string& o : graph.nodes[producer].outputs) {
      if (o == in) o = out;
    }
    RenameReads(graph, in, out);
    dead[i] = true;
  }
  RemoveNodes(graph, dead);
}

absl::Status FoldConstants(Graph& graph) {
  // Shapes known before any input arrives: fully static graph inputs.
  absl::flat_hash_map<std::string, const ValueInfo*> static_inputs;
  for (const ValueInfo& v : graph.inputs) {
    bool is_static = v.has_shape;
    for (int64_t d : v.shape) is_static = is_static && d >= 0;
    if (is_static) static_inputs[v.name] = &v;
  }
  std::vector<bool> dead(graph.nodes.size(), false);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& node = graph.nodes[i];
    const reference::OpDef* op = reference::FindOp(node);
    if (op == nullptr) continue;
    std::vector<Tensor> inputs;
    bool known = true;
    for (const std::string& in : node.inputs) {
      if (in.empty()) {
        inputs.emplace_back();
      } else if (auto it = graph.initializers.find(in); it != graph.initializers.end()) {
        inputs.push_back(it->second);
      } else if (auto s = static_inputs.find(in); op->shape_only && s != static_inputs.end()) {
        inputs.push_back(Tensor::View(s->second->dtype, s->second->shape, nullptr));
      } else {
        known = false;
      }
    }
    if (!known || node.outputs.empty()) continue;
    absl::StatusOr<std::vector<Tensor>> outputs =
        reference::Evaluate(node, graph.opset, inputs, kMaxFoldedBytes);
    if (!outputs.ok()) {
      // Too large to fold is fine: it runs at request time. Anything else is a
      // real error in the model.
      if (outputs.status().code() == absl::StatusCode::kResourceExhausted) continue;
      return outputs.status();
    }
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      if (!node.outputs[k].empty()) graph.initializers[node.outputs[k]] = (*outputs)[k];
    }
    dead[i] = true;
  }
  RemoveNodes(graph, dead);
  return absl::OkStatus();
}

void EliminateDeadNodes(Graph& graph) {
  absl::flat_hash_set<std::string> live;
  for (const ValueInfo& out : graph.outputs) live.insert(out.name);
  std::vector<bool> dead(graph.nodes.size(), false);
  for (int i = static_cast<int>(graph.nodes.size()) - 1; i >= 0; --i) {
    const Node& node = graph.nodes[i];
    bool used = false;
    for (const std::string& out : node.outputs) used = used || live.contains(out);
    if (!used) {
      dead[i] = true;
      continue;
    }
    for (const std::string& in : node.inputs) live.insert(in);
  }
  RemoveNodes(graph, dead);
  for (auto it = graph.initializers.begin(); it != graph.initializers.end();) {
    if (live.contains(it->first)) {
      ++it;
    } else {
      graph.initializers.erase(it++);
    }
  }
}

absl::Status Optimize(Graph& graph, const OptimizeOptions& options) {
  if (options.remove_identities) RemoveIdentities(graph);
  // Fused ops are not standard ONNX: callers that export ask for no fusion.
  const bool quantized = options.fuse && options.fuse_quantized;
  if (quantized) {
    FuseQuantizedInputs(graph);
    EliminateDeadNodes(graph);  // weight DequantizeLinear nodes read by nothing now
  }
  if (options.fold_constants) RETURN_IF_ERROR(FoldConstants(graph));
  if (options.fold_channel_affine) RETURN_IF_ERROR(FoldChannelAffine(graph));
  if (options.fuse) {
    FuseLayerNorm(graph);
    FuseMatMulBias(graph);
    FuseResidualAdd(graph);
    FuseHardSwish(graph);
    FuseActivations(graph);
  }
  if (quantized) FuseQuantizedOutputs(graph);
  EliminateDeadNodes(graph);
  return graph.Validate();
}

}  // namespace slimserve::runtime
