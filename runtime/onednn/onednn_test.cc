// Cross-checks every oneDNN kernel against the reference backend.
#include "runtime/onednn/backend.h"

#include <algorithm>

#include "gtest/gtest.h"
#include "runtime/passes/passes.h"
#include "runtime/reference/winograd_int8.h"
#include "runtime/testing/backend_check.h"
#include "runtime/testing/graph_builder.h"
#include "runtime/testing/qdq_graphs.h"

namespace slimserve::runtime::onednn {
namespace {

using testing::GraphBuilder;
using testing::Mismatch;
using testing::RandomTensor;

class OnednnTest : public ::testing::Test {
 protected:
  void SetUp() override { backend_ = OnednnBackend::Create({}).value(); }

  void ExpectMatches(const Graph& graph, const std::vector<Tensor>& inputs,
                     const std::vector<std::string>& on_onednn, bool optimize = false) {
    testing::ExpectMatchesReference(*backend_, graph, inputs, on_onednn, {}, optimize);
  }

  std::unique_ptr<OnednnBackend> backend_;
};

using testing::ConvCase;

TEST_F(OnednnTest, ConvVariants) {
  const ConvCase cases[] = {
      {"3x3 pad", {2, 3, 10, 10}, {8, 3, 3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 1, "", true},
      {"strided asym", {1, 4, 9, 11}, {6, 4, 3, 2}, {2, 3}, {0, 1, 2, 0}, {1, 1}, 1, "", false},
      {"dilated", {1, 4, 12, 12}, {4, 4, 3, 3}, {1, 1}, {2, 2, 2, 2}, {2, 2}, 1, "", true},
      {"grouped", {1, 8, 7, 7}, {8, 4, 3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 2, "", true},
      {"depthwise", {1, 16, 9, 9}, {16, 1, 3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, 16, "", true},
      {"same upper", {1, 3, 7, 7}, {5, 3, 4, 4}, {2, 2}, {}, {1, 1}, 1, "SAME_UPPER", true},
      {"1d", {2, 3, 20}, {4, 3, 5}, {2}, {2, 2}, {1}, 1, "", true},
      {"3d", {1, 2, 5, 6, 7}, {3, 2, 3, 3, 3}, {1, 1, 1}, {1, 1, 1, 1, 1, 1}, {1, 1, 1}, 1, "", true},
      {"winograd-sized", {1, 32, 14, 14}, {32, 32, 3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 1, "", true},
  };
  for (const ConvCase& cc : cases) {
    SCOPED_TRACE(cc.name);
    ExpectMatches(testing::ConvGraph(cc), {RandomTensor(cc.x, 3)}, {"Conv"});
  }
}

TEST_F(OnednnTest, FusedResidualBlockWithBlockedLayoutsAndAHead) {
  GraphBuilder b;
  b.Input("x", {-1, 16, 8, 8});
  b.Constant("w1", RandomTensor({16, 16, 3, 3}, 1, -0.2f, 0.2f));
  b.Constant("w2", RandomTensor({16, 16, 3, 3}, 2, -0.2f, 0.2f));
  b.Constant("fc", RandomTensor({10, 16}, 3));
  b.Constant("fc_b", RandomTensor({10}, 4));
  b.Node("Conv", {"x", "w1"}, {"c1"}).Ints("pads", {1, 1, 1, 1});
  b.Node("Relu", {"c1"}, {"r1"});
  b.Node("Conv", {"r1", "w2"}, {"c2"}).Ints("pads", {1, 1, 1, 1});
  b.Node("Add", {"x", "c2"}, {"s"});
  b.Node("Relu", {"s"}, {"r2"});
  b.Node("GlobalAveragePool", {"r2"}, {"p"});
  b.Node("Flatten", {"p"}, {"f"});
  b.Node("Gemm", {"f", "fc", "fc_b"}, {"y"}).Int("transB", 1);
  b.Output("y");
  b.Output("r1");  // an intermediate in a blocked layout, read back as an output
  ExpectMatches(b.Build(), {RandomTensor({3, 16, 8, 8}, 5)},
                {"FusedConv", "GlobalAveragePool", "Gemm"}, /*optimize=*/true);
}

TEST_F(OnednnTest, FusedConvWithHardSwishAndAffine) {
  ExpectMatches(testing::ScaledHardSwishConvGraph(), {RandomTensor({1, 3, 6, 6}, 3, -3.0f, 3.0f)},
                {"FusedConv"}, /*optimize=*/true);
}

TEST_F(OnednnTest, MatMulAndGemm) {
  {
    GraphBuilder b;
    b.Input("a", {2, 3, 4, 5});
    b.Constant("w", RandomTensor({5, 6}, 1));
    b.Node("MatMul", {"a", "w"}, {"y"});
    b.Output("y");
    ExpectMatches(b.Build(), {RandomTensor({2, 3, 4, 5}, 2)}, {"MatMul"});
  }
  {
    GraphBuilder b;  // fused into one [24, 5] x [5, 6] product with bias and ReLU
    b.Input("a", {2, 3, 4, 5});
    b.Constant("w", RandomTensor({5, 6}, 1));
    b.Constant("bias", RandomTensor({6}, 3));
    b.Node("MatMul", {"a", "w"}, {"m"});
    b.Node("Add", {"m", "bias"}, {"s"});
    b.Node("Relu", {"s"}, {"y"});
    b.Output("y");
    ExpectMatches(b.Build(), {RandomTensor({2, 3, 4, 5}, 2)}, {"FusedMatMul"}, /*optimize=*/true);
  }
  {
    GraphBuilder b;  // both operands at run time, broadcast batch
    b.Input("a", {4, 5});
    b.Input("b", {2, 5, 6});
    b.Node("MatMul", {"a", "b"}, {"y"});
    b.Output("y");
    ExpectMatches(b.Build(), {RandomTensor({4, 5}, 1), RandomTensor({2, 5, 6}, 2)}, {"MatMul"});
  }
  {
    GraphBuilder b;
    b.Input("a", {7, 3});
    b.Constant("w", RandomTensor({6, 7}, 1));
    b.Constant("c", RandomTensor({6}, 2));
    b.Node("Gemm", {"a", "w", "c"}, {"y"})
        .Int("transA", 1)
        .Int("transB", 1)
        .Float("alpha", 0.5f)
        .Float("beta", 2.0f);
    b.Output("y");
    ExpectMatches(b.Build(), {RandomTensor({7, 3}, 3)}, {"Gemm"});
  }
}

TEST_F(OnednnTest, Pooling) {
  struct PoolCase {
    const char* op;
    std::vector<int64_t> kernel, strides, pads;
    int64_t ceil, include_pad;
  };
  const PoolCase cases[] = {
      {"MaxPool", {3, 3}, {2, 2}, {1, 1, 1, 1}, 0, 0},
      {"MaxPool", {3, 3}, {2, 2}, {0, 0, 0, 0}, 1, 0},
      {"AveragePool", {3, 3}, {2, 2}, {1, 1, 1, 1}, 0, 1},
      {"AveragePool", {2, 2}, {2, 2}, {0, 0, 0, 0}, 1, 0},
      {"AveragePool", {3, 2}, {1, 2}, {1, 0, 1, 1}, 0, 0},
  };
  for (const PoolCase& pc : cases) {
    SCOPED_TRACE(pc.op);
    GraphBuilder b;
    b.Input("x", {2, 3, 10, 9});
    b.Node(pc.op, {"x"}, {"y"})
        .Ints("kernel_shape", pc.kernel)
        .Ints("strides", pc.strides)
        .Ints("pads", pc.pads)
        .Int("ceil_mode", pc.ceil)
        .Int("count_include_pad", pc.include_pad);
    b.Output("y");
    ExpectMatches(b.Build(), {RandomTensor({2, 3, 10, 9}, 1)}, {pc.op});
  }
  for (const char* op : {"GlobalAveragePool", "GlobalMaxPool"}) {
    GraphBuilder b;
    b.Input("x", {2, 5, 6, 7});
    b.Node(op, {"x"}, {"y"});
    b.Output("y");
    ExpectMatches(b.Build(), {RandomTensor({2, 5, 6, 7}, 1)}, {op});
  }
}

TEST_F(OnednnTest, BinaryEltwiseSoftmaxConcatNorms) {
  GraphBuilder b(11);
  b.Input("x", {2, 4, 5, 6});
  b.Input("z", {1, 4, 1, 6});
  b.Constant("k", RandomTensor({1, 4, 1, 1}, 1));
  b.Constant("g", RandomTensor({6}, 2));
  b.Constant("s", RandomTensor({4}, 3, 0.5f, 1.5f));
  b.Constant("t", RandomTensor({4}, 4));
  b.Constant("m", RandomTensor({4}, 5));
  b.Constant("v", RandomTensor({4}, 6, 0.5f, 1.5f));
  b.Node("Mul", {"k", "x"}, {"a"});
  b.Node("Sub", {"a", "z"}, {"c"});
  b.Node("Div", {"c", "z"}, {"d"});
  b.Node("Sigmoid", {"d"}, {"e"});
  b.Node("Softmax", {"e"}, {"f"}).Int("axis", 1);  // opset 11: 2-D view at axis 1
  b.Node("Concat", {"f", "x"}, {"h"}).Int("axis", 1);
  b.Node("BatchNormalization", {"x", "s", "t", "m", "v"}, {"bn"});
  b.Node("LeakyRelu", {"bn"}, {"lr"}).Float("alpha", 0.1f);
  b.Output("h");
  b.Output("lr");
  ExpectMatches(b.Build(), {RandomTensor({2, 4, 5, 6}, 7), RandomTensor({1, 4, 1, 6}, 8, 1.0f, 2.0f)},
                {"Mul", "Sub", "Div", "Sigmoid", "Softmax", "Concat", "BatchNormalization", "LeakyRelu"});

  GraphBuilder ln(17);
  ln.Input("x", {3, 7, 16});
  ln.Constant("g", RandomTensor({16}, 1));
  ln.Constant("b", RandomTensor({16}, 2));
  ln.Node("LayerNormalization", {"x", "g", "b"}, {"y"}).Float("epsilon", 1e-5f);
  ln.Node("Softmax", {"y"}, {"z"});
  ln.Output("z");
  ExpectMatches(ln.Build(), {RandomTensor({3, 7, 16}, 3)}, {"LayerNormalization", "Softmax"});
}

TEST_F(OnednnTest, ConvTransposeAndResize) {
  GraphBuilder b(11);
  b.Input("x", {1, 8, 5, 6});
  b.Constant("w", RandomTensor({8, 4, 2, 2}, 1));
  b.Constant("wg", RandomTensor({8, 2, 3, 3}, 2));
  b.Constant("w16", RandomTensor({8, 16, 2, 2}, 5));  // enough channels for a blocked output
  b.Constant("bias", RandomTensor({4}, 3));
  b.Constant("roi", Tensor::Allocate(DataType::kFloat32, {0}).value());
  b.Constant("scales", Tensor::FromVector<float>({4}, {1, 1, 2, 3}));
  b.Constant("lin", Tensor::FromVector<float>({4}, {1, 1, 2, 0.5f}));
  b.Node("ConvTranspose", {"x", "w", "bias"}, {"d"}).Ints("strides", {2, 2});
  b.Node("ConvTranspose", {"x", "wg"}, {"g"})
      .Ints("strides", {2, 1}).Ints("pads", {1, 0, 1, 1}).Ints("output_padding", {1, 0}).Int("group", 2);
  b.Node("Resize", {"x", "roi", "scales"}, {"n"})
      .String("mode", "nearest").String("coordinate_transformation_mode", "asymmetric")
      .String("nearest_mode", "floor");
  b.Node("ConvTranspose", {"x", "w16"}, {"d16"}).Ints("strides", {2, 2});
  b.Node("Resize", {"x", "roi", "lin"}, {"l"}).String("mode", "linear");
  for (const char* out : {"d", "g", "d16", "n", "l"}) b.Output(out);
  ExpectMatches(b.Build(), {RandomTensor({1, 8, 5, 6}, 4)}, {"ConvTranspose", "Resize"});
}

TEST_F(OnednnTest, TransposeAndReductions) {
  GraphBuilder b;
  b.Input("x", {2, 3, 4, 5});
  b.Constant("axes", Tensor::FromVector<int64_t>({2}, {0, -1}));
  b.Node("Transpose", {"x"}, {"t"}).Ints("perm", {0, 2, 3, 1});
  b.Node("Transpose", {"x"}, {"r"});
  b.Node("ReduceMean", {"x"}, {"m"}).Ints("axes", {-1});
  b.Node("ReduceMax", {"x"}, {"mx"}).Ints("axes", {1, 2}).Int("keepdims", 0);
  b.Node("ReduceSum", {"x", "axes"}, {"s"});
  b.Node("ReduceMin", {"x"}, {"mn"});
  for (const char* out : {"t", "r", "m", "mx", "s", "mn"}) b.Output(out);
  // For reductions over some middle or outer axes oneDNN has only its slow
  // reference kernel: those are left to slimserve's reference kernels.
  testing::ExpectMatchesReference(*backend_, b.Build(), {RandomTensor({2, 3, 4, 5}, 1)},
                                  {"Transpose", "ReduceMean", "ReduceMin"}, {"ReduceMax", "ReduceSum"});
}

// A 1x1 convolution with 95 % zero weights and a residual: the sparse
// kernel is built and timed against the dense one (the plan says which it
// kept), and whichever runs matches the reference.
TEST_F(OnednnTest, MostlyZeroPointwiseConvTriesTheSparseKernel) {
  Tensor w = RandomTensor({128, 64, 1, 1}, 1);
  for (int64_t i = 0; i < w.num_elements(); ++i) {
    if (i % 20 != 7) w.data<float>()[i] = 0;
  }
  GraphBuilder b;
  b.Input("x", {2, 64, 14, 14});
  b.Input("skip", {2, 128, 14, 14});
  b.Constant("w", w);
  b.Constant("bias", RandomTensor({128}, 2));
  b.Node("Conv", {"x", "w", "bias"}, {"c"});
  b.Node("Add", {"c", "skip"}, {"s"});
  b.Node("Relu", {"s"}, {"y"});
  b.Output("y");
  const Graph graph = b.Build();
  const std::vector<Tensor> inputs = {RandomTensor({2, 64, 14, 14}, 3), RandomTensor({2, 128, 14, 14}, 4)};
  ExpectMatches(graph, inputs, {"FusedConv"}, /*optimize=*/true);
  Graph optimized = graph;
  ASSERT_TRUE(Optimize(optimized, {}).ok());
  ExecutorOptions options;
  options.backends = {backend_.get()};
  auto summary = Executor::Create(optimized, options).value()->Prepare(inputs);
  ASSERT_TRUE(summary.ok()) << summary.status();
  const auto conv = std::find_if(summary->nodes.begin(), summary->nodes.end(),
                                 [](const PlanSummary::Entry& e) { return e.op_type == "FusedConv"; });
  ASSERT_NE(conv, summary->nodes.end());
  EXPECT_NE(conv->kernel.find("sparse 1x1 (5.0 % non-zero)"), std::string::npos) << conv->kernel;
}

TEST_F(OnednnTest, WarmRunsCreateNoPrimitives) {
  GraphBuilder b;
  b.Input("x", {-1, 8, 8, 8});
  b.Constant("w", RandomTensor({8, 8, 3, 3}, 1));
  b.Node("Conv", {"x", "w"}, {"c"}).Ints("pads", {1, 1, 1, 1});
  b.Node("Relu", {"c"}, {"r"});
  b.Node("MaxPool", {"r"}, {"y"}).Ints("kernel_shape", {2, 2}).Ints("strides", {2, 2});
  b.Output("y");
  Graph g = b.Build();
  ASSERT_TRUE(Optimize(g, {}).ok());
  ExecutorOptions options;
  options.backends = {backend_.get()};
  auto executor = Executor::Create(g, options).value();
  const Tensor x1 = RandomTensor({1, 8, 8, 8}, 1), x4 = RandomTensor({4, 8, 8, 8}, 2);
  ASSERT_TRUE(executor->Run({x1}).ok());
  ASSERT_TRUE(executor->Run({x4}).ok());
  const int64_t primitives = PrimitivesCreatedForTesting();
  const ExecutorStats stats = executor->stats();
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(executor->Run({i % 2 ? x1 : x4}).ok());
  EXPECT_EQ(PrimitivesCreatedForTesting(), primitives);
  EXPECT_EQ(executor->stats().arenas_allocated, stats.arenas_allocated);
  EXPECT_EQ(executor->stats().kernels_compiled, stats.kernels_compiled);
}

// int8 kernels against the reference QDQ graph (unoptimized: every Q and DQ
// computed op by op). oneDNN requantizes with a multiplication by 1 / scale
// and sums in another order, so a value within float rounding of a rounding
// boundary can land one step away: the declared tolerance is one
// quantization step of the output, or of the int8 input of a float-output
// head (then scaled by its weights).
class OnednnInt8Test : public OnednnTest {
 protected:
  // Runs `graph` optimized on oneDNN; returns its plan's (op, backend) pairs.
  // With `kernels`, the backend may time alternatives (measure_kernels), and
  // each node's kernel description is appended there.
  std::vector<std::pair<std::string, std::string>> ExpectMatchesQdq(const Graph& graph,
                                                                     const std::vector<Tensor>& inputs,
                                                                     double atol,
                                                                     std::vector<std::string>* kernels = nullptr) {
    Graph g = graph;
    EXPECT_TRUE(Optimize(g, {}).ok());
    ExecutorOptions options;
    options.backends = {backend_.get()};
    options.num_threads = 2;
    options.measure_kernels = kernels != nullptr;
    auto executor = Executor::Create(g, options);
    EXPECT_TRUE(executor.ok()) << executor.status();
    if (!executor.ok()) return {};
    auto summary = (*executor)->Prepare(inputs);
    EXPECT_TRUE(summary.ok()) << summary.status();
    auto got = (*executor)->Run(inputs);
    auto want = testing::RunGraph(graph, inputs);
    EXPECT_TRUE(got.ok()) << got.status();
    EXPECT_TRUE(want.ok()) << want.status();
    if (got.ok() && want.ok()) {
      for (size_t i = 0; i < got->size(); ++i) {
        EXPECT_LE(Mismatch((*got)[i], (*want)[i], 0, atol), 1.0) << "output " << i;
      }
    }
    std::vector<std::pair<std::string, std::string>> placed;
    if (summary.ok()) {
      for (const auto& e : summary->nodes) {
        placed.emplace_back(e.op_type, e.backend);
        if (kernels != nullptr) kernels->push_back(e.kernel);
      }
    }
    return placed;
  }

  static bool RunsOn(const std::vector<std::pair<std::string, std::string>>& placed, const std::string& op,
                     const std::string& backend) {
    bool found = false;
    for (const auto& [o, b] : placed) {
      if (o == op) {
        if (b != backend) return false;
        found = true;
      }
    }
    return found;
  }
};

TEST_F(OnednnInt8Test, SlimserveQdqBlockRunsInInt8) {
  // y is the Gemm of 32 uint8 features (step 2/255) with weights up to 0.3.
  for (bool int8_residual : {true, false}) {
    SCOPED_TRACE(int8_residual ? "int8 residual" : "float residual");
    const auto placed = ExpectMatchesQdq(testing::SlimserveQdqGraph(int8_residual),
                                         {RandomTensor({3, 16, 8, 8}, 7)}, 2 * 2.0 / 255 * 0.3);
    for (const char* op : {"QFusedConv", "QFusedGemm", "QuantizeLinear", "MaxPool", "GlobalAveragePool"}) {
      EXPECT_TRUE(RunsOn(placed, op, "onednn")) << op;
    }
  }
}

TEST_F(OnednnInt8Test, OrtQdqGraphWithInt8ActivationsAndZeroPoints) {
  const auto placed = ExpectMatchesQdq(testing::OrtQdqGraph(), {RandomTensor({2, 8, 6, 6}, 8)}, 4.0 / 255 + 1e-6);
  for (const char* op : {"QFusedConv", "QFusedMatMul", "QuantizeLinear", "DequantizeLinear", "FusedConv"}) {
    EXPECT_TRUE(RunsOn(placed, op, "onednn")) << op;
  }
}

// QDQ input (uint8, zero point `zero`) -> Conv -> activation -> Q -> DQ: one
// int8 fused op writing uint8 (step 0.05), from the float conv `cc`.
Graph QuantizedConvGraph(const testing::ConvCase& cc, const char* activation, uint8_t zero) {
  Graph g = testing::ConvGraph(cc);
  Node conv = g.nodes[0];
  const Tensor w = g.initializers.at("w");
  const int64_t oc = w.dim(0), inner = w.num_elements() / oc;
  std::vector<float> scales(oc, 1e-3f);
  for (int64_t i = 0; i < w.num_elements(); ++i) {
    scales[i / inner] = std::max(scales[i / inner], std::fabs(w.data<float>()[i]) / 127);
  }
  std::vector<int8_t> q(w.num_elements());
  for (int64_t i = 0; i < w.num_elements(); ++i) {
    q[i] = static_cast<int8_t>(std::nearbyint(w.data<float>()[i] / scales[i / inner]));
  }
  g.initializers["w_q"] = Tensor::FromVector<int8_t>(w.shape(), q);
  g.initializers["w_s"] = Tensor::FromVector<float>({oc}, scales);
  g.initializers["x_s"] = Tensor::FromVector<float>({}, {2.0f / 255});
  g.initializers["x_z"] = Tensor::FromVector<uint8_t>({}, {zero});
  g.initializers["y_s"] = Tensor::FromVector<float>({}, {0.05f});
  g.initializers["y_z"] = Tensor::FromVector<uint8_t>({}, {20});
  auto node = [](const char* op, std::vector<std::string> in, std::string out) {
    Node n;
    n.op_type = op;
    n.name = out;
    n.inputs = std::move(in);
    n.outputs = {std::move(out)};
    return n;
  };
  conv.inputs[0] = "x_dq";
  conv.inputs[1] = "w_dq";
  conv.outputs[0] = "c";
  Node w_dq = node("DequantizeLinear", {"w_q", "w_s"}, "w_dq");
  w_dq.attributes["axis"].i = 0;
  g.nodes = {node("QuantizeLinear", {"x", "x_s", "x_z"}, "x_q"), node("DequantizeLinear", {"x_q", "x_s", "x_z"}, "x_dq"),
             w_dq, conv};
  const bool affine = std::string(activation) == "HardSwishAffine";
  if (affine) {
    // PP-LCNet's learnable affine after the activation: 0.7 * a - 0.3.
    g.initializers["k"] = Tensor::FromVector<float>({}, {0.7f});
    g.initializers["t"] = Tensor::FromVector<float>({}, {-0.3f});
    g.nodes.push_back(node("HardSwish", {"c"}, "a"));
    g.nodes.push_back(node("Mul", {"a", "k"}, "m"));
    g.nodes.push_back(node("Add", {"m", "t"}, "r"));
  } else {
    g.nodes.push_back(node(activation, {"c"}, "r"));
  }
  g.nodes.push_back(node("QuantizeLinear", {"r", "y_s", "y_z"}, "y_q"));
  g.nodes.push_back(node("DequantizeLinear", {"y_q", "y_s", "y_z"}, "y"));
  return g;
}

TEST_F(OnednnInt8Test, SingleConvsCoverLayoutsGroupsAndActivations) {
  const testing::ConvCase cases[] = {
      {"3x3 pad", {2, 16, 10, 10}, {32, 16, 3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 1, "", true},
      {"strided", {1, 8, 9, 11}, {16, 8, 3, 2}, {2, 3}, {0, 1, 2, 0}, {1, 1}, 1, "", false},
      {"depthwise", {1, 16, 9, 9}, {16, 1, 3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, 16, "", true},
      {"pointwise", {1, 32, 6, 6}, {48, 32, 1, 1}, {1, 1}, {0, 0, 0, 0}, {1, 1}, 1, "", true},
      {"few channels", {1, 8, 5, 5}, {3, 8, 1, 1}, {1, 1}, {0, 0, 0, 0}, {1, 1}, 1, "", true},
  };
  for (const testing::ConvCase& cc : cases) {
    for (const char* activation : {"Relu", "HardSwish", "HardSwishAffine", "Sigmoid", "Identity"}) {
      for (uint8_t zero : {0, 100}) {
        SCOPED_TRACE(::testing::Message() << cc.name << " " << activation << " zero point " << int{zero});
        const auto placed = ExpectMatchesQdq(QuantizedConvGraph(cc, activation, zero), {RandomTensor(cc.x, 3)},
                                             0.05 + 1e-6);
        EXPECT_TRUE(RunsOn(placed, "QFusedConv", "onednn"));
      }
    }
  }
}

TEST_F(OnednnInt8Test, MeasuredPlansTryWinogradOnInt8ConvsAndAgree) {
  // The second 3x3 convolution of the residual block reads the first's
  // channels-last uint8 output: the backend builds the int8 Winograd kernel
  // for it, times it against direct convolution and keeps it only if the
  // two agree within a rounding step; either way the plan matches the QDQ
  // reference. (Partial tiles: winograd_int8_test.)
  if (!reference::WinogradInt8Available()) GTEST_SKIP() << "no AVX-512 VNNI";
  std::vector<std::string> kernels;
  const auto placed = ExpectMatchesQdq(testing::SlimserveQdqGraph(true), {RandomTensor({3, 16, 8, 8}, 11)},
                                       2 * 2.0 / 255 * 0.3, &kernels);
  EXPECT_TRUE(RunsOn(placed, "QFusedConv", "onednn"));
  int measured = 0;
  for (const std::string& kernel : kernels) {
    if (kernel.find("int8 Winograd") != std::string::npos) ++measured;
    EXPECT_EQ(kernel.find("results differ"), std::string::npos) << kernel;
  }
  EXPECT_GE(measured, 1);
}

TEST_F(OnednnInt8Test, PlanVariantsAreBuiltWhereTheyDifferAndShareTimedChoices) {
  // The backend's variants differ only in fp32 convolutions: an int8 plan is
  // built once; one with an fp32 3x3 convolution once per variant, its int8
  // convolution's Winograd choice timed in the first and taken by the rest.
  if (!reference::WinogradInt8Available()) GTEST_SKIP() << "no AVX-512 VNNI";
  for (const bool mixed : {false, true}) {
    SCOPED_TRACE(mixed ? "int8 and fp32" : "int8");
    Graph g = mixed ? testing::MixedPrecisionQdqGraph() : testing::SlimserveQdqGraph(true);
    ASSERT_TRUE(Optimize(g, {}).ok());
    ExecutorOptions options;
    options.backends = {backend_.get()};
    options.num_threads = 2;
    auto executor = Executor::Create(g, options).value();
    const int64_t timed = KernelsTimedForTesting();
    const auto summary = executor->Prepare({RandomTensor({2, 16, 8, 8}, 3)});
    ASSERT_TRUE(summary.ok()) << summary.status();
    int winograd = 0;
    for (const auto& node : summary->nodes) winograd += node.kernel.find("int8 Winograd") != std::string::npos;
    ASSERT_GE(winograd, 1);
    const int64_t compiled = executor->stats().kernels_compiled;
    if (mixed) {
      EXPECT_GT(compiled, static_cast<int64_t>(summary->nodes.size()));
      // Once per int8 choice (direct and Winograd); the fp32 convolution may
      // time direct against Winograd in the per-layer variant.
      EXPECT_GE(KernelsTimedForTesting() - timed, 2 * winograd);
      EXPECT_LE(KernelsTimedForTesting() - timed, 2 * winograd + 2);
    } else {
      EXPECT_EQ(compiled, static_cast<int64_t>(summary->nodes.size()));
      EXPECT_EQ(KernelsTimedForTesting() - timed, 2 * winograd);
    }
  }
}

TEST_F(OnednnInt8Test, DynamicQuantizationMatMulTakesScalesPerRun) {
  // Float output of 12 uint8 inputs times int8 weights: only float rounding differs.
  for (uint32_t seed : {9, 10}) {
    const auto placed =
        ExpectMatchesQdq(testing::DynamicQdqGraph(), {RandomTensor({2, 5, 12}, seed, -3.0f * seed, 1.0f)}, 1e-4);
    EXPECT_TRUE(RunsOn(placed, "QFusedMatMul", "onednn"));
  }
}

TEST_F(OnednnInt8Test, WarmRunsCreateNoPrimitives) {
  Graph g = testing::SlimserveQdqGraph();
  ASSERT_TRUE(Optimize(g, {}).ok());
  ExecutorOptions options;
  options.backends = {backend_.get()};
  auto executor = Executor::Create(g, options).value();
  const Tensor x1 = RandomTensor({1, 16, 8, 8}, 1), x4 = RandomTensor({4, 16, 8, 8}, 2);
  ASSERT_TRUE(executor->Run({x1}).ok());
  ASSERT_TRUE(executor->Run({x4}).ok());
  const int64_t primitives = PrimitivesCreatedForTesting();
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(executor->Run({i % 2 ? x1 : x4}).ok());
  EXPECT_EQ(PrimitivesCreatedForTesting(), primitives);
}

}  // namespace
}  // namespace slimserve::runtime::onednn
