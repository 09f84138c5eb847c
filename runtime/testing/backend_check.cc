#include "runtime/testing/backend_check.h"

#include "gtest/gtest.h"
#include "runtime/executor.h"
#include "runtime/passes/passes.h"
#include "runtime/testing/graph_builder.h"

namespace slimserve::runtime::testing {

void ExpectMatchesReference(Backend& backend, const Graph& graph, const std::vector<Tensor>& inputs,
                            const std::vector<std::string>& on, const std::vector<std::string>& off,
                            bool optimize) {
  Graph g = graph;
  if (optimize) {
    ASSERT_TRUE(Optimize(g, {}).ok());
  }
  ExecutorOptions options;
  options.backends = {&backend};
  options.num_threads = 2;
  auto executor = Executor::Create(g, options);
  ASSERT_TRUE(executor.ok()) << executor.status();
  auto summary = (*executor)->Prepare(inputs);
  ASSERT_TRUE(summary.ok()) << summary.status();
  auto runs_here = [&](const std::string& op) {
    for (const auto& e : summary->nodes) {
      if (e.op_type == op && e.backend == backend.name()) return true;
    }
    return false;
  };
  for (const std::string& op : on) EXPECT_TRUE(runs_here(op)) << op << " did not run on " << backend.name();
  for (const std::string& op : off) EXPECT_FALSE(runs_here(op)) << op << " ran on " << backend.name();
  auto got = (*executor)->Run(inputs);
  ASSERT_TRUE(got.ok()) << got.status();
  auto want = RunGraph(graph, inputs);
  ASSERT_TRUE(want.ok()) << want.status();
  ASSERT_EQ(got->size(), want->size());
  for (size_t i = 0; i < got->size(); ++i) {
    EXPECT_LE(Mismatch((*got)[i], (*want)[i], 1e-3, 1e-4), 1.0) << "output " << i;
  }
}

Graph ConvGraph(const ConvCase& c) {
  GraphBuilder b;
  b.Input("x", c.x);
  b.Constant("w", RandomTensor(c.w, 1));
  b.Constant("b", RandomTensor({c.w[0]}, 2));
  auto node = b.Node("Conv", {"x", "w", c.bias ? "b" : ""}, {"y"});
  node.Ints("strides", c.strides).Ints("dilations", c.dilations).Int("group", c.group);
  if (c.auto_pad.empty()) {
    node.Ints("pads", c.pads);
  } else {
    node.String("auto_pad", c.auto_pad);
  }
  b.Output("y");
  return b.Build();
}

Graph ScaledHardSwishConvGraph() {
  GraphBuilder b;
  b.Input("x", {1, 3, 6, 6});
  b.Constant("w", RandomTensor({4, 3, 3, 3}, 1));
  b.Constant("bias", RandomTensor({4}, 2));
  for (const auto& [name, v] : std::vector<std::pair<std::string, float>>{
           {"s1", 0.9f}, {"t1", 1.8f}, {"three", 3}, {"zero", 0}, {"six", 6}, {"s2", 0.4f}, {"t2", -0.8f}}) {
    b.Constant(name, Tensor::FromVector<float>({1}, {v}));
  }
  b.Node("Conv", {"x", "w", "bias"}, {"c"}).Ints("pads", {1, 1, 1, 1});
  b.Node("Mul", {"s1", "c"}, {"m1"});
  b.Node("Add", {"m1", "t1"}, {"a1"});
  b.Node("Add", {"a1", "three"}, {"a3"});
  b.Node("Clip", {"a3", "zero", "six"}, {"clip"});
  b.Node("Mul", {"a1", "clip"}, {"gated"});
  b.Node("Div", {"gated", "six"}, {"hs"});
  b.Node("Mul", {"s2", "hs"}, {"m2"});
  b.Node("Add", {"m2", "t2"}, {"y"});
  b.Output("y");
  return b.Build();
}

}  // namespace slimserve::runtime::testing
