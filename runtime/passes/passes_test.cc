#include "runtime/passes/passes.h"

#include <algorithm>

#include "gtest/gtest.h"
#include "runtime/activation.h"
#include "runtime/testing/backend_check.h"
#include "runtime/testing/graph_builder.h"
#include "runtime/testing/qdq_graphs.h"

namespace slimserve::runtime {
namespace {

using testing::GraphBuilder;
using testing::Mismatch;
using testing::RandomTensor;

// Optimizes a copy of `graph` and checks both give the same outputs.
Graph OptimizeAndCompare(const Graph& graph, const std::vector<Tensor>& inputs) {
  Graph optimized = graph;
  EXPECT_TRUE(Optimize(optimized, {}).ok());
  auto before = testing::RunGraph(graph, inputs);
  auto after = testing::RunGraph(optimized, inputs);
  EXPECT_TRUE(before.ok()) << before.status();
  EXPECT_TRUE(after.ok()) << after.status();
  if (before.ok() && after.ok()) {
    EXPECT_EQ(before->size(), after->size());
    for (size_t i = 0; i < before->size() && i < after->size(); ++i) {
      EXPECT_LE(Mismatch((*after)[i], (*before)[i], 1e-4, 1e-5), 1.0) << "output " << i;
    }
  }
  return optimized;
}

std::vector<std::string> Ops(const Graph& g) {
  std::vector<std::string> ops;
  for (const Node& n : g.nodes) ops.push_back(n.op_type);
  return ops;
}

void AddBatchNorm(GraphBuilder& b, const std::string& in, const std::string& out, int64_t c) {
  b.Constant(out + "_scale", RandomTensor({c}, 11, 0.5f, 1.5f));
  b.Constant(out + "_shift", RandomTensor({c}, 12));
  b.Constant(out + "_mean", RandomTensor({c}, 13));
  b.Constant(out + "_var", RandomTensor({c}, 14, 0.5f, 2.0f));
  b.Node("BatchNormalization",
         {in, out + "_scale", out + "_shift", out + "_mean", out + "_var"}, {out});
}

TEST(PassesTest, ConvBatchNormReluBecomesOneFusedConv) {
  GraphBuilder b;
  b.Input("x", {-1, 3, 8, 8});
  b.Constant("w", RandomTensor({4, 3, 3, 3}, 1));
  b.Constant("bias", RandomTensor({4}, 2));
  b.Node("Conv", {"x", "w", "bias"}, {"c"}).Ints("pads", {1, 1, 1, 1});
  AddBatchNorm(b, "c", "bn", 4);
  b.Node("Relu", {"bn"}, {"y"});
  b.Output("y");
  Graph g = OptimizeAndCompare(b.Build(), {RandomTensor({2, 3, 8, 8}, 3)});
  EXPECT_EQ(Ops(g), std::vector<std::string>{"FusedConv"});
  EXPECT_EQ(FusedActivation(g.nodes[0]).kind, Activation::Kind::kRelu);
}

TEST(PassesTest, ResidualAddIsFusedAsSumBeforeTheActivation) {
  GraphBuilder b;
  b.Input("x", {1, 4, 6, 6});
  b.Constant("w1", RandomTensor({4, 4, 3, 3}, 1));
  b.Constant("w2", RandomTensor({4, 4, 3, 3}, 2));
  b.Node("Conv", {"x", "w1"}, {"c1"}).Ints("pads", {1, 1, 1, 1});
  b.Node("Relu", {"c1"}, {"r1"});
  b.Node("Conv", {"r1", "w2"}, {"c2"}).Ints("pads", {1, 1, 1, 1});
  b.Node("Add", {"c2", "x"}, {"sum"});
  b.Node("Clip", {"sum", "lo", "hi"}, {"y"});
  b.Constant("lo", Tensor::FromVector<float>({}, {0.0f}));
  b.Constant("hi", Tensor::FromVector<float>({}, {6.0f}));
  b.Output("y");
  Graph g = OptimizeAndCompare(b.Build(), {RandomTensor({1, 4, 6, 6}, 3)});
  ASSERT_EQ(Ops(g), (std::vector<std::string>{"FusedConv", "FusedConv"}));
  EXPECT_EQ(g.nodes[1].inputs.size(), 4u);
  EXPECT_EQ(g.nodes[1].inputs[3], "x");
  EXPECT_EQ(FusedActivation(g.nodes[1]).kind, Activation::Kind::kClip);
}

TEST(PassesTest, ConstantAddendIsABiasNotAResidual) {
  for (const Shape& k_shape : {Shape{1, 2, 1, 1}, Shape{2, 1, 1}, Shape{1}}) {
    GraphBuilder b;
    b.Input("x", {1, 2, 4, 4});
    b.Constant("w", RandomTensor({2, 2, 1, 1}, 1));
    b.Constant("k", RandomTensor(k_shape, 2));
    b.Node("Conv", {"x", "w"}, {"c"});
    b.Node("Add", {"c", "k"}, {"y"});
    b.Output("y");
    Graph g = OptimizeAndCompare(b.Build(), {RandomTensor({1, 2, 4, 4}, 3)});
    EXPECT_EQ(Ops(g), (std::vector<std::string>{"Conv"}));
  }
  GraphBuilder b;  // varies over space: neither a bias nor a residual
  b.Input("x", {1, 2, 4, 4});
  b.Constant("w", RandomTensor({2, 2, 1, 1}, 1));
  b.Constant("k", RandomTensor({1, 1, 4, 4}, 2));
  b.Node("Conv", {"x", "w"}, {"c"});
  b.Node("Add", {"c", "k"}, {"y"});
  b.Output("y");
  Graph g = OptimizeAndCompare(b.Build(), {RandomTensor({1, 2, 4, 4}, 3)});
  EXPECT_EQ(Ops(g), (std::vector<std::string>{"Conv", "Add"}));
}

TEST(PassesTest, ConvTransposeBatchNormFolds) {
  GraphBuilder b;
  b.Input("x", {1, 3, 5, 5});
  b.Constant("w", RandomTensor({3, 4, 2, 2}, 1));  // [Cin, Cout, k, k]
  b.Node("ConvTranspose", {"x", "w"}, {"c"}).Ints("strides", {2, 2});
  AddBatchNorm(b, "c", "y", 4);
  b.Output("y");
  Graph g = OptimizeAndCompare(b.Build(), {RandomTensor({1, 3, 5, 5}, 3)});
  EXPECT_EQ(Ops(g), (std::vector<std::string>{"ConvTranspose"}));
}

TEST(PassesTest, ScaledHardSwishChainBecomesOneFusedConv) {
  Graph g = OptimizeAndCompare(testing::ScaledHardSwishConvGraph(), {RandomTensor({1, 3, 6, 6}, 3, -3.0f, 3.0f)});
  ASSERT_EQ(Ops(g), std::vector<std::string>{"FusedConv"});
  const Activation a = FusedActivation(g.nodes[0]);
  EXPECT_EQ(a.kind, Activation::Kind::kHardSwish);
  EXPECT_FLOAT_EQ(a.scale, 0.4f);
  EXPECT_FLOAT_EQ(a.shift, -0.8f);
}

TEST(PassesTest, HardSigmoidGateOfItsOwnInputIsHardSwish) {
  GraphBuilder b;
  b.Input("x", {2, 8});
  b.Node("HardSigmoid", {"x"}, {"gate"}).Float("alpha", 1 / 6.0f).Float("beta", 0.5f);
  b.Node("Mul", {"x", "gate"}, {"y"});
  b.Input("z", {2, 8});  // gating another tensor is not HardSwish
  b.Node("HardSigmoid", {"z"}, {"zgate"}).Float("alpha", 1 / 6.0f).Float("beta", 0.5f);
  b.Node("Mul", {"x", "zgate"}, {"w"});
  b.Output("y");
  b.Output("w");
  Graph g = OptimizeAndCompare(b.Build(), {RandomTensor({2, 8}, 1, -4, 4), RandomTensor({2, 8}, 2, -4, 4)});
  EXPECT_EQ(Ops(g), (std::vector<std::string>{"HardSwish", "HardSigmoid", "Mul"}));
}

TEST(PassesTest, MatMulBiasActivationFuse) {
  GraphBuilder b;
  b.Input("x", {2, 5, 8});
  b.Constant("w", RandomTensor({8, 6}, 1));
  b.Constant("bias", RandomTensor({6}, 2));
  b.Node("MatMul", {"x", "w"}, {"m"});
  b.Node("Add", {"bias", "m"}, {"a"});
  b.Node("Tanh", {"a"}, {"y"});
  b.Output("y");
  Graph g = OptimizeAndCompare(b.Build(), {RandomTensor({2, 5, 8}, 3)});
  ASSERT_EQ(Ops(g), std::vector<std::string>{"FusedMatMul"});
  EXPECT_EQ(g.nodes[0].inputs.size(), 3u);
}

TEST(PassesTest, GemmBatchNormFolds) {
  GraphBuilder b;
  b.Input("x", {3, 8});
  b.Constant("w", RandomTensor({6, 8}, 1));
  b.Constant("c", RandomTensor({6}, 2));
  b.Node("Gemm", {"x", "w", "c"}, {"g"}).Int("transB", 1);
  AddBatchNorm(b, "g", "y", 6);
  b.Output("y");
  Graph g = OptimizeAndCompare(b.Build(), {RandomTensor({3, 8}, 3)});
  EXPECT_EQ(Ops(g), std::vector<std::string>{"Gemm"});
}

TEST(PassesTest, IdentitiesDeadNodesAndConstantsGo) {
  GraphBuilder b;
  b.Input("x", {2, 3});
  b.Constant("c1", RandomTensor({3}, 1));
  b.Constant("c2", RandomTensor({3}, 2));
  b.Node("Identity", {"x"}, {"i"});
  b.Node("Add", {"c1", "c2"}, {"c3"});
  b.Node("Mul", {"i", "c3"}, {"m"});
  b.Node("Neg", {"x"}, {"unused"});
  b.Node("Relu", {"m"}, {"r"});
  b.Node("Dropout", {"r"}, {"y"});
  b.Output("y");
  Graph g = OptimizeAndCompare(b.Build(), {RandomTensor({2, 3}, 3)});
  EXPECT_EQ(Ops(g), (std::vector<std::string>{"Mul", "Relu"}));
  EXPECT_EQ(g.nodes.back().outputs[0], "y");
  EXPECT_EQ(g.initializers.size(), 1u);
}

TEST(PassesTest, ShapeOfStaticInputFolds) {
  GraphBuilder b;
  b.Input("x", {2, 3, 4});
  b.Constant("idx", Tensor::FromVector<int64_t>({1}, {0}));
  b.Constant("rest", Tensor::FromVector<int64_t>({1}, {-1}));
  b.Node("Shape", {"x"}, {"s"});
  b.Node("Gather", {"s", "idx"}, {"n"});
  b.Node("Concat", {"n", "rest"}, {"target"}).Int("axis", 0);
  b.Node("Reshape", {"x", "target"}, {"y"});
  b.Output("y");
  Graph g = OptimizeAndCompare(b.Build(), {RandomTensor({2, 3, 4}, 3)});
  EXPECT_EQ(Ops(g), std::vector<std::string>{"Reshape"});
}

TEST(PassesTest, DecomposedLayerNormBecomesOneNode) {
  GraphBuilder b;
  b.Input("x", {2, 5, 16});
  b.Constant("two", Tensor::FromVector<float>({}, {2.0f}));
  b.Constant("eps", Tensor::FromVector<float>({}, {1e-5f}));
  b.Constant("gamma", RandomTensor({16}, 1));
  b.Constant("beta", RandomTensor({16}, 2));
  b.Node("ReduceMean", {"x"}, {"m"}).Ints("axes", {-1});
  b.Node("Sub", {"x", "m"}, {"d"});
  b.Node("Pow", {"d", "two"}, {"p"});
  b.Node("ReduceMean", {"p"}, {"v"}).Ints("axes", {-1});
  b.Node("Add", {"v", "eps"}, {"a"});
  b.Node("Sqrt", {"a"}, {"s"});
  b.Node("Div", {"d", "s"}, {"n"});
  b.Node("Mul", {"n", "gamma"}, {"g"});
  b.Node("Add", {"g", "beta"}, {"y"});
  b.Node("Relu", {"y"}, {"z"});
  b.Output("z");
  Graph g = OptimizeAndCompare(b.Build(), {RandomTensor({2, 5, 16}, 3)});
  EXPECT_EQ(Ops(g), (std::vector<std::string>{"LayerNormalization", "Relu"}));
}

// The int8 fused ops' reference runs the same float steps as the QDQ graph,
// in another order where a bias or residual sum joins: a value that lands
// within float rounding of a quantization boundary may round one step the
// other way. `atol` is one step of the output (or of what feeds it).
Graph OptimizeQuantizedAndCompare(const Graph& graph, const std::vector<Tensor>& inputs, double atol) {
  Graph optimized = graph;
  EXPECT_TRUE(Optimize(optimized, {}).ok());
  auto before = testing::RunGraph(graph, inputs);
  auto after = testing::RunGraph(optimized, inputs);
  EXPECT_TRUE(before.ok()) << before.status();
  EXPECT_TRUE(after.ok()) << after.status();
  if (before.ok() && after.ok()) {
    for (size_t i = 0; i < before->size() && i < after->size(); ++i) {
      EXPECT_LE(Mismatch((*after)[i], (*before)[i], 0, atol), 1.0) << "output " << i;
    }
  }
  return optimized;
}

const Node* Find(const Graph& g, const std::string& op, int nth = 0) {
  for (const Node& n : g.nodes) {
    if (n.op_type == op && nth-- == 0) return &n;
  }
  return nullptr;
}

TEST(PassesTest, SlimserveQdqBecomesInt8FusedOps) {
  Graph g = OptimizeQuantizedAndCompare(testing::SlimserveQdqGraph(), {RandomTensor({2, 16, 8, 8}, 3)}, 0.01);
  // The block input's Q stays; the first conv requantizes into the second,
  // which adds the quantized block input as int8 and requantizes into the
  // MaxPool (the Q after it moved before it); the head's Gemm reads the
  // flattened pool through its own Q.
  EXPECT_EQ(Ops(g), (std::vector<std::string>{"QuantizeLinear", "QFusedConv", "QFusedConv", "MaxPool",
                                               "QFusedConv", "GlobalAveragePool", "Flatten", "QuantizeLinear",
                                               "QFusedGemm"}));
  const Node* first = Find(g, "QFusedConv", 0);
  const Node* second = Find(g, "QFusedConv", 1);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  EXPECT_FLOAT_EQ(first->GetFloat("y_scale", 0), 4.0f / 255);
  EXPECT_EQ(first->GetInt("y_type", 0), static_cast<int64_t>(DataType::kUint8));
  EXPECT_EQ(FusedActivation(*first).kind, Activation::Kind::kRelu);
  ASSERT_EQ(second->inputs.size(), 7u);  // with the residual addend
  EXPECT_EQ(second->inputs[6], g.nodes[0].outputs[0]);  // x, quantized
  EXPECT_FLOAT_EQ(second->GetFloat("sum_scale", 0), 2.0f / 255);
  EXPECT_EQ(second->GetInt("sum_zero_point", 0), 128);
  EXPECT_FLOAT_EQ(second->GetFloat("y_scale", 0), 5.0f / 255);
  EXPECT_EQ(FusedActivation(*second).kind, Activation::Kind::kRelu);
}

TEST(PassesTest, FloatResidualAddendKeepsTheSumInFloat) {
  Graph g = OptimizeQuantizedAndCompare(testing::SlimserveQdqGraph(/*int8_residual=*/false),
                                        {RandomTensor({2, 16, 8, 8}, 3)}, 0.01);
  EXPECT_EQ(Ops(g), (std::vector<std::string>{"QuantizeLinear", "QFusedConv", "QFusedConv", "QuantizeLinear",
                                               "MaxPool", "QFusedConv", "GlobalAveragePool", "Flatten",
                                               "QuantizeLinear", "QFusedGemm"}));
  const Node* second = Find(g, "QFusedConv", 1);
  ASSERT_NE(second, nullptr);
  EXPECT_FALSE(second->Has("y_scale"));
  EXPECT_FALSE(second->Has("sum_scale"));
  EXPECT_EQ(second->inputs[6], "x");
}

TEST(PassesTest, OrtQdqBecomesInt8FusedOpsWhereItCan) {
  Graph g = OptimizeQuantizedAndCompare(testing::OrtQdqGraph(), {RandomTensor({2, 8, 6, 6}, 4)}, 4.0 / 255 + 1e-6);
  const std::vector<std::string> ops = Ops(g);
  EXPECT_EQ(std::count(ops.begin(), ops.end(), "QFusedConv"), 2);
  EXPECT_EQ(std::count(ops.begin(), ops.end(), "QFusedMatMul"), 1);
  EXPECT_EQ(std::count(ops.begin(), ops.end(), "FusedConv"), 1);  // float weights stay float
  EXPECT_EQ(std::count(ops.begin(), ops.end(), "Add"), 1);        // QDQ around an Add: float
  const Node* first = Find(g, "QFusedConv", 0);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->GetInt("y_type", 0), static_cast<int64_t>(DataType::kInt8));
  EXPECT_EQ(first->GetInt("y_zero_point", 0), 3);
  EXPECT_EQ(first->inputs.size(), 6u);  // the int32 bias, folded to float
}

TEST(PassesTest, DynamicQdqMatMulTakesItsBias) {
  Graph g = OptimizeQuantizedAndCompare(testing::DynamicQdqGraph(), {RandomTensor({2, 5, 12}, 5)}, 1e-5);
  EXPECT_EQ(Ops(g), (std::vector<std::string>{"DynamicQuantizeLinear", "QFusedMatMul"}));
}

TEST(PassesTest, QdqPatternsWithZeroPointWeightsStayFloat) {
  GraphBuilder b;
  b.Input("x", {1, 4});
  b.Constant("w_q", Tensor::FromVector<int8_t>({4, 3}, std::vector<int8_t>(12, 5)));
  b.Constant("w_s", Tensor::FromVector<float>({}, {0.1f}));
  b.Constant("w_z", Tensor::FromVector<int8_t>({}, {1}));  // asymmetric weights
  b.Constant("x_s", Tensor::FromVector<float>({}, {0.01f}));
  b.Constant("x_z", Tensor::FromVector<uint8_t>({}, {128}));
  b.Node("QuantizeLinear", {"x", "x_s", "x_z"}, {"x_q"});
  b.Node("DequantizeLinear", {"x_q", "x_s", "x_z"}, {"x_dq"});
  b.Node("DequantizeLinear", {"w_q", "w_s", "w_z"}, {"w"});
  b.Node("MatMul", {"x_dq", "w"}, {"y"});
  b.Output("y");
  Graph g = OptimizeAndCompare(b.Build(), {RandomTensor({1, 4}, 6)});
  EXPECT_EQ(Ops(g), (std::vector<std::string>{"QuantizeLinear", "DequantizeLinear", "MatMul"}));
}

}  // namespace
}  // namespace slimserve::runtime

