#include "runtime/passes/graph_util.h"

#include "absl/strings/str_cat.h"

namespace slimserve::runtime {

GraphIndex::GraphIndex(const Graph& graph) : graph_(graph) {
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    for (const std::string& out : graph.nodes[i].outputs) {
      if (!out.empty()) producer_[out] = static_cast<int>(i);
    }
    for (const std::string& in : graph.nodes[i].inputs) {
      if (!in.empty()) ++readers_[in];
    }
  }
  for (const ValueInfo& out : graph.outputs) outputs_.insert(out.name);
}

int GraphIndex::Producer(const std::string& value) const {
  auto it = producer_.find(value);
  return it == producer_.end() ? -1 : it->second;
}

int GraphIndex::Readers(const std::string& value) const {
  auto it = readers_.find(value);
  return it == readers_.end() ? 0 : it->second;
}

bool GraphIndex::SingleUse(const std::string& value) const {
  return Readers(value) == 1 && !IsGraphOutput(value);
}

const Tensor* GraphIndex::Constant(const std::string& value) const { return FindConstant(graph_, value); }

const Tensor* FindConstant(const Graph& graph, const std::string& name) {
  auto it = graph.initializers.find(name);
  return it == graph.initializers.end() ? nullptr : &it->second;
}

void RenameReads(Graph& graph, const std::string& from, const std::string& to) {
  for (Node& node : graph.nodes) {
    for (std::string& in : node.inputs) {
      if (in == from) in = to;
    }
  }
  for (ValueInfo& out : graph.outputs) {
    if (out.name == from) out.name = to;
  }
}

std::string UniqueName(const Graph& graph, const std::string& base) {
  absl::flat_hash_set<std::string> used;
  for (const auto& [name, t] : graph.initializers) used.insert(name);
  for (const ValueInfo& v : graph.inputs) used.insert(v.name);
  for (const Node& node : graph.nodes) used.insert(node.outputs.begin(), node.outputs.end());
  std::string name = base;
  for (int i = 1; used.contains(name); ++i) name = absl::StrCat(base, "_", i);
  return name;
}

void RemoveNodes(Graph& graph, const std::vector<bool>& dead) {
  std::vector<Node> kept;
  kept.reserve(graph.nodes.size());
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (!dead[i]) kept.push_back(std::move(graph.nodes[i]));
  }
  graph.nodes = std::move(kept);
}

}  // namespace slimserve::runtime
