// Matrix products with constant weights on XNNPACK (fully_connected_nc_f32):
// Gemm/FusedGemm and MatMul/FusedMatMul with a constant 2-D B. XNNPACK packs
// the weights when an operator is created, so alpha and beta are folded into
// them then; the fused activation becomes the output clamp (Relu, Clip).
#include <optional>

#include "runtime/activation.h"
#include "runtime/xnnpack/ops.h"

namespace slimserve::runtime::xnnpack {
namespace {

// A constant's values times `factor`.
std::vector<float> Scaled(const Tensor& t, float factor) {
  std::vector<float> out(t.data<float>(), t.data<float>() + t.num_elements());
  for (float& v : out) v *= factor;
  return out;
}

// The per-column bias [n] that a constant addend broadcast to [rows, n]
// amounts to, times `factor`; nullopt when the addend varies along the rows.
std::optional<std::vector<float>> ColumnBias(const TensorDesc& addend, int64_t n, float factor) {
  if (addend.constant == nullptr) return std::nullopt;
  const Shape& s = addend.shape;
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    if (s[i] != 1) return std::nullopt;
  }
  const int64_t last = s.empty() ? 1 : s.back();
  if (last != 1 && last != n) return std::nullopt;
  const float* values = addend.constant->data<float>();
  std::vector<float> bias(n);
  for (int64_t j = 0; j < n; ++j) bias[j] = factor * values[last == 1 ? 0 : j];
  return bias;
}

// y[batch, n] = clamp(x[batch, k] * W + bias), W given as [n, k], or as
// [k, n] when `weights_kn`.
KernelOr FullyConnected(const OpContext& c, Operand x, int64_t batch, int64_t k, int64_t n,
                        std::vector<float> weights, bool weights_kn, std::vector<float> bias) {
  const Node& node = c.node();
  const auto clamp = ClampRange(node.domain == kFusedDomain ? FusedActivation(node) : Activation{});
  if (!clamp.has_value()) return nullptr;
  const float out_min = clamp->first, out_max = clamp->second;
  const uint32_t flags = weights_kn ? XNN_FLAG_TRANSPOSE_WEIGHTS : 0;
  auto create = [=, weights = std::move(weights), bias = std::move(bias)](xnn_operator_t* op) {
    return xnn_create_fully_connected_nc_f32(k, n, /*input_stride=*/k, /*output_stride=*/n,
                                             weights.data(), bias.empty() ? nullptr : bias.data(),
                                             out_min, out_max, flags, op);
  };
  auto setup = [=](xnn_operator_t op, const auto& in, float* out, pthreadpool_t pool) {
    return xnn_setup_fully_connected_nc_f32(op, batch, in[0], out, pool);
  };
  return OperatorKernel::Create(c.state, "fully_connected_nc_f32", std::move(create),
                                std::move(setup), {std::move(x)});
}

}  // namespace

KernelOr CompileGemm(const OpContext& c) {
  const Node& node = c.node();
  const TensorDesc& a = c.input(0);
  const TensorDesc& b = c.input(1);
  if (a.shape.size() != 2 || b.shape.size() != 2 || b.constant == nullptr) return nullptr;
  if (node.GetInt("transA", 0) != 0) return nullptr;  // XNNPACK reads A row by row
  const bool trans_b = node.GetInt("transB", 0) != 0;
  const float beta = node.GetFloat("beta", 1.0f);
  const int64_t k = a.shape[1], n = trans_b ? b.shape[0] : b.shape[1];
  std::vector<float> bias;
  if (c.has_input(2) && beta != 0.0f) {
    std::optional<std::vector<float>> column = ColumnBias(c.input(2), n, beta);
    if (!column.has_value()) return nullptr;
    bias = *std::move(column);
  }
  return FullyConnected(c, c.Read(0, a.shape, false), a.shape[0], k, n,
                        Scaled(*b.constant, node.GetFloat("alpha", 1.0f)), /*weights_kn=*/!trans_b,
                        std::move(bias));
}

KernelOr CompileMatMul(const OpContext& c) {
  const TensorDesc& a = c.input(0);
  const TensorDesc& b = c.input(1);
  if (a.shape.empty() || b.shape.size() != 2 || b.constant == nullptr) return nullptr;
  const int64_t k = b.shape[0], n = b.shape[1];
  if (a.shape.back() != k) return nullptr;
  std::vector<float> bias;
  if (c.node().domain == kFusedDomain && c.has_input(2)) {
    std::optional<std::vector<float>> column = ColumnBias(c.input(2), n, 1.0f);
    if (!column.has_value()) return nullptr;
    bias = *std::move(column);
  }
  // Leading dims of A are rows of one product; A is read row-major.
  return FullyConnected(c, c.Read(0, a.shape, false), NumElementsUnchecked(a.shape) / k, k, n,
                        Scaled(*b.constant, 1.0f), /*weights_kn=*/true, std::move(bias));
}

}  // namespace slimserve::runtime::xnnpack