namespace slimserve::runtime {
namespace {

// Opset 9 forms (parameters as attributes) -> opset 13 forms (as inputs),
// computing the same outputs.
TEST(UpgradeOpset, AttributesBecomeInputsAndOutputsStayTheSame) {
  GraphBuilder b(9);
  b.Input("x", {2, 3, 4});
  b.Node("Clip", {"x"}, {"c"}).Float("min", -0.5f).Float("max", 0.5f);
  b.Node("Slice", {"c"}, {"s"}).Ints("starts", {0, 1}).Ints("ends", {2, 3}).Ints("axes", {0, 2});
  b.Node("Unsqueeze", {"s"}, {"u"}).Ints("axes", {0});
  b.Node("Squeeze", {"u"}, {"q"}).Ints("axes", {0});
  b.Node("Pad", {"q"}, {"p"}).Ints("pads", {0, 0, 1, 0, 0, 1}).Float("value", 1.0f);
  b.Node("ReduceSum", {"p"}, {"r"}).Ints("axes", {1}).Int("keepdims", 1);
  b.Node("Split", {"r"}, {"a", "d"}).Int("axis", 2).Ints("split", {1, 3});
  b.Node("Softmax", {"d"}, {"y"}).Int("axis", 2);
  b.Output("a");
  b.Output("y");
  Graph graph = b.Build();
  graph.value_info["d"] = ValueInfo{"d", DataType::kFloat32, {2, 1, 3}, {}, true};

  Graph upgraded = graph;
  ASSERT_TRUE(UpgradeOpset(upgraded, 13).ok());
  EXPECT_EQ(upgraded.opset, 13);
  for (const Node& n : upgraded.nodes) {
    for (const char* moved : {"min", "max", "starts", "ends", "axes", "pads", "value", "split"}) {
      EXPECT_FALSE(n.Has(moved)) << n.Describe() << " still has " << moved;
    }
  }
  const std::vector<Tensor> inputs = {RandomTensor({2, 3, 4}, 5)};
  auto before = testing::RunGraph(graph, inputs);
  auto after = testing::RunGraph(upgraded, inputs);
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_TRUE(after.ok()) << after.status();
  for (size_t i = 0; i < before->size(); ++i) EXPECT_LE(Mismatch((*after)[i], (*before)[i], 1e-6, 1e-7), 1.0);
}

TEST(UpgradeOpset, SoftmaxOverSeveralAxesKeepsItsMeaning) {
  GraphBuilder b(11);
  b.Input("x", {2, 3, 4});
  b.Node("Relu", {"x"}, {"r"});
  b.Node("Softmax", {"r"}, {"y"}).Int("axis", 1);  // over [2, 12]: not one axis of opset 13
  b.Output("y");
  const Graph graph = b.Build();
  Graph upgraded = graph;
  ASSERT_TRUE(UpgradeOpset(upgraded, 13).ok());
  EXPECT_EQ(Ops(upgraded), (std::vector<std::string>{"Relu", "Flatten", "Shape", "Softmax", "Reshape"}));
  const std::vector<Tensor> inputs = {RandomTensor({2, 3, 4}, 6)};
  auto before = testing::RunGraph(graph, inputs);
  auto after = testing::RunGraph(upgraded, inputs);
  ASSERT_TRUE(before.ok() && after.ok());
  EXPECT_LE(Mismatch((*after)[0], (*before)[0], 1e-6, 1e-7), 1.0);
}

TEST(UpgradeOpset, RefusesWhatItCannotConvertAndLeavesTheGraphAlone) {
  GraphBuilder b(9);
  b.Input("x", {1, 3, 4, 4});
  b.Node("Clip", {"x"}, {"c"}).Float("min", 0.0f);
  b.Node("Upsample", {"c", "scales"}, {"y"}).String("mode", "nearest");
  b.Constant("scales", Tensor::FromVector<float>({4}, {1, 1, 2, 2}));
  b.Output("y");
  Graph graph = b.Build();
  const absl::Status status = UpgradeOpset(graph, 13);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(status.message().find("Upsample"), std::string::npos) << status;
  EXPECT_EQ(graph.opset, 9);
  EXPECT_TRUE(graph.nodes[0].Has("min"));
}

}  // namespace
}  // namespace slimserve::runtime
