#include "runtime/testing/qdq_graphs.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "runtime/testing/graph_builder.h"

namespace slimserve::runtime::testing {
namespace {

// Symmetric int8 weights with one scale per slice along `axis` (or one for
// all when `per_channel` is false), added as `name`, `name`_scale.
void QuantizedWeights(GraphBuilder& b, const std::string& name, Shape shape, int axis, bool per_channel,
                      uint32_t seed) {
  const Tensor w = RandomTensor(shape, seed, -0.3f, 0.3f);
  const int64_t channels = per_channel ? shape[axis] : 1;
  int64_t inner = 1;
  for (size_t d = axis + 1; d < shape.size(); ++d) inner *= shape[d];
  auto channel = [&](int64_t i) { return per_channel ? (i / inner) % channels : 0; };
  std::vector<float> scales(channels, 0.0f);
  for (int64_t i = 0; i < w.num_elements(); ++i) {
    scales[channel(i)] = std::max(scales[channel(i)], std::fabs(w.data<float>()[i]) / 127.0f);
  }
  std::vector<int8_t> q(w.num_elements());
  for (int64_t i = 0; i < w.num_elements(); ++i) {
    q[i] = static_cast<int8_t>(std::nearbyint(w.data<float>()[i] / scales[channel(i)]));
  }
  b.Constant(name + "_q", Tensor::FromVector<int8_t>(shape, q));
  b.Constant(name + "_scale", per_channel ? Tensor::FromVector<float>({channels}, scales)
                                          : Tensor::FromVector<float>({}, scales));
  b.Constant(name + "_zero", per_channel
                                 ? Tensor::FromVector<int8_t>({channels}, std::vector<int8_t>(channels))
                                 : Tensor::FromVector<int8_t>({}, {0}));
  auto dq = b.Node("DequantizeLinear", {name + "_q", name + "_scale", name + "_zero"}, {name});
  if (per_channel) dq.Int("axis", axis);
}

// value -> QuantizeLinear -> DequantizeLinear -> `out`, with a scale and a
// zero point of type T.
template <typename T>
void Qdq(GraphBuilder& b, const std::string& value, const std::string& out, float scale, T zero) {
  b.Constant(value + "_s", Tensor::FromVector<float>({}, {scale}));
  b.Constant(value + "_z", Tensor::FromVector<T>({}, {zero}));
  b.Node("QuantizeLinear", {value, value + "_s", value + "_z"}, {value + "_q"});
  b.Node("DequantizeLinear", {value + "_q", value + "_s", value + "_z"}, {out});
}

}  // namespace

Graph SlimserveQdqGraph(bool int8_residual) {
  GraphBuilder b;
  b.Input("x", {-1, 16, 8, 8});
  QuantizedWeights(b, "w1", {16, 16, 3, 3}, 0, true, 1);
  QuantizedWeights(b, "w2", {16, 16, 3, 3}, 0, true, 2);
  QuantizedWeights(b, "w3", {32, 16, 1, 1}, 0, true, 3);
  QuantizedWeights(b, "fc", {10, 32}, 0, true, 4);
  b.Constant("b1", RandomTensor({16}, 5));
  b.Constant("b2", RandomTensor({16}, 6));
  b.Constant("fc_b", RandomTensor({10}, 7));
  Qdq<uint8_t>(b, "x", "x_dq", 2.0f / 255, 128);
  b.Node("Conv", {"x_dq", "w1", "b1"}, {"c1"}).Ints("pads", {1, 1, 1, 1});
  b.Node("Relu", {"c1"}, {"r1"});
  Qdq<uint8_t>(b, "r1", "r1_dq", 4.0f / 255, 0);
  b.Node("Conv", {"r1_dq", "w2", "b2"}, {"c2"}).Ints("pads", {1, 1, 1, 1});
  b.Node("Add", {"c2", int8_residual ? "x_dq" : "x"}, {"s"});
  b.Node("Relu", {"s"}, {"r2"});
  b.Node("MaxPool", {"r2"}, {"p"}).Ints("kernel_shape", {2, 2}).Ints("strides", {2, 2});
  Qdq<uint8_t>(b, "p", "p_dq", 5.0f / 255, 0);
  b.Node("Conv", {"p_dq", "w3"}, {"c3"});
  b.Node("Relu", {"c3"}, {"r3"});
  b.Node("GlobalAveragePool", {"r3"}, {"g"});
  b.Node("Flatten", {"g"}, {"f"});
  Qdq<uint8_t>(b, "f", "f_dq", 2.0f / 255, 0);
  b.Node("Gemm", {"f_dq", "fc", "fc_b"}, {"y"}).Int("transB", 1);
  b.Output("y");
  return b.Build();
}

Graph MixedPrecisionQdqGraph() {
  GraphBuilder b;
  b.Input("x", {-1, 16, 8, 8});
  QuantizedWeights(b, "w1", {16, 16, 3, 3}, 0, true, 21);
  b.Constant("b1", RandomTensor({16}, 22));
  b.Constant("w2", RandomTensor({16, 16, 3, 3}, 23, -0.3f, 0.3f));
  Qdq<uint8_t>(b, "x", "x_dq", 2.0f / 255, 128);
  b.Node("Conv", {"x_dq", "w1", "b1"}, {"c1"}).Ints("pads", {1, 1, 1, 1});
  b.Node("Relu", {"c1"}, {"r1"});
  Qdq<uint8_t>(b, "r1", "r1_dq", 4.0f / 255, 0);
  b.Node("Conv", {"r1_dq", "w2"}, {"y"}).Ints("pads", {1, 1, 1, 1});
  b.Output("y");
  return b.Build();
}

Graph OrtQdqGraph() {
  GraphBuilder b;
  b.Input("x", {-1, 8, 6, 6});
  QuantizedWeights(b, "w1", {8, 8, 3, 3}, 0, false, 11);
  QuantizedWeights(b, "w2", {8, 8, 3, 3}, 0, true, 12);
  QuantizedWeights(b, "fc", {18, 6}, 1, true, 13);
  b.Constant("w3", RandomTensor({2, 8, 1, 1}, 14));
  // int32 bias at scale x_scale * w_scale, as ONNX Runtime stores it.
  const float bias_scale = (2.0f / 255) * (0.3f / 127);
  std::vector<int32_t> bias(8);
  for (int i = 0; i < 8; ++i) bias[i] = (i - 4) * 40;
  b.Constant("b1_q", Tensor::FromVector<int32_t>({8}, bias));
  b.Constant("b1_scale", Tensor::FromVector<float>({}, {bias_scale}));
  b.Constant("b1_zero", Tensor::FromVector<int32_t>({}, {0}));
  b.Node("DequantizeLinear", {"b1_q", "b1_scale", "b1_zero"}, {"b1"});
  Qdq<int8_t>(b, "x", "x_dq", 2.0f / 255, 0);
  b.Node("Conv", {"x_dq", "w1", "b1"}, {"c1"}).Ints("pads", {1, 1, 1, 1});
  Qdq<int8_t>(b, "c1", "c1_dq", 6.0f / 255, 3);
  b.Node("Relu", {"c1_dq"}, {"r1"});
  Qdq<int8_t>(b, "r1", "r1_dq", 3.0f / 255, -128);
  b.Node("Conv", {"r1_dq", "w2"}, {"c2"}).Ints("pads", {1, 1, 1, 1});
  Qdq<int8_t>(b, "c2", "c2_dq", 8.0f / 255, -5);
  b.Node("Add", {"c2_dq", "r1_dq"}, {"s"});
  Qdq<int8_t>(b, "s", "s_dq", 9.0f / 255, -10);
  b.Node("MaxPool", {"s_dq"}, {"p"}).Ints("kernel_shape", {2, 2}).Ints("strides", {2, 2});
  Qdq<int8_t>(b, "p", "p_dq", 9.0f / 255, -10);
  b.Node("Conv", {"p_dq", "w3"}, {"c3"});
  b.Node("Sigmoid", {"c3"}, {"sig"});
  b.Node("Flatten", {"sig"}, {"f"});
  Qdq<int8_t>(b, "f", "f_dq", 1.0f / 255, -128);
  b.Node("MatMul", {"f_dq", "fc"}, {"m"});
  Qdq<int8_t>(b, "m", "y", 4.0f / 255, 0);
  b.Output("y");
  return b.Build();
}

Graph DynamicQdqGraph() {
  GraphBuilder b;
  b.Input("a", {2, 5, 12});
  QuantizedWeights(b, "w", {12, 7}, 1, true, 21);
  b.Constant("bias", RandomTensor({7}, 22));
  b.Node("DynamicQuantizeLinear", {"a"}, {"a_q", "a_s", "a_z"});
  b.Node("DequantizeLinear", {"a_q", "a_s", "a_z"}, {"a_dq"});
  b.Node("MatMul", {"a_dq", "w"}, {"m"});
  b.Node("Add", {"m", "bias"}, {"y"});
  b.Output("y");
  return b.Build();
}

}  // namespace slimserve::runtime::testing
