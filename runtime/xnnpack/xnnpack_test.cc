// Cross-checks every XNNPACK kernel against the reference backend, the
// hand-over between channels-last and row-major values, concurrent runs of
// one executor, and that warm runs create no XNNPACK operators.
#include <thread>

#include "gtest/gtest.h"
#include "runtime/passes/passes.h"
#include "runtime/testing/backend_check.h"
#include "runtime/testing/graph_builder.h"
#include "runtime/xnnpack/backend.h"

namespace slimserve::runtime::xnnpack {
namespace {

using testing::GraphBuilder;
using testing::Mismatch;
using testing::RandomTensor;

constexpr double kRtol = 1e-3, kAtol = 1e-4;

Tensor Scalar(float v) { return Tensor::FromVector<float>({}, {v}); }

class XnnpackTest : public ::testing::Test {
 protected:
  void SetUp() override { backend_ = XnnpackBackend::Create({.num_threads = 2}).value(); }

  std::unique_ptr<Executor> MakeExecutor(Graph graph) {
    ExecutorOptions options;
    options.backends = {backend_.get()};
    options.num_threads = 2;
    auto executor = Executor::Create(std::move(graph), options);
    EXPECT_TRUE(executor.ok()) << executor.status();
    return executor.ok() ? *std::move(executor) : nullptr;
  }

  void ExpectMatches(const Graph& graph, const std::vector<Tensor>& inputs,
                     const std::vector<std::string>& on, const std::vector<std::string>& off = {},
                     bool optimize = false) {
    testing::ExpectMatchesReference(*backend_, graph, inputs, on, off, optimize);
  }

