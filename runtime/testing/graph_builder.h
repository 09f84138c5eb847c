// Test helpers: build small graphs in code, run them, compare tensors.
//
//   GraphBuilder b;
//   b.Input("x", {1, 3, 8, 8});
//   b.Constant("w", RandomTensor({4, 3, 3, 3}, 1));
//   b.Node("Conv", {"x", "w"}, {"y"}).Ints("pads", {1, 1, 1, 1});
//   b.Output("y");
//   Graph g = b.Build();
#ifndef SLIMSERVE_RUNTIME_TESTING_GRAPH_BUILDER_H_
#define SLIMSERVE_RUNTIME_TESTING_GRAPH_BUILDER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/executor.h"
#include "runtime/graph.h"

namespace slimserve::runtime::testing {

class NodeBuilder {
 public:
  explicit NodeBuilder(Node& node) : node_(node) {}
  NodeBuilder& Int(const std::string& name, int64_t v);
  NodeBuilder& Float(const std::string& name, float v);
  NodeBuilder& Ints(const std::string& name, std::vector<int64_t> v);
  NodeBuilder& String(const std::string& name, std::string v);
  NodeBuilder& Domain(std::string domain);

 private:
  Node& node_;
};

class GraphBuilder {
 public:
  explicit GraphBuilder(int64_t opset = 13) { graph_.opset = opset; }
  // A float input; -1 dims are dynamic.
  GraphBuilder& Input(const std::string& name, Shape shape, DataType dtype = DataType::kFloat32);
  GraphBuilder& Constant(const std::string& name, Tensor value);
  NodeBuilder Node(const std::string& op, std::vector<std::string> inputs,
                   std::vector<std::string> outputs);
  GraphBuilder& Output(const std::string& name);
  Graph Build() const { return graph_; }

 private:
  Graph graph_;
};

// Deterministic uniform values in [lo, hi).
Tensor RandomTensor(Shape shape, uint32_t seed, float lo = -1.0f, float hi = 1.0f);

// Builds an executor over `backends` (empty: reference only) and runs it.
absl::StatusOr<std::vector<Tensor>> RunGraph(const Graph& graph, absl::Span<const Tensor> inputs,
                                             std::vector<Backend*> backends = {});

// Largest |a - b| / (atol + rtol * |b|) over all elements; <= 1 means close.
// Shapes and types must match (else returns infinity).
double Mismatch(const Tensor& a, const Tensor& b, double rtol, double atol);

}  // namespace slimserve::runtime::testing

#endif  // SLIMSERVE_RUNTIME_TESTING_GRAPH_BUILDER_H_
