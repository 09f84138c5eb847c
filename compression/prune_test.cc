// Pruning: coupled channels on small graphs (exact), and accuracy on real
// data: the Fashion-MNIST example on its 10,000 test images, recovered on
// 512 training images. Budgets: 30 % of the filters removed within 1.5
// points of fp32 top-1, 80 % of the weights zeroed (one threshold for all
// layers) within 1 point. PP-OCR's
// detector and classifier (MobileNetV3: depthwise, squeeze-excitation,
// hard-swish, Concat, Resize) stay valid models when 30 % of their filters go.
//
// Usage: prune_test MODEL.onnx CACHE_DIR (datasets/ and real_models/ in it)
#include "compression/prune.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "compression/dataset.h"
#include "compression/evaluate.h"
#include "runtime/onnx_import.h"
#include "runtime/passes/passes.h"
#include "runtime/testing/graph_builder.h"

namespace slimserve::compression {
namespace {

using runtime::Graph;
using runtime::Tensor;
using runtime::testing::GraphBuilder;
using runtime::testing::RandomTensor;

std::string model_path, cache_dir;

Graph Import(const std::string& path) {
  auto graph = runtime::ImportOnnxFile(path, {});
  EXPECT_TRUE(graph.ok()) << graph.status();
  return graph.ok() ? *std::move(graph) : Graph{};
}

void Fold(Graph& graph) {
  runtime::OptimizeOptions fold;
  fold.fuse = false;
  ASSERT_TRUE(runtime::Optimize(graph, fold).ok());
}

DataSet Load(const Graph& graph, const std::string& name) {
  auto data = LoadDataSet(cache_dir + "/datasets/" + name, graph);
  EXPECT_TRUE(data.ok()) << data.status();
  return data.ok() ? *std::move(data) : DataSet{};
}

// Filters of `w` [O, ...] whose index is in `zero` set to 0.
Tensor WithZeroFilters(Tensor w, const std::vector<int64_t>& zero) {
  const int64_t per = w.num_elements() / w.shape()[0];
  for (int64_t o : zero) std::fill(w.data<float>() + o * per, w.data<float>() + (o + 1) * per, 0.0f);
  return w;
}

// x -> A (4 filters) -> Relu -> r -> B (4) -> Add(r, B) -> depthwise D ->
// Concat(D, E(x)) -> C: the residual Add couples A's and B's channels, D
// follows them, C reads the concatenation. Filters 1 and 3 of A and B are
// zero, so they go, and the smaller model computes exactly what the larger
// one did.
Graph Residual() {
  GraphBuilder b;
  b.Input("x", {2, 3, 6, 6});
  b.Constant("wa", WithZeroFilters(RandomTensor({4, 3, 3, 3}, 1), {1, 3}));
  b.Constant("wb", WithZeroFilters(RandomTensor({4, 4, 3, 3}, 2), {1, 3}));
  b.Constant("wd", RandomTensor({4, 1, 3, 3}, 3));
  b.Constant("bd", RandomTensor({4}, 4));
  b.Constant("we", RandomTensor({2, 3, 1, 1}, 5));
  b.Constant("wc", RandomTensor({5, 6, 1, 1}, 6));
  b.Constant("scale", RandomTensor({4, 1, 1}, 7));
  b.Node("Conv", {"x", "wa"}, {"a"}).Ints("pads", {1, 1, 1, 1});
  b.Node("Relu", {"a"}, {"r"});
  b.Node("Conv", {"r", "wb"}, {"bo"}).Ints("pads", {1, 1, 1, 1});
  b.Node("Add", {"r", "bo"}, {"s"});
  b.Node("Mul", {"s", "scale"}, {"m"});
  b.Node("Conv", {"m", "wd", "bd"}, {"d"}).Ints("pads", {1, 1, 1, 1}).Int("group", 4);
  b.Node("Relu", {"d"}, {"dr"});
  b.Node("Conv", {"x", "we"}, {"e"});
  b.Node("Concat", {"dr", "e"}, {"cat"}).Int("axis", 1);
  b.Node("Conv", {"cat", "wc"}, {"y"});
  b.Output("y");
  Graph g = b.Build();
  for (size_t i = 0; i < g.nodes.size(); ++i) g.nodes[i].name = "n" + std::to_string(i);
  return g;
}

TEST(Prune, CoupledChannelsGoTogetherAndTheResultIsExact) {
  const Graph original = Residual();
  Graph pruned = original;
  PruneOptions options;
  options.sparsity = 0.5;
  auto report = Prune(pruned, options);
  ASSERT_TRUE(report.ok()) << report.status();
  for (const std::string& line : report->layers) std::printf("  %s\n", line.c_str());
  const auto& init = pruned.initializers;
  auto shape_of = [&](int node, int input) { return init.at(pruned.nodes[node].inputs[input]).shape(); };
  EXPECT_EQ(shape_of(0, 1), (runtime::Shape{2, 3, 3, 3}));  // A: filters 0 and 2 stay
  EXPECT_EQ(shape_of(2, 1), (runtime::Shape{2, 2, 3, 3}));  // B: in and out
  EXPECT_EQ(shape_of(4, 1), (runtime::Shape{2, 1, 1}));     // the per-channel scale
  EXPECT_EQ(shape_of(5, 1), (runtime::Shape{2, 1, 3, 3}));  // depthwise D
  EXPECT_EQ(pruned.nodes[5].GetInt("group", 1), 2);
  // E (2 filters) is pruned too, by half; C reads 2 + 1 channels, and
  // keeps its outputs, which are the graph's.
  EXPECT_EQ(shape_of(7, 1), (runtime::Shape{1, 3, 1, 1}));
  EXPECT_EQ(shape_of(9, 1), (runtime::Shape{5, 3, 1, 1}));
  const Tensor x = RandomTensor({2, 3, 6, 6}, 9);
  auto before = runtime::testing::RunGraph(original, {x});
  auto after = runtime::testing::RunGraph(pruned, {x});
  ASSERT_TRUE(before.ok() && after.ok()) << after.status();
  EXPECT_EQ((*after)[0].shape(), (*before)[0].shape());
}

TEST(Prune, ZeroFiltersLeaveTheOutputUnchanged) {
  // Only A and B prunable (E and C pinned by keeping their single-class
  // clusters): drop exactly the zero filters.
  GraphBuilder b;
  b.Input("x", {2, 3, 6, 6});
  b.Constant("wa", WithZeroFilters(RandomTensor({4, 3, 3, 3}, 1), {1, 3}));
  b.Constant("wb", WithZeroFilters(RandomTensor({4, 4, 3, 3}, 2), {1, 3}));
  b.Constant("wc", RandomTensor({5, 4, 1, 1}, 6));
  b.Node("Conv", {"x", "wa"}, {"a"}).Ints("pads", {1, 1, 1, 1});
  b.Node("Relu", {"a"}, {"r"});
  b.Node("Conv", {"r", "wb"}, {"bo"}).Ints("pads", {1, 1, 1, 1});
  b.Node("Add", {"r", "bo"}, {"s"});
  b.Node("Conv", {"s", "wc"}, {"y"});
  b.Output("y");
  const Graph original = b.Build();
  Graph pruned = original;
  PruneOptions options;
  options.sparsity = 0.5;
  ASSERT_TRUE(Prune(pruned, options).ok());
  EXPECT_EQ(pruned.initializers.at(pruned.nodes[4].inputs[1]).shape(), (runtime::Shape{5, 2, 1, 1}));
  const Tensor x = RandomTensor({2, 3, 6, 6}, 9);
  auto before = runtime::testing::RunGraph(original, {x});
  auto after = runtime::testing::RunGraph(pruned, {x});
  ASSERT_TRUE(before.ok() && after.ok()) << after.status();
  EXPECT_LE(runtime::testing::Mismatch((*after)[0], (*before)[0], 1e-5, 1e-5), 1.0);
}

TEST(Prune, BadInputIsRefused) {
  Graph g = Import(model_path);
  PruneOptions options;
  for (double bad : {-0.1, 1.0, 1.5}) {
    options.sparsity = bad;
    EXPECT_EQ(Prune(g, options).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  options.sparsity = 0.5;
  options.criterion = PruneCriterion::kBnGamma;  // BatchNorm folded at export
  auto status = Prune(g, options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("bn-gamma"), std::string::npos) << status;

  GraphBuilder b;  // nothing to prune: no layer at all, or kernels of a Gemm
  b.Input("x", {1, 4});
  b.Constant("w", RandomTensor({4, 3}, 1));
  b.Node("Relu", {"x"}, {"r"});
  b.Node("Gemm", {"r", "w"}, {"y"});
  b.Output("y");
  Graph gemm = b.Build();
  options = {};
  options.structure = PruneStructure::kKernel;
  status = Prune(gemm, options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("kernel"), std::string::npos) << status;
  options.structure = PruneStructure::kFilter;  // its only outputs are the graph's
  EXPECT_EQ(Prune(gemm, options).status().code(), absl::StatusCode::kFailedPrecondition);
}

struct Accuracy {
  double original, pruned, kept_parameters;
};

Accuracy FashionAfter(const PruneOptions& options, bool recover = true) {
  Graph original = Import(model_path);
  Graph pruned = original;
  auto report = Prune(pruned, options);
  EXPECT_TRUE(report.ok()) << report.status();
  if (!report.ok()) return {};
  Fold(original);
  Fold(pruned);
  const DataSet calibration = Load(original, "fashion_mnist_train.npz");
  const DataSet test = Load(original, "fashion_mnist_test.npz");
  if (recover) {
    EXPECT_TRUE(Recover(original, pruned, *report, calibration.Batches(0, 512, 128), {}).ok());
  }
  auto e = Evaluate(original, pruned, test, {});
  EXPECT_TRUE(e.ok()) << e.status();
  if (!e.ok()) return {};
  const double kept = 100.0 * report->nonzero_after / report->parameters_before;
  std::printf("%s %s %.0f %%%s: top-1 %.2f %% (fp32 %.2f %%), agreement %.2f %%, %.1f %% of the parameters left\n",
              options.structure == PruneStructure::kFilter ? "filters" : "weights",
              !options.layer_sparsity.empty() ? "by sensitivity" : options.global ? "global" : "local",
              100 * options.sparsity, recover ? "" : " (not recovered)",
              e->variant_top1, e->original_top1, e->agreement, kept);
  return {e->original_top1, e->variant_top1, kept};
}

TEST(Prune, FashionFilters30PercentWithin1Point5) {
  PruneOptions options;
  options.sparsity = 0.3;
  const Accuracy a = FashionAfter(options);
  EXPECT_GE(a.pruned, a.original - 1.5);
  EXPECT_LT(a.kept_parameters, 60.0);
}

TEST(Prune, FashionWeights80PercentWithin1Point) {
  PruneOptions options;
  options.structure = PruneStructure::kWeight;
  options.sparsity = 0.8;
  options.global = true;  // most of the weights, and the least needed, are in the first Gemm
  const Accuracy a = FashionAfter(options);
  EXPECT_GE(a.pruned, a.original - 1.0);
  EXPECT_LT(a.kept_parameters, 21.0);
}

// 90 % of the weights: the same share in every layer loses half the
// answers; shares from each layer's measured sensitivity keep the model.
TEST(Prune, FashionWeights90PercentBySensitivity) {
  const Graph original = Import(model_path);
  const DataSet calibration = Load(original, "fashion_mnist_train.npz");
  PruneOptions options;
  options.structure = PruneStructure::kWeight;
  options.sparsity = 0.9;
  auto layers = SensitivityAnalysis(original, options, calibration.Batches(0, 128, 64), 0, {});
  ASSERT_TRUE(layers.ok()) << layers.status();
  ASSERT_EQ(layers->size(), 6u);
  for (const LayerSensitivity& l : *layers) {
    EXPECT_GT(l.sqnr_db.front(), l.sqnr_db.back() + 5) << l.node;  // more zeros, more noise
  }
  const Accuracy uniform = FashionAfter(options);
  options.layer_sparsity = AllocateSparsity(*layers, 0.9);
  const Accuracy measured = FashionAfter(options);
  EXPECT_GE(measured.pruned, measured.original - 2.0);  // 91.8 % (fp32 93.35 %)
  EXPECT_GT(measured.pruned, uniform.pruned + 20);     // 49.7 %
  EXPECT_LT(measured.kept_parameters, 10.5);
}

TEST(Prune, SparsityGoesWhereItCostsLeast) {
  // a: 1000 weights that barely matter, b: 1000 that do, c: 10 that matter most.
  const std::vector<LayerSensitivity> layers = {{"a", 1000, {40, 35, 30, 25, 20}},
                                                {"b", 1000, {20, 10, 5, 2, 1}},
                                                {"c", 10, {3, 2, 1, 0.5, 0.1}}};
  const std::map<std::string, double> shares = AllocateSparsity(layers, 0.5);
  EXPECT_DOUBLE_EQ(shares.at("a"), 0.8);  // 80 -> 90 % adds more noise per weight than b's first half
  EXPECT_DOUBLE_EQ(shares.at("b"), 0.5);
  EXPECT_EQ(shares.at("c"), 0.0);
  double removed = 0;
  for (const LayerSensitivity& l : layers) removed += l.weights * shares.at(l.node);
  EXPECT_GE(removed, 0.5 * 2010);
  EXPECT_EQ(AllocateSparsity(layers, 0.99).at("c"), 0.95);  // out of cheaper steps: every layer at the top
}

// The accuracy-versus-sparsity table of the README: recovery never costs
// accuracy, and nothing in the table collapses.
TEST(Prune, FashionCurve) {
  for (const PruneStructure structure : {PruneStructure::kFilter, PruneStructure::kWeight}) {
    for (const bool global : {false, true}) {
      for (const double sparsity : structure == PruneStructure::kFilter ? std::vector<double>{0.3, 0.5, 0.7}
                                                                          : std::vector<double>{0.5, 0.8, 0.9}) {
        PruneOptions options;
        options.structure = structure;
        options.global = global;
        options.sparsity = sparsity;
        const Accuracy raw = FashionAfter(options, false);
        const Accuracy recovered = FashionAfter(options, true);
        EXPECT_GE(recovered.pruned, raw.pruned - 0.5) << "recovery lost accuracy";
        if (global || structure == PruneStructure::kFilter) {
          EXPECT_GT(recovered.pruned, 75.0);  // lowest: 81 % (filters 70 %, global)
        }
      }
    }
  }
}

// PP-OCR with 30 % of its filters gone: a valid model with outputs of the
// right shape and fewer parameters (recovered on `recover` rows).
void ExpectValidWhenPruned(const std::string& model, const std::string& data, int64_t recover) {
  Graph original = Import(cache_dir + "/real_models/" + model + "/model.onnx");
  Graph pruned = original;
  PruneOptions options;
  options.sparsity = 0.3;
  auto report = Prune(pruned, options);
  ASSERT_TRUE(report.ok()) << report.status();
  std::printf("%s: %zu layers pruned, parameters %lld -> %lld\n", model.c_str(), report->layers.size(),
              static_cast<long long>(report->parameters_before), static_cast<long long>(report->parameters_after));
  EXPECT_LT(report->parameters_after, report->parameters_before * 0.85);
  Fold(original);
  Fold(pruned);
  const DataSet pages = Load(original, data);
  ASSERT_GT(pages.rows(), 0);
  if (recover > 0) {
    ASSERT_TRUE(Recover(original, pruned, *report, pages.Batches(0, recover, 4), {}).ok());
  }
  auto a = Compile(original, 0);
  auto b = Compile(pruned, 0);
  ASSERT_TRUE(a.ok() && b.ok()) << b.status();
  auto x = a->executor->Run(pages.Batches(0, 1, 1)[0]);
  auto y = b->executor->Run(pages.Batches(0, 1, 1)[0]);
  ASSERT_TRUE(x.ok() && y.ok()) << y.status();
  EXPECT_EQ((*y)[0].shape(), (*x)[0].shape());
}

TEST(Prune, PpOcrDetectorStaysValid) { ExpectValidWhenPruned("ppocr_det_v4", "text_pages_evaluation.npz", 0); }
TEST(Prune, PpOcrClassifierStaysValid) {
  ExpectValidWhenPruned("ppocr_cls_mobile_v2", "text_lines_evaluation.npz", 4);
}

}  // namespace
}  // namespace slimserve::compression

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  if (argc != 3) {
    std::fprintf(stderr, "usage: prune_test MODEL.onnx CACHE_DIR\n");
    return 2;
  }
  slimserve::compression::model_path = argv[1];
  slimserve::compression::cache_dir = argv[2];
  return RUN_ALL_TESTS();
}
