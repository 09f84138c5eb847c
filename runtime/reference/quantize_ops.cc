// QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear: the operators
// of ONNX's QDQ form of int8 models (per-tensor or, from opset 13, per-axis
// scales and zero points; uint8 or int8 values).
#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "runtime/reference/op_registry.h"
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

template <typename T>
void QuantizeValues(const float* x, int64_t n, const Broadcast& b, const float* scale, const Tensor& zero_point,
                    T* y) {
  constexpr float lo = std::numeric_limits<T>::min(), hi = std::numeric_limits<T>::max();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t k = b.At(i);
    // nearbyint rounds half to even, as the operator requires.
    const float q = std::nearbyint(x[i] / scale[k]) + static_cast<float>(ZeroPoint(zero_point, k));
    y[i] = static_cast<T>(std::clamp(q, lo, hi));
  }
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
void DequantizeValues(const T* x, int64_t n, const Broadcast& b, const float* scale, const Tensor& zero_point,
                      float* y) {
  for (int64_t i = 0; i < n; ++i) {
    const int64_t k = b.At(i);
    y[i] = static_cast<float>(static_cast<int32_t>(x[i]) - ZeroPoint(zero_point, k)) * scale[k];
  }
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

// uint8 with a range that includes 0: scale = (max - min) / 255, zero point
// = round(-min / scale).
absl::Status DynamicQuantize(ComputeContext& c) {
  const Tensor& x = c.input(0);
  const float* v = x.data<float>();
  const int64_t n = x.num_elements();
  float lo = 0, hi = 0;
  for (int64_t i = 0; i < n; ++i) {
    lo = std::min(lo, v[i]);
    hi = std::max(hi, v[i]);
  }
  const float scale = hi > lo ? (hi - lo) / 255.0f : 1.0f;
  const uint8_t zero = static_cast<uint8_t>(std::clamp(std::nearbyint(-lo / scale), 0.0f, 255.0f));
  c.outputs[1].data<float>()[0] = scale;
  c.outputs[2].data<uint8_t>()[0] = zero;
  QuantizeValues(v, n, Broadcast{}, &scale, c.outputs[2], c.outputs[0].data<uint8_t>());
  return absl::OkStatus();
}

}  // namespace

void RegisterQuantizeOps(OpTable& t) {
  t["QuantizeLinear"] = OpDef{.infer = InferQuantize, .compute = Quantize};
  t["DequantizeLinear"] = OpDef{.infer = InferDequantize, .compute = Dequantize};
  t["DynamicQuantizeLinear"] = OpDef{.infer = InferDynamicQuantize, .compute = DynamicQuantize};
}

}  // namespace slimserve::runtime::reference
