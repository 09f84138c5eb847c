// The runtime's int8 fused operators (domain "slimserve"), produced by the
// quantized-pattern pass from ONNX QDQ graphs. Each is its float fused op
// (see fused_ops.cc) reading int8 operands, with an optional requantized
// output:
//
//   QFusedConv(X, X_scale, X_zero_point?, W, W_scale, B?, Sum?)
//   QFusedGemm(A, A_scale, A_zero_point?, B, B_scale, C?)
//   QFusedMatMul(A, A_scale, A_zero_point?, B, B_scale, Bias?)
//
//   Y = act(Base(DequantizeLinear(X), W * W_scale, bias) + Sum)
//
// X is uint8 or int8 with a per-tensor scale and zero point; W is int8 with a
// symmetric (zero-point-free) scale per tensor or per output channel, along
// the axis in attribute `w_axis`. When attribute `y_scale` is present the
// output is QuantizeLinear(Y, y_scale, y_zero_point) of type `y_type` (ONNX
// type number: 2 uint8, 3 int8); otherwise Y is float32. With attribute
// `sum_scale`, Sum is int8 too: DequantizeLinear(Sum, sum_scale,
// sum_zero_point).
//
// The reference dequantizes, runs the float fused op's reference kernel and
// quantizes: exactly the QDQ graph it replaces, op for op.
#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "runtime/activation.h"
#include "runtime/reference/op_registry.h"
#include "runtime/status_macros.h"

