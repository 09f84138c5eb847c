#include "runtime/testing/graph_builder.h"

#include <cmath>
#include <limits>

namespace slimserve::runtime::testing {

NodeBuilder& NodeBuilder::Int(const std::string& name, int64_t v) {
  Attribute& a = node_.attributes[name];
  a.type = Attribute::Type::kInt;
  a.i = v;
  return *this;
}

NodeBuilder& NodeBuilder::Float(const std::string& name, float v) {
  Attribute& a = node_.attributes[name];
  a.type = Attribute::Type::kFloat;
  a.f = v;
  return *this;
}

NodeBuilder& NodeBuilder::Ints(const std::string& name, std::vector<int64_t> v) {
  Attribute& a = node_.attributes[name];
  a.type = Attribute::Type::kInts;
  a.ints = std::move(v);
  return *this;
}

NodeBuilder& NodeBuilder::String(const std::string& name, std::string v) {
  Attribute& a = node_.attributes[name];
  a.type = Attribute::Type::kString;
  a.s = std::move(v);
  return *this;
}

NodeBuilder& NodeBuilder::Domain(std::string domain) {
  node_.domain = std::move(domain);
  return *this;
}

GraphBuilder& GraphBuilder::Input(const std::string& name, Shape shape, DataType dtype) {
  ValueInfo v;
  v.name = name;
  v.dtype = dtype;
  v.shape = std::move(shape);
  v.dim_names.assign(v.shape.size(), "");
  v.has_shape = true;
  graph_.inputs.push_back(std::move(v));
  return *this;
}

GraphBuilder& GraphBuilder::Constant(const std::string& name, Tensor value) {
  graph_.initializers[name] = std::move(value);
  return *this;
}

NodeBuilder GraphBuilder::Node(const std::string& op, std::vector<std::string> inputs,
                               std::vector<std::string> outputs) {
  runtime::Node node;
  node.op_type = op;
  node.name = op + "_" + std::to_string(graph_.nodes.size());
  node.inputs = std::move(inputs);
  node.outputs = std::move(outputs);
  graph_.nodes.push_back(std::move(node));
  return NodeBuilder(graph_.nodes.back());
}

GraphBuilder& GraphBuilder::Output(const std::string& name) {
  ValueInfo v;
  v.name = name;
  graph_.outputs.push_back(std::move(v));
  return *this;
}

Tensor RandomTensor(Shape shape, uint32_t seed, float lo, float hi) {
  Tensor t = Tensor::Allocate(DataType::kFloat32, std::move(shape)).value();
  uint32_t state = seed * 2654435761u + 1;
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    state = state * 1664525u + 1013904223u;
    t.data<float>()[i] = lo + (hi - lo) * static_cast<float>(state >> 8) / 16777216.0f;
  }
  return t;
}

absl::StatusOr<std::vector<Tensor>> RunGraph(const Graph& graph, absl::Span<const Tensor> inputs,
                                             std::vector<Backend*> backends) {
  ExecutorOptions options;
  options.backends = std::move(backends);
  options.num_threads = 2;
  auto executor = Executor::Create(graph, options);
  if (!executor.ok()) return executor.status();
  return (*executor)->Run(inputs);
}

double Mismatch(const Tensor& a, const Tensor& b, double rtol, double atol) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return std::numeric_limits<double>::infinity();
  double worst = 0;
  for (int64_t i = 0; i < a.num_elements(); ++i) {
    const double x = a.GetDouble(i), y = b.GetDouble(i);
    if (std::isnan(x) || std::isnan(y)) {
      if (std::isnan(x) != std::isnan(y)) return std::numeric_limits<double>::infinity();
      continue;
    }
    worst = std::max(worst, std::fabs(x - y) / (atol + rtol * std::fabs(y)));
  }
  return worst;
}

}  // namespace slimserve::runtime::testing
