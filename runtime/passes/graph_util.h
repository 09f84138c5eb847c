// Lookups over a Graph used by the passes. Valid until the graph changes.
#ifndef SLIMSERVE_RUNTIME_PASSES_GRAPH_UTIL_H_
#define SLIMSERVE_RUNTIME_PASSES_GRAPH_UTIL_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "runtime/graph.h"

namespace slimserve::runtime {

class GraphIndex {
 public:
  explicit GraphIndex(const Graph& graph);

  // Index of the node producing `value`, or -1.
  int Producer(const std::string& value) const;
  // Number of node inputs reading `value`.
  int Readers(const std::string& value) const;
  bool IsGraphOutput(const std::string& value) const { return outputs_.contains(value); }
  // True when `value` is read by exactly one node and is not a graph output.
  bool SingleUse(const std::string& value) const;
  const Tensor* Constant(const std::string& value) const;

 private:
  const Graph& graph_;
  absl::flat_hash_map<std::string, int> producer_;
  absl::flat_hash_map<std::string, int> readers_;
  absl::flat_hash_set<std::string> outputs_;
};

// The initializer named `name`, or null.
const Tensor* FindConstant(const Graph& graph, const std::string& name);
// Replaces every read of `from` (node inputs and graph outputs) by `to`.
void RenameReads(Graph& graph, const std::string& from, const std::string& to);
// A name not used by any value of the graph, based on `base`.
std::string UniqueName(const Graph& graph, const std::string& base);
// Removes the nodes whose `dead` flag is set, keeping the order of the others.
void RemoveNodes(Graph& graph, const std::vector<bool>& dead);

}  // namespace slimserve::runtime

#endif  // SLIMSERVE_RUNTIME_PASSES_GRAPH_UTIL_H_
