#include "runtime/executor.h"

#include <thread>

#include "gtest/gtest.h"

namespace slimserve::runtime {
namespace {

Node MakeNode(std::string op, std::vector<std::string> in, std::vector<std::string> out) {
  Node n;
  n.op_type = std::move(op);
  n.name = n.op_type + "_" + out[0];
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

ValueInfo Info(std::string name, DataType dtype, Shape shape) {
  ValueInfo v;
  v.name = std::move(name);
  v.dtype = dtype;
  v.shape = std::move(shape);
  v.dim_names.assign(v.shape.size(), "");
  v.has_shape = true;
  return v;
}

// y = Relu(x + b) reshaped to [batch, -1] through a Shape/Gather/Concat subgraph.
Graph AddReluReshapeGraph() {
  Graph g;
  g.opset = 13;
  g.inputs.push_back(Info("x", DataType::kFloat32, {-1, 2, 2}));
  g.outputs.push_back(Info("y", DataType::kFloat32, {-1, 4}));
  g.initializers["b"] = Tensor::FromVector<float>({2}, {1.0f, -10.0f});
  g.initializers["zero"] = Tensor::FromVector<int64_t>({1}, {0});
  g.initializers["minus_one"] = Tensor::FromVector<int64_t>({1}, {-1});
  g.nodes.push_back(MakeNode("Add", {"x", "b"}, {"sum"}));
  g.nodes.push_back(MakeNode("Relu", {"sum"}, {"act"}));
  g.nodes.push_back(MakeNode("Shape", {"x"}, {"shape"}));
  g.nodes.push_back(MakeNode("Gather", {"shape", "zero"}, {"batch"}));
  g.nodes.push_back(MakeNode("Concat", {"batch", "minus_one"}, {"target"}));
  g.nodes.back().attributes["axis"].i = 0;
  g.nodes.push_back(MakeNode("Reshape", {"act", "target"}, {"y"}));
  return g;
}

TEST(ExecutorTest, RunsAndFoldsShapeSubgraph) {
  auto executor = Executor::Create(AddReluReshapeGraph(), {}).value();
  Tensor x = Tensor::FromVector<float>({1, 2, 2}, {1, 2, 3, 4});
  auto summary = executor->Prepare({x}).value();
  // Shape, Gather and Concat fold; Reshape is a view: only Add and Relu run.
  EXPECT_EQ(summary.folded_nodes, 3);
  ASSERT_EQ(summary.nodes.size(), 2u);
  std::vector<Tensor> out = executor->Run({x}).value();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].shape(), (Shape{1, 4}));
  const std::vector<float> expected = {2, 0, 4, 0};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(out[0].data<float>()[i], expected[i]);
}

TEST(ExecutorTest, DynamicBatchBuildsOnePlanPerShapeAndNothingAfterWarmup) {
  auto executor = Executor::Create(AddReluReshapeGraph(), {}).value();
  Tensor x1 = Tensor::Allocate(DataType::kFloat32, {1, 2, 2}).value();
  Tensor x3 = Tensor::Allocate(DataType::kFloat32, {3, 2, 2}).value();
  ASSERT_TRUE(executor->Run({x1}).ok());
  ASSERT_TRUE(executor->Run({x3}).ok());
  const ExecutorStats warm = executor->stats();
  EXPECT_EQ(warm.plans_built, 2);
  for (int i = 0; i < 5; ++i) {
    auto out = executor->Run({i % 2 ? x1 : x3});
    ASSERT_TRUE(out.ok());
    EXPECT_EQ((*out)[0].shape()[0], i % 2 ? 1 : 3);
  }
  const ExecutorStats after = executor->stats();
  EXPECT_EQ(after.plans_built, warm.plans_built);
  EXPECT_EQ(after.kernels_compiled, warm.kernels_compiled);
  EXPECT_EQ(after.arenas_allocated, warm.arenas_allocated);
  EXPECT_EQ(after.runs, warm.runs + 5);
}

TEST(ExecutorTest, ProfileTimesEveryKernelOfEveryRun) {
  ExecutorOptions options;
  options.profile = true;
  auto executor = Executor::Create(AddReluReshapeGraph(), options).value();
  Tensor x = Tensor::Allocate(DataType::kFloat32, {64, 2, 2}).value();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(executor->Run({x}).ok());
  auto summary = executor->Prepare({x}).value();
  EXPECT_EQ(summary.profiled_runs, 3);
  ASSERT_EQ(summary.nodes.size(), 2u);
  for (const auto& node : summary.nodes) EXPECT_GT(node.mean_ms, 0) << node.op_type;

  auto unprofiled = Executor::Create(AddReluReshapeGraph(), {}).value();
  ASSERT_TRUE(unprofiled->Run({x}).ok());
  EXPECT_EQ(unprofiled->Prepare({x}).value().profiled_runs, 0);
}

TEST(ExecutorTest, ConcurrentRunsGiveTheirOwnResults) {
  auto executor = Executor::Create(AddReluReshapeGraph(), {}).value();
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const float v = static_cast<float>(t * 1000 + i);
        Tensor x = Tensor::FromVector<float>({1, 2, 2}, {v, v, v, v});
        auto out = executor->Run({x});
        if (!out.ok() || (*out)[0].data<float>()[0] != v + 1) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(ExecutorTest, RejectsBadInputsWithClearErrors) {
  auto executor = Executor::Create(AddReluReshapeGraph(), {}).value();
  Tensor wrong_type = Tensor::Allocate(DataType::kInt64, {1, 2, 2}).value();
  auto status = executor->Run({wrong_type}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("'x' has type int64"), std::string::npos) << status;
  Tensor wrong_shape = Tensor::Allocate(DataType::kFloat32, {1, 3, 2}).value();
  status = executor->Run({wrong_shape}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("expects [?,2,2]"), std::string::npos) << status;
  EXPECT_FALSE(executor->Run({}).ok());
}

TEST(ExecutorTest, UnsupportedOpIsNamed) {
  Graph g = AddReluReshapeGraph();
  g.nodes.insert(g.nodes.begin(), MakeNode("LSTM", {"x"}, {"h"}));
  auto status = Executor::Create(std::move(g), {}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(status.message().find("LSTM"), std::string::npos) << status;
}

}  // namespace
}  // namespace slimserve::runtime
