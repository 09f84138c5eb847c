// Quantization of the Fashion-MNIST example, measured on real data: the
// 10,000 test images, calibrated on 1,000 training images (both written by
// tools/make_eval_set.py). Budget: int8 static and dynamic within 0.3 points
// of fp32 top-1.
//
// Usage: quantize_test MODEL.onnx DATASETS_DIR
#include "compression/quantize.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "compression/dataset.h"
#include "compression/evaluate.h"
#include "runtime/npy.h"
#include "runtime/onnx_export.h"
#include "runtime/onnx_import.h"
#include "runtime/passes/passes.h"
#include "runtime/testing/graph_builder.h"

namespace slimserve::compression {
namespace {

using runtime::Graph;
using runtime::Tensor;

std::string model_path, datasets_dir;

DataSet Load(const Graph& graph, const std::string& name) {
  auto data = LoadDataSet(datasets_dir + "/" + name, graph);
  EXPECT_TRUE(data.ok()) << data.status() << " (make it with tools/make_eval_set.py)";
  return data.ok() ? *std::move(data) : DataSet{};
}

// The model with BatchNorm folded and no fusion: standard ONNX ops.
Graph Folded() {
  auto graph = runtime::ImportOnnxFile(model_path, {});
  EXPECT_TRUE(graph.ok()) << graph.status();
  runtime::OptimizeOptions fold;
  fold.fuse = false;
  EXPECT_TRUE(runtime::Optimize(*graph, fold).ok());
  return *std::move(graph);
}

TEST(Quantize, FashionMnistTop1WithinBudget) {
  const DataSet test = Load(Folded(), "fashion_mnist_test.npz");
  const DataSet train = Load(Folded(), "fashion_mnist_train.npz");
  ASSERT_EQ(test.rows(), 10000);
  ASSERT_GE(train.rows(), 1000);
  for (bool dynamic : {false, true}) {
    Graph graph = Folded();
    QuantizeOptions options;
    options.dynamic = dynamic;
    auto report = Quantize(graph, options, train.Batches(0, 1000, 100));
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_EQ(report->quantized.size(), 6u);  // 4 Conv, 2 Gemm
    EXPECT_TRUE(report->kept_fp32.empty());
    EXPECT_EQ(report->calibration_rows, dynamic ? 0 : 1000);
    const auto count = [&](const std::string& op) {
      return std::count_if(graph.nodes.begin(), graph.nodes.end(), [&](const auto& n) { return n.op_type == op; });
    };
    // One quantize-dequantize pair per distinct activation input, one dequantize per weight.
    EXPECT_EQ(count(dynamic ? "DynamicQuantizeLinear" : "QuantizeLinear"), 6);
    EXPECT_EQ(count("DequantizeLinear"), 12);

    auto e = Evaluate(Folded(), graph, test, {});
    ASSERT_TRUE(e.ok()) << e.status();
    std::printf("int8-%s: top-1 %.2f %% (fp32 %.2f %%, %+.2f points), agreement %.2f %%, SQNR %.1f dB, cosine %.5f\n",
                dynamic ? "dynamic" : "static", e->variant_top1, e->original_top1, e->variant_top1 - e->original_top1,
                e->agreement, e->sqnr_db, e->cosine);
    EXPECT_GE(e->original_top1, 91.0);
    EXPECT_GE(e->variant_top1, e->original_top1 - 0.3);
    EXPECT_LT(e->agreement, 100.0);  // quantized for real: some answers move
    EXPECT_GT(e->sqnr_db, 20.0);

    // The exported file is the same model.
    const std::string path = ::testing::TempDir() + "/int8.onnx";
    ASSERT_TRUE(runtime::ExportOnnxFile(graph, path).ok());
    auto reread = runtime::ImportOnnxFile(path, {});
    ASSERT_TRUE(reread.ok()) << reread.status();
    auto same = Evaluate(graph, *std::move(reread), test, {.max_rows = 1000});
    ASSERT_TRUE(same.ok()) << same.status();
    EXPECT_EQ(same->agreement, 100.0);
    EXPECT_TRUE(std::isinf(same->sqnr_db)) << same->sqnr_db;
  }
}

TEST(Quantize, KeepsNamedNodesInFp32) {
  Graph graph = Folded();
  QuantizeOptions options;
  options.dynamic = true;
  options.keep_fp32 = {"Gemm"};
  auto report = Quantize(graph, options, {});
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->quantized.size(), 4u);
  ASSERT_EQ(report->kept_fp32.size(), 2u);
  EXPECT_NE(report->kept_fp32[0].find("kept in fp32 as asked"), std::string::npos);
}

TEST(Quantize, StaticNeedsCalibrationData) {
  Graph graph = Folded();
  auto report = Quantize(graph, {}, {});
  EXPECT_EQ(report.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(DataSet, MismatchedArraysNameTheProblem) {
  runtime::testing::GraphBuilder b;
  b.Input("x", {-1, 4});
  b.Node("Relu", {"x"}, {"y"});
  b.Output("y");
  auto data = LoadDataSet(datasets_dir + "/fashion_mnist_train.npz", b.Build());
  EXPECT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(data.status().message().find("model input 'x'"), std::string::npos) << data.status();
}

TEST(Quantize, NothingToQuantizeIsAnError) {
  runtime::testing::GraphBuilder b;
  b.Input("x", {1, 4});
  b.Node("Relu", {"x"}, {"y"});
  b.Output("y");
  Graph graph = b.Build();
  auto report = Quantize(graph, {}, {});
  EXPECT_EQ(report.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(report.status().message().find("Conv, Gemm or MatMul"), std::string::npos);
}

// The data sets' reader: a truncated .npz fails with a message, whichever
// part is missing.
TEST(Npz, TruncatedFileFailsClearly) {
  const std::string path = datasets_dir + "/fashion_mnist_train.npz";
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 1000u);
  const std::string cut = ::testing::TempDir() + "/cut.npz";
  for (size_t keep : {size_t{0}, size_t{100}, bytes.size() / 2, bytes.size() - 10}) {
    std::ofstream(cut, std::ios::binary) << bytes.substr(0, keep);
    auto members = runtime::ReadNpz(cut);
    EXPECT_EQ(members.status().code(), absl::StatusCode::kInvalidArgument) << keep;
    EXPECT_NE(members.status().message().find("cut.npz"), std::string::npos) << members.status();
  }
}

}  // namespace
}  // namespace slimserve::compression

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  if (argc != 3) {
    std::fprintf(stderr, "usage: quantize_test MODEL.onnx DATASETS_DIR\n");
    return 2;
  }
  slimserve::compression::model_path = argv[1];
  slimserve::compression::datasets_dir = argv[2];
  return RUN_ALL_TESTS();
}
