// Quantization of the Fashion-MNIST example, measured on real data: the
// 10,000 test images, calibrated on 1,000 training images (both written by
// tools/make_eval_set.py). Budget: int8 static and dynamic within 0.3 points
// of fp32 top-1.
//
// Usage: quantize_test MODEL.onnx DATASETS_DIR
#include "compression/quantize.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "runtime/backends.h"
#include "runtime/executor.h"
#include "runtime/npy.h"
#include "runtime/onnx_import.h"
#include "runtime/passes/passes.h"
#include "runtime/testing/graph_builder.h"

namespace slimserve::compression {
namespace {

using runtime::Graph;
using runtime::Tensor;

std::string model_path, datasets_dir;

constexpr int64_t kBatch = 100;

struct DataSet {
  Tensor input, labels;
};

DataSet Load(const std::string& name) {
  auto members = runtime::ReadNpz(datasets_dir + "/" + name);
  EXPECT_TRUE(members.ok()) << members.status() << " (make it with tools/make_eval_set.py)";
  DataSet d;
  if (!members.ok()) return d;
  for (auto& [key, t] : *members) (key == "input" ? d.input : d.labels) = std::move(t);
  return d;
}

// Rows [begin, begin + count) of `t`, copied.
Tensor Rows(const Tensor& t, int64_t begin, int64_t count) {
  runtime::Shape shape = t.shape();
  shape[0] = count;
  Tensor part = *Tensor::Allocate(t.dtype(), shape);
  const size_t row = t.byte_size() / t.shape()[0];
  std::memcpy(part.raw_data(), static_cast<const char*>(t.raw_data()) + begin * row, count * row);
  return part;
}

std::vector<std::vector<Tensor>> Batches(const Tensor& input, int64_t rows) {
  std::vector<std::vector<Tensor>> batches;
  for (int64_t b = 0; b < rows; b += kBatch) batches.push_back({Rows(input, b, std::min(kBatch, rows - b))});
  return batches;
}

// Class predicted for every row, running the optimized graph.
std::vector<int> Predict(Graph graph, const Tensor& input) {
  EXPECT_TRUE(runtime::Optimize(graph, {}).ok());
  auto backends = runtime::MakeBackends("auto", 0);
  runtime::ExecutorOptions options;
  options.backends = backends->pointers();
  auto executor = runtime::Executor::Create(std::move(graph), options);
  EXPECT_TRUE(executor.ok()) << executor.status();
  std::vector<int> classes;
  for (const auto& batch : Batches(input, input.shape()[0])) {
    auto out = (*executor)->Run(batch);
    EXPECT_TRUE(out.ok()) << out.status();
    if (!out.ok()) return classes;
    const Tensor& logits = (*out)[0];
    const int64_t n = logits.shape()[1];
    for (int64_t r = 0; r < logits.shape()[0]; ++r) {
      const float* row = logits.data<float>() + r * n;
      classes.push_back(static_cast<int>(std::max_element(row, row + n) - row));
    }
  }
  return classes;
}

double Accuracy(const std::vector<int>& classes, const Tensor& labels) {
  int64_t right = 0;
  for (size_t i = 0; i < classes.size(); ++i) right += classes[i] == labels.data<int64_t>()[i];
  return 100.0 * right / labels.num_elements();
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
  const DataSet test = Load("fashion_mnist_test.npz");
  const DataSet train = Load("fashion_mnist_train.npz");
  ASSERT_EQ(test.input.shape()[0], 10000);
  ASSERT_GE(train.input.shape()[0], 1000);

  const double fp32 = Accuracy(Predict(Folded(), test.input), test.labels);
  std::printf("fp32 top-1 %.2f %%\n", fp32);
  EXPECT_GE(fp32, 91.0);
  for (bool dynamic : {false, true}) {
    Graph graph = Folded();
    QuantizeOptions options;
    options.dynamic = dynamic;
    auto report = Quantize(graph, options, Batches(train.input, 1000));
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
    const double int8 = Accuracy(Predict(std::move(graph), test.input), test.labels);
    std::printf("int8-%s top-1 %.2f %% (%+.2f points)\n", dynamic ? "dynamic" : "static", int8, int8 - fp32);
    EXPECT_GE(int8, fp32 - 0.3) << (dynamic ? "dynamic" : "static");
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
