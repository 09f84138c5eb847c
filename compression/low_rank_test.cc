// Low-rank factorization: weights of rank 8 come back exactly from two
// factors (MatMul with shared weights, Gemm with transB, strided 1x1 Conv),
// and accuracy on real data: the Fashion-MNIST example on its 10,000 test
// images, fitted on 512 training images. Budget: half the parameters of the
// factorized layer kept within 0.5 points of fp32 top-1.
//
// Usage: low_rank_test MODEL.onnx CACHE_DIR (datasets/ in it)
#include "compression/low_rank.h"

#include <gtest/gtest.h>

#include <cstdio>
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
using runtime::Shape;
using runtime::Tensor;
using runtime::testing::GraphBuilder;
using runtime::testing::RandomTensor;

std::string model_path, cache_dir;

// a (m x k) times b (k x n) as a tensor of `shape` (m x n elements).
Tensor Times(const Tensor& a, const Tensor& b, Shape shape) {
  const int64_t m = a.shape()[0], k = a.shape()[1], n = b.shape()[1];
  std::vector<float> c(m * n, 0.0f);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t p = 0; p < k; ++p) {
      for (int64_t j = 0; j < n; ++j) c[i * n + j] += a.data<float>()[i * k + p] * b.data<float>()[p * n + j];
    }
  }
  Tensor t = Tensor::FromVector(shape, c);
  return t;
}

// A rank-8 matrix of `rows` x `cols`.
Tensor Rank8(int64_t rows, int64_t cols, uint32_t seed, Shape shape = {}) {
  return Times(RandomTensor({rows, 8}, seed), RandomTensor({8, cols}, seed + 1),
               shape.empty() ? Shape{rows, cols} : shape);
}

// y1 = x W, y2 = relu(x) W (shared W, 64 x 48), y3 = Gemm(x, V^T, b) with
// transB, y4 = Conv1x1(img, C, b) with stride 2; every weight of rank 8.
Graph RankEight() {
  GraphBuilder b;
  b.Input("x", {32, 64});
  b.Input("img", {2, 64, 5, 5});
  b.Constant("w", Rank8(64, 48, 1));
  b.Constant("vt", Rank8(48, 64, 3));
  b.Constant("bias", RandomTensor({48}, 5));
  b.Constant("c", Rank8(48, 64, 6, {48, 64, 1, 1}));
  b.Node("MatMul", {"x", "w"}, {"y1"});
  b.Node("Relu", {"x"}, {"r"});
  b.Node("MatMul", {"r", "w"}, {"y2"});
  b.Node("Gemm", {"x", "vt", "bias"}, {"y3"}).Int("transB", 1);
  b.Node("Conv", {"img", "c", "bias"}, {"y4"}).Ints("strides", {2, 2});
  for (const char* y : {"y1", "y2", "y3", "y4"}) b.Output(y);
  return b.Build();
}

std::vector<std::vector<Tensor>> RandomBatches(int n) {
  std::vector<std::vector<Tensor>> batches;
  for (int i = 0; i < n; ++i) batches.push_back({RandomTensor({32, 64}, 10 + i), RandomTensor({2, 64, 5, 5}, 20 + i)});
  return batches;
}

TEST(LowRank, RankEightWeightsComeBackExactly) {
  for (const LowRankOptions options : {LowRankOptions{.ratio = 0.5}, LowRankOptions{.energy = 0.999}}) {
    const Graph original = RankEight();
    Graph factorized = original;
    auto report = Factorize(factorized, options, RandomBatches(2), 0, {});
    ASSERT_TRUE(report.ok()) << report.status();
    for (const std::string& line : report->layers) std::printf("  %s\n", line.c_str());
    ASSERT_EQ(report->layers.size(), 3u);  // the shared W once
    EXPECT_NE(report->layers[0].find("and 1 sharing its weights"), std::string::npos);
    EXPECT_NE(report->layers[0].find("rank 8 "), std::string::npos);
    // Each 64 x 48 weight (3072) becomes 64 x 8 + 8 x 48 (896); the bias stays.
    EXPECT_EQ(report->parameters_before, 3 * 3072 + 48);
    EXPECT_EQ(report->parameters_after, 3 * 896 + 48);
    EXPECT_EQ(factorized.nodes.size(), original.nodes.size() + 4);
    const std::vector<Tensor> inputs = RandomBatches(3)[2];
    auto before = runtime::testing::RunGraph(original, inputs);
    auto after = runtime::testing::RunGraph(factorized, inputs);
    ASSERT_TRUE(before.ok() && after.ok()) << after.status();
    for (size_t i = 0; i < before->size(); ++i) {
      EXPECT_EQ((*after)[i].shape(), (*before)[i].shape());
      EXPECT_LE(runtime::testing::Mismatch((*after)[i], (*before)[i], 1e-4, 1e-4), 1.0) << "output " << i;
    }
  }
}

