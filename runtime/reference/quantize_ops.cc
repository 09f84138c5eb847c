// QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear: the operators
// of ONNX's QDQ form of int8 models (per-tensor or, from opset 13, per-axis
// scales and zero points; uint8 or int8 values).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/reference/multiversion.h"
#include "runtime/reference/op_registry.h"
#include "runtime/reference/parallel.h"
#include "runtime/status_macros.h"

namespace slimserve::runtime::reference {
namespace {

// How a scale (and zero point) of shape [] or [C] maps onto the elements of
// a tensor: element i uses entry (i / inner) % channels.
struct Broadcast {
  int64_t channels = 1;
  int64_t inner = 1;
  int64_t At(int64_t i) const { return channels == 1 ? 0 : (i / inner) % channels; }
};

template <typename Context>
absl::StatusOr<Broadcast> ScaleBroadcast(const Context& c, const Shape& data, const Shape& scale) {
  if (scale.empty() || (scale.size() == 1 && scale[0] == 1)) return Broadcast{};
  if (scale.size() != 1) return c.Error(absl::StrCat("scale must be a scalar or 1-D, got ", ShapeToString(scale)));
  int64_t axis = c.node.GetInt("axis", 1);
  const int64_t rank = static_cast<int64_t>(data.size());
  if (axis < -rank || axis >= rank) return c.Error(absl::StrCat("axis ", axis, " is out of range for rank ", rank));
  if (axis < 0) axis += rank;
  if (data[axis] != scale[0]) {
    return c.Error(absl::StrCat("scale has ", scale[0], " entries but axis ", axis, " of input ",
                                ShapeToString(data), " has ", data[axis]));
  }
  Broadcast b{scale[0], 1};
  for (int64_t d = axis + 1; d < rank; ++d) b.inner *= data[d];
  return b;
}

absl::Status CheckZeroPoint(const InferContext& c, size_t i, const TensorDesc& scale) {
  const TensorDesc& zero_point = c.input(i);
  if (!zero_point.defined()) return absl::OkStatus();
  if (zero_point.shape != scale.shape) {
    return c.Error(absl::StrCat("zero point shape ", ShapeToString(zero_point.shape), " differs from scale shape ",
                                ShapeToString(scale.shape)));
  }
  return absl::OkStatus();
}

absl::Status InferQuantize(InferContext& c) {
  if (c.input(1).dtype != DataType::kFloat32) return c.Error("y_scale must be float");
  const DataType out = c.input(2).defined() ? c.input(2).dtype : DataType::kUint8;
  if (out != DataType::kUint8 && out != DataType::kInt8) return c.Error("y_zero_point must be uint8 or int8");
  RETURN_IF_ERROR(CheckZeroPoint(c, 2, c.input(1)));
  RETURN_IF_ERROR(ScaleBroadcast(c, c.input(0).shape, c.input(1).shape).status());
  c.SetOutput(0, out, c.input(0).shape);
  return absl::OkStatus();
}

absl::Status InferDequantize(InferContext& c) {
  const DataType in = c.input(0).dtype;
  if (in != DataType::kUint8 && in != DataType::kInt8 && in != DataType::kInt32) {
    return c.Error("x must be uint8, int8 or int32");
  }
  if (c.input(1).dtype != DataType::kFloat32) return c.Error("x_scale must be float");
  if (c.input(2).defined() && c.input(2).dtype != in) return c.Error("x_zero_point must have x's type");
  RETURN_IF_ERROR(CheckZeroPoint(c, 2, c.input(1)));
  RETURN_IF_ERROR(ScaleBroadcast(c, c.input(0).shape, c.input(1).shape).status());
  c.SetOutput(0, DataType::kFloat32, c.input(0).shape);
  return absl::OkStatus();
}

absl::Status InferDynamicQuantize(InferContext& c) {
  if (c.input(0).dtype != DataType::kFloat32) return c.Error("x must be float");
  c.SetOutput(0, DataType::kUint8, c.input(0).shape);
  c.SetOutput(1, DataType::kFloat32, {});
  c.SetOutput(2, DataType::kUint8, {});
  return absl::OkStatus();
}

// The zero point of entry `k`, as an int (0 when absent).
int32_t ZeroPoint(const Tensor& zero_point, int64_t k) {
  if (!zero_point.defined()) return 0;
  switch (zero_point.dtype()) {
    case DataType::kUint8: return zero_point.data<uint8_t>()[k];
    case DataType::kInt8: return zero_point.data<int8_t>()[k];
    default: return zero_point.data<int32_t>()[k];
  }
}

// Calls f(start, length, k) for each run of elements that share scale entry k.
template <typename F>
void ForEachRun(const Broadcast& b, int64_t n, F f) {
  const int64_t run = b.channels == 1 ? n : b.inner;
  for (int64_t start = 0; start < n; start += run) f(start, std::min(run, n - start), b.At(start));
}

// Rounds half to even, as the operators require, without a libm call (which
// would keep the loops below from vectorizing): adding and subtracting
// 1.5 * 2^23 leaves the nearest integer in the default rounding mode, for
// |v| <= 2^22.
inline float RoundHalfEven(float v) {
  constexpr float kLimit = 4194304.0f, kMagic = 12582912.0f;
  v = std::min(std::max(v, -kLimit), kLimit);
  return (v + kMagic) - kMagic;
}

template <typename T>
SLIMSERVE_MULTIVERSION void QuantizeRun(const float* __restrict x, int64_t n, float scale, float zero_point,
                                        T* __restrict y) {
  constexpr float lo = std::numeric_limits<T>::min(), hi = std::numeric_limits<T>::max();
  for (int64_t i = 0; i < n; ++i) {
    const float q = RoundHalfEven(x[i] / scale) + zero_point;
    y[i] = static_cast<T>(static_cast<int32_t>(std::min(std::max(q, lo), hi)));
  }
}

template <typename T>
void QuantizeValues(const float* x, int64_t n, const Broadcast& b, const float* scale, const Tensor& zero_point,
                    T* y) {
  ForEachRun(b, n, [&](int64_t start, int64_t length, int64_t k) {
    QuantizeRun(x + start, length, scale[k], static_cast<float>(ZeroPoint(zero_point, k)), y + start);
  });
}

absl::Status Quantize(ComputeContext& c) {
  const Tensor& x = c.input(0);
  ASSIGN_OR_RETURN(Broadcast b, ScaleBroadcast(c, x.shape(), c.input(1).shape()));
  const float* scale = c.input(1).data<float>();
  Tensor& y = c.outputs[0];
  if (y.dtype() == DataType::kInt8) {
    QuantizeValues(x.data<float>(), x.num_elements(), b, scale, c.input(2), y.data<int8_t>());
  } else {
    QuantizeValues(x.data<float>(), x.num_elements(), b, scale, c.input(2), y.data<uint8_t>());
  }
  return absl::OkStatus();
}

template <typename T>
SLIMSERVE_MULTIVERSION void DequantizeRun(const T* __restrict x, int64_t n, float scale, int32_t zero_point,
                                          float* __restrict y) {
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(static_cast<int32_t>(x[i]) - zero_point) * scale;
}

template <typename T>
void DequantizeValues(const T* x, int64_t n, const Broadcast& b, const float* scale, const Tensor& zero_point,
                      float* y) {
  ForEachRun(b, n, [&](int64_t start, int64_t length, int64_t k) {
    DequantizeRun(x + start, length, scale[k], ZeroPoint(zero_point, k), y + start);
  });
}

absl::Status Dequantize(ComputeContext& c) {
  const Tensor& x = c.input(0);
  ASSIGN_OR_RETURN(Broadcast b, ScaleBroadcast(c, x.shape(), c.input(1).shape()));
  const float* scale = c.input(1).data<float>();
  float* y = c.outputs[0].data<float>();
  switch (x.dtype()) {
    case DataType::kUint8: DequantizeValues(x.data<uint8_t>(), x.num_elements(), b, scale, c.input(2), y); break;
    case DataType::kInt8: DequantizeValues(x.data<int8_t>(), x.num_elements(), b, scale, c.input(2), y); break;
    default: DequantizeValues(x.data<int32_t>(), x.num_elements(), b, scale, c.input(2), y); break;
  }
  return absl::OkStatus();
}

// The range of x extended to include 0. Sixteen independent accumulators, so
// that the loop vectorizes (a single running min is a serial dependency).
SLIMSERVE_MULTIVERSION void RangeWithZero(const float* __restrict x, int64_t n, float& lo, float& hi) {
  constexpr int64_t kLanes = 16;
  float los[kLanes] = {}, his[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int64_t j = 0; j < kLanes; ++j) {
      los[j] = std::min(los[j], x[i + j]);
      his[j] = std::max(his[j], x[i + j]);
    }
  }
  for (; i < n; ++i) {
    los[0] = std::min(los[0], x[i]);
    his[0] = std::max(his[0], x[i]);
  }
  lo = *std::min_element(los, los + kLanes);
  hi = *std::max_element(his, his + kLanes);
}

// uint8 with a range that includes 0: scale = (max - min) / 255, zero point
// = round(-min / scale). Large tensors in one contiguous part per thread.
absl::Status DynamicQuantize(ComputeContext& c) {
  const Tensor& x = c.input(0);
  const float* v = x.data<float>();
  uint8_t* y = c.outputs[0].data<uint8_t>();
  const int64_t n = x.num_elements();
  const int parts = WorthThreads(c.num_threads, n, static_cast<double>(n)) ? c.num_threads : 1;
  const int64_t part = (n + parts - 1) / parts;
  auto part_length = [&](int p) { return std::clamp<int64_t>(n - p * part, 0, part); };
  std::vector<float> los(parts), his(parts);
#pragma omp parallel for num_threads(parts) if (parts > 1)
  for (int p = 0; p < parts; ++p) RangeWithZero(v + p * part, part_length(p), los[p], his[p]);
  const float lo = *std::min_element(los.begin(), los.end()), hi = *std::max_element(his.begin(), his.end());
  const float scale = hi > lo ? (hi - lo) / 255.0f : 1.0f;
  const uint8_t zero = static_cast<uint8_t>(std::clamp(std::nearbyint(-lo / scale), 0.0f, 255.0f));
  c.outputs[1].data<float>()[0] = scale;
  c.outputs[2].data<uint8_t>()[0] = zero;
#pragma omp parallel for num_threads(parts) if (parts > 1)
  for (int p = 0; p < parts; ++p) QuantizeRun(v + p * part, part_length(p), scale, static_cast<float>(zero), y + p * part);
  return absl::OkStatus();
}

}  // namespace

void RegisterQuantizeOps(OpTable& t) {
  t["QuantizeLinear"] = OpDef{.infer = InferQuantize, .compute = Quantize};
  t["DequantizeLinear"] = OpDef{.infer = InferDequantize, .compute = Dequantize};
  t["DynamicQuantizeLinear"] = OpDef{.infer = InferDynamicQuantize, .compute = DynamicQuantize};
}

}  // namespace slimserve::runtime::reference