namespace slimserve::runtime::reference {
namespace {

constexpr size_t kQuantizedInputs = 5;  // X, X_scale, X_zero_point, W, W_scale

// The float fused node this node computes, with inputs (X, W, rest...).
Node FloatNode(const Node& node) {
  Node f = node;
  f.op_type = node.op_type.substr(1);  // "QFusedConv" -> "FusedConv"
  f.inputs = {node.inputs[0], node.inputs[3]};
  for (size_t i = kQuantizedInputs; i < node.inputs.size(); ++i) f.inputs.push_back(node.inputs[i]);
  for (const char* attr : {"w_axis", "y_scale", "y_zero_point", "y_type", "sum_scale", "sum_zero_point"}) {
    f.attributes.erase(attr);
  }
  return f;
}

DataType OutputType(const Node& node) {
  return node.Has("y_scale") ? static_cast<DataType>(node.GetInt("y_type", 2)) : DataType::kFloat32;
}

absl::Status InferQuantizedFused(InferContext& c) {
  if (c.num_inputs() < kQuantizedInputs) return c.Error("expects at least 5 inputs");
  const DataType x = c.input(0).dtype, w = c.input(3).dtype;
  if ((x != DataType::kUint8 && x != DataType::kInt8) || w != DataType::kInt8) {
    return c.Error("expects uint8 or int8 X and int8 W");
  }
  const DataType y = OutputType(c.node);
  if (y != DataType::kFloat32 && y != DataType::kUint8 && y != DataType::kInt8) {
    return c.Error("y_type must be uint8 or int8");
  }
  const Node f = FloatNode(c.node);
  std::vector<TensorDesc> inputs = {c.input(0), c.input(3)};
  for (size_t i = kQuantizedInputs; i < c.num_inputs(); ++i) inputs.push_back(c.input(i));
  for (TensorDesc& d : inputs) {
    if (d.defined()) d.dtype = DataType::kFloat32;
  }
  InferContext base{f, c.opset, inputs, c.outputs};
  RETURN_IF_ERROR(FindOp(f)->infer(base));
  c.outputs[0].dtype = y;
  return absl::OkStatus();
}

int32_t ZeroPoint(const Tensor& t) {
  if (!t.defined()) return 0;
  return t.dtype() == DataType::kInt8 ? t.data<int8_t>()[0] : t.data<uint8_t>()[0];
}

template <typename T>
void Dequantize(const T* q, int64_t n, float scale, int32_t zero, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(static_cast<int32_t>(q[i]) - zero) * scale;
}

absl::StatusOr<Tensor> DequantizeInput(const ComputeContext& c) {
  const Tensor& x = c.input(0);
  if (c.input(1).num_elements() != 1 || (c.has_input(2) && c.input(2).num_elements() != 1)) {
    return c.Error("X_scale and X_zero_point must have one element");
  }
  ASSIGN_OR_RETURN(Tensor out, Tensor::Allocate(DataType::kFloat32, x.shape()));
  const float scale = c.input(1).data<float>()[0];
  const int32_t zero = ZeroPoint(c.input(2));
  if (x.dtype() == DataType::kInt8) {
    Dequantize(x.data<int8_t>(), x.num_elements(), scale, zero, out.data<float>());
  } else {
    Dequantize(x.data<uint8_t>(), x.num_elements(), scale, zero, out.data<float>());
  }
  return out;
}

absl::StatusOr<Tensor> DequantizeWeights(const ComputeContext& c) {
  const Tensor& w = c.input(3);
  const Tensor& scale = c.input(4);
  int64_t axis = c.node.GetInt("w_axis", 0);
  if (axis < 0) axis += w.rank();
  if (axis < 0 || axis >= w.rank()) return c.Error("w_axis out of range");
  const int64_t channels = scale.num_elements();
  if (channels != 1 && channels != w.dim(axis)) return c.Error("W_scale does not match W's w_axis");
  int64_t inner = 1;
  for (int64_t d = axis + 1; d < w.rank(); ++d) inner *= w.dim(d);
  ASSIGN_OR_RETURN(Tensor out, Tensor::Allocate(DataType::kFloat32, w.shape()));
  for (int64_t i = 0; i < w.num_elements(); ++i) {
    const int64_t k = channels == 1 ? 0 : (i / inner) % channels;
    out.data<float>()[i] = static_cast<float>(w.data<int8_t>()[i]) * scale.data<float>()[k];
  }
  return out;
}

template <typename T>
void Quantize(const float* y, int64_t n, float scale, int32_t zero, T* out) {
  constexpr float lo = std::numeric_limits<T>::min(), hi = std::numeric_limits<T>::max();
  for (int64_t i = 0; i < n; ++i) {
    out[i] = static_cast<T>(std::clamp(std::nearbyint(y[i] / scale) + static_cast<float>(zero), lo, hi));
  }
}

absl::Status ComputeQuantizedFused(ComputeContext& c) {
  const Node f = FloatNode(c.node);
  ASSIGN_OR_RETURN(Tensor x, DequantizeInput(c));
  ASSIGN_OR_RETURN(Tensor w, DequantizeWeights(c));
  std::vector<Tensor> inputs = {x, w};
  for (size_t i = kQuantizedInputs; i < c.num_inputs(); ++i) inputs.push_back(c.input(i));
  if (c.node.Has("sum_scale") && inputs.size() > 3 && inputs[3].defined()) {  // X, W, B, Sum
    const Tensor& sum = inputs[3];
    ASSIGN_OR_RETURN(Tensor addend, Tensor::Allocate(DataType::kFloat32, sum.shape()));
    const float scale = c.node.GetFloat("sum_scale", 1.0f);
    const auto zero = static_cast<int32_t>(c.node.GetInt("sum_zero_point", 0));
    if (sum.dtype() == DataType::kInt8) {
      Dequantize(sum.data<int8_t>(), sum.num_elements(), scale, zero, addend.data<float>());
    } else {
      Dequantize(sum.data<uint8_t>(), sum.num_elements(), scale, zero, addend.data<float>());
    }
    inputs[3] = addend;
  }
  Tensor& out = c.outputs[0];
  const DataType y_type = OutputType(c.node);
  Tensor y = out;
  if (y_type != DataType::kFloat32) {
    ASSIGN_OR_RETURN(y, Tensor::Allocate(DataType::kFloat32, out.shape()));
  }
  std::vector<Tensor> outputs = {y};
  ComputeContext base{f, c.opset, inputs, absl::MakeSpan(outputs), c.num_threads};
  RETURN_IF_ERROR(FindOp(f)->compute(base));
  if (y_type == DataType::kFloat32) return absl::OkStatus();
  const float scale = c.node.GetFloat("y_scale", 1.0f);
  const auto zero = static_cast<int32_t>(c.node.GetInt("y_zero_point", 0));
  if (y_type == DataType::kInt8) {
    Quantize(y.data<float>(), y.num_elements(), scale, zero, out.data<int8_t>());
  } else {
    Quantize(y.data<float>(), y.num_elements(), scale, zero, out.data<uint8_t>());
  }
  return absl::OkStatus();
}

}  // namespace

void RegisterQuantizedFusedOps(OpTable& t) {
  for (const char* name : {"QFusedConv", "QFusedGemm", "QFusedMatMul"}) {
    t[absl::StrCat(kFusedDomain, ".", name)] =
        OpDef{.infer = InferQuantizedFused, .compute = ComputeQuantizedFused};
  }
}

}  // namespace slimserve::runtime::reference