// A weight too small to factorize, read by two nodes around one that is
// factorized: the second reader stays with its own weight.
TEST(LowRank, NodesSharingALeftWeightAreLeft) {
  GraphBuilder b;
  b.Input("x", {4, 12});
  b.Input("y", {32, 64});
  b.Constant("small", RandomTensor({12, 10}, 1));
  b.Constant("w", Rank8(64, 48, 2));
  b.Node("MatMul", {"x", "small"}, {"a"});
  b.Node("MatMul", {"y", "w"}, {"b"});
  b.Node("MatMul", {"x", "small"}, {"c"});
  for (const char* out : {"a", "b", "c"}) b.Output(out);
  const Graph original = b.Build();
  Graph factorized = original;
  auto report = Factorize(factorized, {}, {}, 0, {});
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->layers.size(), 1u);
  EXPECT_NE(report->layers[0].find("64x48 -> rank 8"), std::string::npos) << report->layers[0];
  const std::vector<Tensor> inputs = {RandomTensor({4, 12}, 3), RandomTensor({32, 64}, 4)};
  auto before = runtime::testing::RunGraph(original, inputs);
  auto after = runtime::testing::RunGraph(factorized, inputs);
  ASSERT_TRUE(before.ok() && after.ok()) << after.status();
  for (size_t i = 0; i < before->size(); ++i) {
    EXPECT_LE(runtime::testing::Mismatch((*after)[i], (*before)[i], 1e-4, 1e-4), 1.0) << "output " << i;
  }
}

TEST(LowRank, BadInputIsRefused) {
  Graph g = RankEight();
  for (const LowRankOptions bad : {LowRankOptions{.ratio = 0}, LowRankOptions{.ratio = 1},
                                   LowRankOptions{.energy = 1.5}, LowRankOptions{.energy = -1}}) {
    EXPECT_EQ(Factorize(g, bad, {}, 0, {}).status().code(), absl::StatusCode::kInvalidArgument);
  }
  GraphBuilder b;  // no layer where rank 8 saves anything: 12 x 10 needs r < 5.5
  b.Input("x", {2, 12});
  b.Constant("w", RandomTensor({12, 10}, 1));
  b.Node("Relu", {"x"}, {"r"});
  b.Node("MatMul", {"r", "w"}, {"y"});
  b.Output("y");
  Graph small = b.Build();
  auto status = Factorize(small, {}, {}, 0, {}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("no layer"), std::string::npos) << status;

  GraphBuilder full;  // full rank: 100 % of the energy needs all 48
  full.Input("x", {32, 64});
  full.Constant("w", RandomTensor({64, 48}, 1));
  full.Node("MatMul", {"x", "w"}, {"y"});
  full.Output("y");
  Graph dense = full.Build();
  std::vector<std::vector<Tensor>> batches = {{RandomTensor({32, 64}, 2)}};
  status = Factorize(dense, {.energy = 1.0}, batches, 0, {}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("energy"), std::string::npos) << status;
}

// Top-1 on the Fashion-MNIST test set after factorizing at `ratio`, fitted
// to `rows` training images (0: the plain truncated SVD).
double FashionTop1(double ratio, int64_t rows, double* original_top1) {
  auto original = runtime::ImportOnnxFile(model_path, {});
  EXPECT_TRUE(original.ok()) << original.status();
  runtime::OptimizeOptions fold;
  fold.fuse = false;
  EXPECT_TRUE(runtime::Optimize(*original, fold).ok());
  auto train = LoadDataSet(cache_dir + "/datasets/fashion_mnist_train.npz", *original);
  auto test = LoadDataSet(cache_dir + "/datasets/fashion_mnist_test.npz", *original);
  EXPECT_TRUE(train.ok() && test.ok()) << test.status();
  if (!original.ok() || !train.ok() || !test.ok()) return 0;
  Graph factorized = *original;
  auto report = Factorize(factorized, {.ratio = ratio}, rows > 0 ? train->Batches(0, rows, 128) : decltype(train->Batches(0, 1, 1)){}, 0, {});
  EXPECT_TRUE(report.ok()) << report.status();
  if (!report.ok()) return 0;
  auto e = Evaluate(*original, factorized, *test, {});
  EXPECT_TRUE(e.ok()) << e.status();
  if (!e.ok()) return 0;
  std::printf("ratio %.2f, fitted on %lld rows: top-1 %.2f %% (fp32 %.2f %%), SQNR %.1f dB; %s\n", ratio,
              static_cast<long long>(rows), e->variant_top1, e->original_top1, e->sqnr_db, report->layers[0].c_str());
  *original_top1 = e->original_top1;
  return e->variant_top1;
}

TEST(LowRank, FashionHalfTheClassifierWithinHalfAPoint) {
  double fp32 = 0;
  const double fitted = FashionTop1(0.5, 512, &fp32);
  EXPECT_GE(fitted, fp32 - 0.5);
  const double svd = FashionTop1(0.5, 0, &fp32);
  EXPECT_GT(fitted, svd) << "fitting to the data should beat the plain SVD";
}

}  // namespace
}  // namespace slimserve::compression

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  if (argc != 3) {
    std::fprintf(stderr, "usage: low_rank_test MODEL.onnx CACHE_DIR\n");
    return 2;
  }
  slimserve::compression::model_path = argv[1];
  slimserve::compression::cache_dir = argv[2];
  return RUN_ALL_TESTS();
}