  std::unique_ptr<XnnpackBackend> backend_;
};

using testing::ConvCase;

TEST_F(XnnpackTest, ConvVariants) {
  const ConvCase cases[] = {
      {"3x3 pad", {2, 3, 10, 10}, {8, 3, 3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 1, "", true},
      {"strided asym", {1, 4, 9, 11}, {6, 4, 3, 2}, {2, 3}, {0, 1, 2, 0}, {1, 1}, 1, "", false},
      {"dilated", {1, 4, 12, 12}, {4, 4, 3, 3}, {1, 1}, {2, 2, 2, 2}, {2, 2}, 1, "", true},
      {"grouped", {1, 8, 7, 7}, {8, 4, 3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 2, "", true},
      {"depthwise", {1, 16, 9, 9}, {16, 1, 3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, 16, "", true},
      {"depthwise 5x5", {2, 8, 11, 11}, {8, 1, 5, 5}, {1, 1}, {2, 2, 2, 2}, {1, 1}, 8, "", true},
      {"depth multiplier", {1, 4, 8, 8}, {8, 1, 3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 4, "", true},
      {"1x1", {2, 16, 7, 7}, {24, 16, 1, 1}, {1, 1}, {0, 0, 0, 0}, {1, 1}, 1, "", true},
      {"1x1 strided", {1, 16, 8, 8}, {8, 16, 1, 1}, {2, 2}, {0, 0, 0, 0}, {1, 1}, 1, "", false},
      {"same upper", {1, 3, 7, 7}, {5, 3, 4, 4}, {2, 2}, {}, {1, 1}, 1, "SAME_UPPER", true},
      {"same lower", {1, 3, 7, 8}, {5, 3, 4, 3}, {2, 2}, {}, {1, 1}, 1, "SAME_LOWER", true},
      {"valid", {1, 3, 9, 9}, {4, 3, 3, 3}, {2, 2}, {}, {1, 1}, 1, "VALID", true},
      {"unused end pad", {1, 3, 8, 8}, {4, 3, 3, 3}, {2, 2}, {1, 1, 2, 2}, {1, 1}, 1, "", true},
  };
  for (const ConvCase& cc : cases) {
    SCOPED_TRACE(cc.name);
    ExpectMatches(testing::ConvGraph(cc), {RandomTensor(cc.x, 3)}, {"Conv"});
  }
  {
    GraphBuilder b;  // 1-D convolution: not XNNPACK's
    b.Input("x", {1, 3, 20});
    b.Constant("w", RandomTensor({4, 3, 5}, 1));
    b.Node("Conv", {"x", "w"}, {"y"});
    b.Output("y");
    ExpectMatches(b.Build(), {RandomTensor({1, 3, 20}, 2)}, {}, {"Conv"});
  }
}

TEST_F(XnnpackTest, FusedConvActivations) {
  struct ActivationCase {
    const char* op;
    bool fuses_on_xnnpack;
  };
  for (const ActivationCase& ac : {ActivationCase{"Relu", true}, ActivationCase{"Clip", true},
                                   ActivationCase{"Sigmoid", false}}) {
    SCOPED_TRACE(ac.op);
    GraphBuilder b;
    b.Input("x", {2, 4, 8, 8});
    b.Constant("w", RandomTensor({6, 4, 3, 3}, 1));
    b.Constant("b", RandomTensor({6}, 2));
    b.Constant("lo", Scalar(0.0f));
    b.Constant("hi", Scalar(0.5f));
    b.Node("Conv", {"x", "w", "b"}, {"c"}).Ints("pads", {1, 1, 1, 1});
    if (std::string(ac.op) == "Clip") {
      b.Node("Clip", {"c", "lo", "hi"}, {"y"});
    } else {
      b.Node(ac.op, {"c"}, {"y"});
    }
    b.Output("y");
    std::vector<std::string> on, off;
    (ac.fuses_on_xnnpack ? on : off).push_back("FusedConv");
    ExpectMatches(b.Build(), {RandomTensor({2, 4, 8, 8}, 3)}, on, off, /*optimize=*/true);
  }
  {
    GraphBuilder b;  // a residual addend has no XNNPACK form
    b.Input("x", {1, 8, 6, 6});
    b.Constant("w", RandomTensor({8, 8, 3, 3}, 1, -0.2f, 0.2f));
    b.Node("Conv", {"x", "w"}, {"c"}).Ints("pads", {1, 1, 1, 1});
    b.Node("Add", {"c", "x"}, {"y"});
    b.Output("y");
    ExpectMatches(b.Build(), {RandomTensor({1, 8, 6, 6}, 2)}, {}, {"FusedConv"}, /*optimize=*/true);
  }
}

TEST_F(XnnpackTest, GemmVariants) {
  struct GemmCase {
    const char* name;
    bool trans_a, trans_b;
    float alpha, beta;
    Shape c;  // empty: no C
    bool on_xnnpack;
  };
  const GemmCase cases[] = {
      {"plain", false, false, 1.0f, 1.0f, {6}, true},
      {"transB", false, true, 1.0f, 1.0f, {1, 6}, true},
      {"alpha beta", false, true, 0.5f, 2.0f, {6}, true},
      {"scalar C", false, false, 1.0f, -1.0f, {1}, true},
      {"no C", false, true, 1.5f, 1.0f, {}, true},
      {"C ignored", false, false, 1.0f, 0.0f, {5, 6}, true},
      {"C per row", false, false, 1.0f, 1.0f, {5, 6}, false},
      {"transA", true, false, 1.0f, 1.0f, {6}, false},
  };
  for (const GemmCase& gc : cases) {
    SCOPED_TRACE(gc.name);
    const Shape a = gc.trans_a ? Shape{7, 5} : Shape{5, 7};
    GraphBuilder b;
    b.Input("a", a);
    b.Constant("w", RandomTensor(gc.trans_b ? Shape{6, 7} : Shape{7, 6}, 1));
    if (!gc.c.empty()) b.Constant("c", RandomTensor(gc.c, 2));
    b.Node("Gemm", {"a", "w", gc.c.empty() ? "" : "c"}, {"y"})
        .Int("transA", gc.trans_a)
        .Int("transB", gc.trans_b)
        .Float("alpha", gc.alpha)
        .Float("beta", gc.beta);
    b.Output("y");
    std::vector<std::string> on, off;
    (gc.on_xnnpack ? on : off).push_back("Gemm");
    ExpectMatches(b.Build(), {RandomTensor(a, 3)}, on, off);
  }
  {
    GraphBuilder b;  // Gemm + Relu fuse into FusedGemm
    b.Input("a", {3, 8});
    b.Constant("w", RandomTensor({4, 8}, 1));
    b.Constant("c", RandomTensor({4}, 2));
    b.Node("Gemm", {"a", "w", "c"}, {"g"}).Int("transB", 1);
    b.Node("Relu", {"g"}, {"y"});
    b.Output("y");
    ExpectMatches(b.Build(), {RandomTensor({3, 8}, 3)}, {"FusedGemm"}, {}, /*optimize=*/true);
  }
}

TEST_F(XnnpackTest, MatMul) {
  {
    GraphBuilder b;  // leading dims of A flattened into rows
    b.Input("a", {2, 3, 4, 5});
    b.Constant("w", RandomTensor({5, 6}, 1));
    b.Node("MatMul", {"a", "w"}, {"y"});
    b.Output("y");
    ExpectMatches(b.Build(), {RandomTensor({2, 3, 4, 5}, 2)}, {"MatMul"});
  }
  {
    GraphBuilder b;  // 1-D A
    b.Input("a", {5});
    b.Constant("w", RandomTensor({5, 3}, 1));
    b.Node("MatMul", {"a", "w"}, {"y"});
    b.Output("y");
    ExpectMatches(b.Build(), {RandomTensor({5}, 2)}, {"MatMul"});
  }
  {
    GraphBuilder b;  // MatMul + bias + Clip: FusedMatMul
    b.Input("a", {4, 8});
    b.Constant("w", RandomTensor({8, 3}, 1));
    b.Constant("bias", RandomTensor({3}, 2));
    b.Constant("lo", Scalar(-0.2f));
    b.Constant("hi", Scalar(0.3f));
    b.Node("MatMul", {"a", "w"}, {"m"});
    b.Node("Add", {"m", "bias"}, {"s"});
    b.Node("Clip", {"s", "lo", "hi"}, {"y"});
    b.Output("y");
    ExpectMatches(b.Build(), {RandomTensor({4, 8}, 3)}, {"FusedMatMul"}, {}, /*optimize=*/true);
  }
  {
    GraphBuilder b;  // B known only at run time: left to others
    b.Input("a", {4, 5});
    b.Input("b", {5, 6});
    b.Node("MatMul", {"a", "b"}, {"y"});
    b.Output("y");
    ExpectMatches(b.Build(), {RandomTensor({4, 5}, 1), RandomTensor({5, 6}, 2)}, {}, {"MatMul"});
  }
}

TEST_F(XnnpackTest, Pooling) {
  struct PoolCase {
    const char* name;
    const char* op;
    std::vector<int64_t> kernel, strides, pads, dilations;
    int64_t ceil, include_pad;
    std::string auto_pad;
    bool on_xnnpack;
  };
  const PoolCase cases[] = {
      {"max 3x3 s2 p1", "MaxPool", {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, 0, 0, "", true},
      {"max ceil", "MaxPool", {3, 3}, {2, 2}, {0, 0, 0, 0}, {1, 1}, 1, 0, "", true},
      {"max asym", "MaxPool", {2, 3}, {1, 2}, {1, 0, 0, 2}, {1, 1}, 0, 0, "", true},
      {"max dilated", "MaxPool", {2, 2}, {1, 1}, {1, 1, 1, 1}, {2, 2}, 0, 0, "", true},
      {"max same upper", "MaxPool", {3, 3}, {2, 2}, {}, {1, 1}, 0, 0, "SAME_UPPER", true},
      {"max all-padding window", "MaxPool", {2, 2}, {2, 2}, {0, 0, 2, 2}, {1, 1}, 0, 0, "", false},
      {"avg exclude pad", "AveragePool", {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, 0, 0, "", true},
      {"avg ceil", "AveragePool", {2, 2}, {2, 2}, {0, 0, 0, 0}, {1, 1}, 1, 0, "", true},
      {"avg asym", "AveragePool", {3, 2}, {1, 2}, {1, 0, 1, 1}, {1, 1}, 0, 0, "", true},
      {"avg include pad, none",
       "AveragePool",
       {3, 3},
       {1, 1},
       {0, 0, 0, 0},
       {1, 1},
       0,
       1,
       "",
       true},
      {"avg include pad", "AveragePool", {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, 0, 1, "", false},
      {"avg include pad ceil",
       "AveragePool",
       {2, 2},
       {2, 2},
       {0, 0, 0, 0},
       {1, 1},
       1,
       1,
       "",
       false},
  };
  for (const PoolCase& pc : cases) {
    SCOPED_TRACE(pc.name);
    GraphBuilder b;
    b.Input("x", {2, 3, 10, 9});
    auto node = b.Node(pc.op, {"x"}, {"y"})
                    .Ints("kernel_shape", pc.kernel)
                    .Ints("strides", pc.strides)
                    .Int("ceil_mode", pc.ceil);
    if (pc.auto_pad.empty()) {
      node.Ints("pads", pc.pads);
    } else {
      node.String("auto_pad", pc.auto_pad);
    }
    if (std::string(pc.op) == "MaxPool") {
      node.Ints("dilations", pc.dilations);
    } else {
      node.Int("count_include_pad", pc.include_pad);
    }
    b.Output("y");
    std::vector<std::string> on, off;
    (pc.on_xnnpack ? on : off).push_back(pc.op);
    ExpectMatches(b.Build(), {RandomTensor({2, 3, 10, 9}, 1)}, on, off);
  }
}

TEST_F(XnnpackTest, GlobalAveragePoolInBothOrders) {
  GraphBuilder b;
  b.Input("x", {2, 5, 6, 7});
  b.Constant("w", RandomTensor({4, 5, 3, 3}, 1));
  b.Node("GlobalAveragePool", {"x"}, {"p"});  // row-major input
  b.Node("Conv", {"x", "w"}, {"c"});
  b.Node("GlobalAveragePool", {"c"}, {"q"});  // channels-last input
  b.Output("p");
  b.Output("q");
  ExpectMatches(b.Build(), {RandomTensor({2, 5, 6, 7}, 2)}, {"GlobalAveragePool", "Conv"});
}

TEST_F(XnnpackTest, BroadcastingBinaryOps) {
  for (const char* op : {"Add", "Sub", "Mul", "Div", "Max", "Min"}) {
    SCOPED_TRACE(op);
    GraphBuilder b;
    b.Input("x", {2, 3, 4, 5});
    b.Input("z", {3, 1, 5});
    b.Input("v", {2, 1, 3, 4, 5});
    b.Constant("k", RandomTensor({1}, 1, 0.5f, 1.5f));
    b.Node(op, {"x", "z"}, {"a"});  // broadcast second
    b.Node(op, {"k", "a"}, {"d"});  // constant scalar first
    b.Node(op, {"d", "v"}, {"e"});  // 5-D output
    b.Output("e");
    ExpectMatches(b.Build(),
                  {RandomTensor({2, 3, 4, 5}, 2), RandomTensor({3, 1, 5}, 3, 0.5f, 1.5f),
                   RandomTensor({2, 1, 3, 4, 5}, 4, 0.5f, 1.5f)},
                  {op});
  }
}

TEST_F(XnnpackTest, BinaryOpsOnChannelsLastValues) {
  GraphBuilder b;
  b.Input("x", {2, 4, 6, 6});
  b.Input("r", {2, 6, 6, 6});
  b.Input("u", {3, 2, 6, 6, 6});
  b.Constant("w", RandomTensor({6, 4, 3, 3}, 1));
  b.Constant("bias", RandomTensor({1, 6, 1, 1}, 2));
  b.Constant("full", RandomTensor({6, 6, 6}, 3));
  b.Node("Conv", {"x", "w"}, {"c"}).Ints("pads", {1, 1, 1, 1});
  b.Node("Add", {"c", "bias"}, {"s1"});   // per-channel constant: no reorder
  b.Node("Mul", {"s1", "r"}, {"s2"});     // row-major input: reordered
  b.Node("Sub", {"full", "s2"}, {"s3"});  // constant reordered once
  b.Node("Max", {"s3", "c"}, {"s4"});     // both channels-last
  b.Node("Add", {"s4", "u"}, {"s5"});     // 5-D output: read row-major
  b.Output("s4");
  b.Output("s5");
  ExpectMatches(b.Build(),
                {RandomTensor({2, 4, 6, 6}, 4), RandomTensor({2, 6, 6, 6}, 5),
                 RandomTensor({3, 2, 6, 6, 6}, 6)},
                {"Conv", "Add", "Mul", "Sub", "Max"});
}

TEST_F(XnnpackTest, UnaryOpsInBothOrders) {
  GraphBuilder b(14);
  b.Input("x", {2, 4, 5, 6});
  b.Constant("w", RandomTensor({8, 4, 3, 3}, 1));
  b.Constant("lo", Scalar(-0.3f));
  b.Constant("hi", Scalar(0.4f));
  b.Node("Conv", {"x", "w"}, {"c"});
  for (const std::string source : {"x", "c"}) {
    b.Node("Relu", {source}, {source + "_relu"});
    b.Node("Clip", {source, "lo", "hi"}, {source + "_clip"});
    b.Node("Clip", {source, "", "hi"}, {source + "_clip_max"});
    b.Node("Sigmoid", {source}, {source + "_sigmoid"});
    b.Node("HardSwish", {source}, {source + "_hardswish"});
    b.Node("LeakyRelu", {source}, {source + "_leaky"}).Float("alpha", 0.2f);
    for (const char* suffix : {"_relu", "_clip", "_clip_max", "_sigmoid", "_hardswish", "_leaky"}) {
      b.Output(source + suffix);
    }
  }
  ExpectMatches(b.Build(), {RandomTensor({2, 4, 5, 6}, 2, -4.0f, 4.0f)},
                {"Relu", "Clip", "Sigmoid", "HardSwish", "LeakyRelu"});

  GraphBuilder old(6);  // Clip's bounds as attributes
  old.Input("x", {3, 7});
  old.Node("Clip", {"x"}, {"y"}).Float("min", -0.5f).Float("max", 0.25f);
  old.Output("y");
  ExpectMatches(old.Build(), {RandomTensor({3, 7}, 3)}, {"Clip"});
}

TEST_F(XnnpackTest, Softmax) {
  {
    GraphBuilder b(13);
    b.Input("x", {2, 3, 10});
    b.Node("Softmax", {"x"}, {"y"});                 // last axis
    b.Node("Softmax", {"x"}, {"z"}).Int("axis", 1);  // a middle axis: not XNNPACK's
    b.Output("y");
    b.Output("z");
    ExpectMatches(b.Build(), {RandomTensor({2, 3, 10}, 2, -5.0f, 5.0f)}, {"Softmax"});
  }
  {
    GraphBuilder b(13);  // a channels-last input is read row-major
    b.Input("x", {1, 3, 6, 6});
    b.Constant("w", RandomTensor({4, 3, 3, 3}, 1));
    b.Node("Conv", {"x", "w"}, {"c"});
    b.Node("Softmax", {"c"}, {"y"});
    b.Output("y");
    ExpectMatches(b.Build(), {RandomTensor({1, 3, 6, 6}, 2)}, {"Conv", "Softmax"});
  }
  {
    GraphBuilder b(11);  // before opset 13: a 2-D view at `axis`
    b.Input("x", {2, 3, 4});
    b.Node("Softmax", {"x"}, {"y"}).Int("axis", 1);
    b.Node("Softmax", {"x"}, {"z"}).Int("axis", -1);
    b.Output("y");
    b.Output("z");
    ExpectMatches(b.Build(), {RandomTensor({2, 3, 4}, 2, -5.0f, 5.0f)}, {"Softmax"});
  }
}

// A classifier head over a channels-last convolution, with an intermediate
// read back as an output (converted to row-major for the caller).
Graph MixedLayoutGraph() {
  GraphBuilder b;
  b.Input("x", {-1, 8, 8, 8});
  b.Constant("w", RandomTensor({16, 8, 3, 3}, 1, -0.3f, 0.3f));
  b.Constant("cb", RandomTensor({16}, 2));
  b.Constant("fc", RandomTensor({10, 16}, 3));
  b.Constant("fc_b", RandomTensor({10}, 4));
  b.Node("Conv", {"x", "w", "cb"}, {"c"}).Ints("pads", {1, 1, 1, 1});
  b.Node("Relu", {"c"}, {"r"});
  b.Node("GlobalAveragePool", {"r"}, {"p"});
  b.Node("Flatten", {"p"}, {"f"});
  b.Node("Gemm", {"f", "fc", "fc_b"}, {"y"}).Int("transB", 1);
  b.Output("y");
  b.Output("r");
  return b.Build();
}

TEST_F(XnnpackTest, MixedLayoutGraph) {
  for (bool optimize : {false, true}) {
    SCOPED_TRACE(optimize ? "optimized" : "as built");
    ExpectMatches(
        MixedLayoutGraph(), {RandomTensor({3, 8, 8, 8}, 5)},
        {optimize ? "FusedConv" : "Conv", "GlobalAveragePool", "Gemm", "(layout conversion)"}, {},
        optimize);
  }
}

TEST_F(XnnpackTest, ConcurrentRunsOfOneExecutor) {
  Graph g = MixedLayoutGraph();
  ASSERT_TRUE(Optimize(g, {}).ok());
  std::unique_ptr<Executor> executor = MakeExecutor(g);
  ASSERT_NE(executor, nullptr);
  constexpr int kThreads = 4, kRuns = 50;
  std::vector<Tensor> inputs;
  std::vector<std::vector<Tensor>> expected;
  for (int t = 0; t < kThreads; ++t) {
    inputs.push_back(RandomTensor({2, 8, 8, 8}, 10 + t));
    expected.push_back(testing::RunGraph(MixedLayoutGraph(), {inputs.back()}).value());
  }
  ASSERT_TRUE(executor->Run({inputs[0]}).ok());  // builds the plan once
  const int64_t before = backend_->operators_created();
  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRuns; ++r) {
        auto got = executor->Run({inputs[t]});
        bool ok = got.ok() && got->size() == expected[t].size();
        for (size_t i = 0; ok && i < got->size(); ++i) {
          ok = Mismatch((*got)[i], expected[t][i], kRtol, kAtol) <= 1.0;
        }
        failures[t] += ok ? 0 : 1;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
  // Overlapping runs add instances, at most one per extra thread and kernel
  // (FusedConv, GlobalAveragePool, Gemm).
  EXPECT_LE(backend_->operators_created() - before, (kThreads - 1) * 3);
}

TEST_F(XnnpackTest, WarmRunsCreateNoOperators) {
  Graph g = MixedLayoutGraph();
  ASSERT_TRUE(Optimize(g, {}).ok());
  std::unique_ptr<Executor> executor = MakeExecutor(g);
  ASSERT_NE(executor, nullptr);
  const Tensor x1 = RandomTensor({1, 8, 8, 8}, 1), x4 = RandomTensor({4, 8, 8, 8}, 2);
  ASSERT_TRUE(executor->Run({x1}).ok());
  ASSERT_TRUE(executor->Run({x4}).ok());
  const int64_t operators = backend_->operators_created();
  EXPECT_GT(operators, 0);
  const ExecutorStats stats = executor->stats();
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(executor->Run({i % 2 ? x1 : x4}).ok());
  EXPECT_EQ(backend_->operators_created(), operators);
  EXPECT_EQ(executor->stats().arenas_allocated, stats.arenas_allocated);
  EXPECT_EQ(executor->stats().kernels_compiled, stats.kernels_compiled);
}

}  // namespace
}  // namespace slimserve::runtime::xnnpack
