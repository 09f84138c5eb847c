// int8 kernels on oneDNN: the int8 fused ops (QFusedConv, QFusedGemm,
// QFusedMatMul; see reference/quantized_fused_ops.cc) as u8/s8 x s8
// products with s32 accumulation, and QuantizeLinear / DequantizeLinear as
// reorders that keep the producer's memory format.
//
// An int8 product computes, per output channel k,
//   acc = sum((x - x_zero_point) * w)          (s32; oneDNN's src zero point)
//   y   = (acc + bias[k] / s[k]) * s[k]         s[k] = x_scale * w_scale[k]
// then the post-ops: the residual sum (an int8 addend dequantized by its
// scale and zero point), the activation and, for an int8
// output, the requantization y / y_scale + y_zero_point as a linear eltwise,
// rounded to nearest even and saturated on the store. Consecutive int8 ops
// thus pass u8 tensors in oneDNN's blocked formats, with no float between.
// Scales and zero points are constants (static quantization), or for matrix
// products also values computed per request (dynamic quantization).
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/activation.h"
#include "runtime/onednn/common.h"
#include "runtime/onednn/ops.h"
#include "runtime/reference/winograd_int8.h"
#include "runtime/status_macros.h"

namespace slimserve::runtime::onednn {
namespace {

using dnnl::memory;

struct Quantization {
  float scale = 1;
  int32_t zero_point = 0;
};

// A per-tensor scale and optional zero point, when both are constant.
std::optional<Quantization> ConstantQuantization(const TensorDesc& scale, const TensorDesc& zero) {
  if (scale.constant == nullptr || scale.constant->num_elements() != 1) return std::nullopt;
  if (scale.dtype != DataType::kFloat32 || !(scale.constant->data<float>()[0] > 0)) return std::nullopt;
  if (zero.defined() && (zero.constant == nullptr || zero.constant->num_elements() != 1)) return std::nullopt;
  return Quantization{scale.constant->data<float>()[0],
                      zero.defined() ? static_cast<int32_t>(zero.constant->GetInt(0)) : 0};
}

// A one-element s32 memory holding a zero point, bound at run time.
memory ZeroPointMemory(const dnnl::engine& engine, int32_t value) {
  memory m(memory::desc({1}, memory::data_type::s32, memory::format_tag::a), engine);
  *static_cast<int32_t*>(m.get_data_handle()) = value;
  return m;
}

// Everything an int8 product needs besides its shapes.
struct Product {
  std::vector<float> scales;  // per output channel, or one
  Tensor bias;                // float, divided by the scales; undefined if none
  dnnl::primitive_attr attr;
  int32_t src_zero_point = 0;
  // Dynamic quantization: the input's scale and zero point arrive with each
  // request, so the output scales are w_scale * factor times it, the bias
  // (unscaled) is a binary post-op, and the zero point is read per run.
  bool dynamic = false;
  Tensor post_op_bias;
};

// True for a scale and optional zero point that are one value each, known
// only at run time (DynamicQuantizeLinear's outputs).
bool IsRuntimeQuantization(const TensorDesc& scale, const TensorDesc& zero) {
  if (scale.constant != nullptr || scale.dtype != DataType::kFloat32 ||
      NumElementsUnchecked(scale.shape) != 1) {
    return false;
  }
  return !zero.defined() || ((zero.dtype == DataType::kUint8 || zero.dtype == DataType::kInt8) &&
                             NumElementsUnchecked(zero.shape) == 1);
}

// The product's scales, bias and attribute; nullopt when oneDNN cannot
// express the node's activation. `factor` multiplies the product (Gemm's
// alpha), `bias_factor` the bias (Gemm's beta).
absl::StatusOr<std::optional<Product>> MakeProduct(const OpContext& c, int64_t channels, float factor,
                                                   float bias_factor, bool sum) {
  const Node& node = c.node();
  std::optional<Quantization> x = ConstantQuantization(c.input(1), c.input(2));
  const TensorDesc& w_scale = c.input(4);
  const bool dynamic = !x.has_value() && IsRuntimeQuantization(c.input(1), c.input(2));
  if ((!x.has_value() && !dynamic) || w_scale.constant == nullptr || w_scale.dtype != DataType::kFloat32) {
    return std::nullopt;
  }
  const int64_t n = w_scale.constant->num_elements();
  if (n != 1 && n != channels) return std::nullopt;
  Product p;
  p.dynamic = dynamic;
  if (dynamic) x = Quantization{1.0f, 0};  // the scales below are factors of the run's scale
  p.src_zero_point = x->zero_point;
  for (int64_t k = 0; k < n; ++k) p.scales.push_back(x->scale * w_scale.constant->data<float>()[k] * factor);
  if (c.has_input(5)) {
    const TensorDesc& b = c.input(5);
    if (b.constant == nullptr || b.dtype != DataType::kFloat32 || b.constant->num_elements() != channels) {
      return std::nullopt;
    }
    ASSIGN_OR_RETURN(Tensor bias, Tensor::Allocate(DataType::kFloat32, {channels}));
    for (int64_t k = 0; k < channels; ++k) {
      const float s = dynamic ? 1.0f : p.scales[n == 1 ? 0 : k];
      bias.data<float>()[k] = s != 0 ? b.constant->data<float>()[k] * bias_factor / s : 0.0f;
    }
    (dynamic ? p.post_op_bias : p.bias) = bias;
  }
  dnnl::post_ops post_ops;
  if (p.post_op_bias.defined()) {
    post_ops.append_binary(dnnl::algorithm::binary_add,
                           memory::desc({1, channels}, memory::data_type::f32, memory::format_tag::ab));
  }
  // An int8 addend joins in its own scale and zero point (float: 1 and 0).
  if (sum) {
    post_ops.append_sum(node.GetFloat("sum_scale", 1.0f),
                        static_cast<int32_t>(node.GetInt("sum_zero_point", 0)));
  }
  float requantize_scale = 1, requantize_shift = 0;
  if (node.Has("y_scale")) {
    const float y_scale = node.GetFloat("y_scale", 1.0f);
    if (!(y_scale > 0)) return std::nullopt;
    requantize_scale = 1.0f / y_scale;
    requantize_shift = static_cast<float>(node.GetInt("y_zero_point", 0));
  }
  // Relu(s * v) = s * Relu(v) for s > 0: without an int8 addend (whose scale
  // is in the output's units) the requantization scale joins the output
  // scales, which saves a post-op and is what int8 Winograd accepts.
  const Activation activation = FusedActivation(node);
  const bool homogeneous =
      (activation.kind == Activation::Kind::kNone || activation.kind == Activation::Kind::kRelu) &&
      !activation.HasAffine() && !sum && !dynamic;
  if (homogeneous && requantize_scale != 1) {
    for (float& scale : p.scales) scale *= requantize_scale;  // the bias, in accumulator units, stays
    requantize_scale = 1;
  }
  if (!AppendActivation(node, post_ops, requantize_scale, requantize_shift)) return std::nullopt;
  p.attr = ScratchpadAttr(post_ops);
  const int mask = n == 1 ? 0 : 1 << 1;
  p.attr.set_output_scales(mask, dynamic ? std::vector<float>{DNNL_RUNTIME_F32_VAL} : p.scales);
  if (p.src_zero_point != 0 || (dynamic && c.has_input(2))) {
    p.attr.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});
  }
  return p;
}

// Binds what every int8 product owns: weights, scaled bias, zero point.
void BindProduct(const OpContext& c, const Product& p, const memory::desc& weights_plain,
                 const memory::desc& weights, const memory::desc& bias_plain, const memory::desc& bias,
                 PrimitiveKernel& kernel) {
  kernel.BindOwned(DNNL_ARG_WEIGHTS, PackConstant(c.engine, *c.input(3).constant, weights_plain, weights));
  if (p.bias.defined()) kernel.BindOwned(DNNL_ARG_BIAS, PackConstant(c.engine, p.bias, bias_plain, bias));
  if (p.src_zero_point != 0) {
    kernel.BindOwned(DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC, ZeroPointMemory(c.engine, p.src_zero_point));
  }
  if (!p.dynamic) return;
  kernel.BindRuntimeScales(DNNL_ARG_ATTR_OUTPUT_SCALES, 1, p.scales);
  if (c.has_input(2)) kernel.BindRuntimeZeroPoint(DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC, 2);
  if (p.post_op_bias.defined()) {
    const memory::desc md({1, p.post_op_bias.num_elements()}, memory::data_type::f32, memory::format_tag::ab);
    kernel.BindOwned(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1,
                     PackConstant(c.engine, p.post_op_bias, md, md));
  }
}

memory::desc Strided(const memory::dims& dims, memory::data_type type, const memory::dims& strides) {
  return memory::desc(dims, type, strides);
}

// A 3x3 stride-1 QFusedConv by reference::WinogradInt8Conv, writing a
// channels-last (nhwc) output and reading x and the addend that way
// (reordered first if they are not); nullptr where that does not apply:
// another output layout, fewer than 16 input channels, output channels not
// a multiple of 16, activations other than ReLU. For nodes MakeProduct took
// as static quantization, whose scales, bias and y_scale it checked.
class WinogradInt8Kernel final : public Kernel {
 public:
  static std::unique_ptr<WinogradInt8Kernel> Make(const OpContext& c, const ConvGeometry& g,
                                                 const memory::desc& dst) {
    const Node& node = c.node();
    const TensorDesc& x = c.input(0);
    const TensorDesc& w = c.input(3);
    const TensorDesc& w_scale = c.input(4);
    const Shape& y = c.output(0).shape;
    if (!reference::WinogradInt8Available() || !c.options.winograd || x.shape.size() != 4) return nullptr;
    if (node.GetInt("group", 1) != 1 || w.dtype != DataType::kInt8 || w.shape[2] != 3 || w.shape[3] != 3) {
      return nullptr;
    }
    if (g.strides != memory::dims{1, 1} || g.dilates != memory::dims{0, 0}) return nullptr;
    const int64_t oc = w.shape[0], ic = w.shape[1];
    if (oc % 16 != 0 || ic < 16 || (x.dtype != DataType::kUint8 && x.dtype != DataType::kInt8)) return nullptr;
    auto nhwc = [](const Shape& shape, DataType type) {
      return memory::desc(ToDims(shape), DnnlType(type), memory::format_tag::nhwc);
    };
    const DataType out = c.output(0).dtype;
    if (dst != nhwc(y, out)) return nullptr;
    const Activation activation = FusedActivation(node);
    if (activation.HasAffine() ||
        (activation.kind != Activation::Kind::kNone && activation.kind != Activation::Kind::kRelu)) {
      return nullptr;
    }
    const std::optional<Quantization> xq = ConstantQuantization(c.input(1), c.input(2));
    if (!xq.has_value()) return nullptr;
    const int64_t scales = w_scale.constant->num_elements();  // 1 or oc

    auto kernel = std::unique_ptr<WinogradInt8Kernel>(new WinogradInt8Kernel);
    kernel->weights_ = reference::WinogradInt8Weights::FromDense(w.constant->data<int8_t>(), oc, ic);
    for (int64_t k = 0; k < oc; ++k) {
      kernel->scale_.push_back(xq->scale * w_scale.constant->data<float>()[scales == 1 ? 0 : k]);
    }
    if (c.has_input(5)) {
      const float* b = c.input(5).constant->data<float>();
      kernel->bias_.assign(b, b + oc);
    }
    reference::WinogradInt8Epilogue& e = kernel->epilogue_;
    e.relu = activation.kind == Activation::Kind::kRelu;
    e.y_type = out == DataType::kUint8  ? reference::Int8ConvType::kUint8
               : out == DataType::kInt8 ? reference::Int8ConvType::kInt8
                                        : reference::Int8ConvType::kFloat32;
    e.y_scale = node.GetFloat("y_scale", 1.0f);
    e.y_zero_point = static_cast<int32_t>(node.GetInt("y_zero_point", 0));
    e.addend_scale = node.GetFloat("sum_scale", 1.0f);
    e.addend_zero_point = static_cast<int32_t>(node.GetInt("sum_zero_point", 0));
    kernel->inputs_.Bind(c, 0, nhwc(x.shape, x.dtype));
    if (c.has_input(6)) kernel->inputs_.Bind(c, 6, dst);
    kernel->x_signed_ = x.dtype == DataType::kInt8;
    kernel->x_zero_point_ = xq->zero_point;
    kernel->threads_ = c.request.num_threads;
    kernel->geometry_ = {x.shape[0], x.shape[2], x.shape[3], y[2], y[3], g.pad_l[0], g.pad_l[1]};
    return kernel;
  }

  absl::Status Run(const KernelArgs& args) const override {
    ASSIGN_OR_RETURN(const std::vector<const void*> data, inputs_.Data(args));  // x, addend
    reference::WinogradInt8Epilogue e = epilogue_;
    e.scale = scale_.data();
    e.bias = bias_.empty() ? nullptr : bias_.data();
    if (data.size() > 1) e.addend = data[1];
    reference::WinogradInt8Conv(weights_, data[0], x_signed_, x_zero_point_, geometry_, e, args.outputs[0].raw_data(),
                                static_cast<char*>(args.scratch) + inputs_.scratch_bytes(), threads_);
    return absl::OkStatus();
  }
  size_t scratch_bytes() const override {
    return inputs_.scratch_bytes() + reference::WinogradInt8ScratchBytes(weights_, geometry_, threads_);
  }

 private:
  WinogradInt8Kernel() = default;

  reference::WinogradInt8Weights weights_;
  std::vector<float> scale_, bias_;
  reference::WinogradInt8Epilogue epilogue_;
  reference::WinogradInt8Geometry geometry_;
  ReorderedInputs inputs_;
  bool x_signed_ = false;
  int32_t x_zero_point_ = 0;
  int threads_ = 1;
};

}  // namespace

KernelOr CompileQuantizedConv(const OpContext& c) {
  const Node& node = c.node();
  const TensorDesc& x = c.input(0);
  const TensorDesc& w = c.input(3);
  const bool has_sum = c.has_input(6);
  const DataType out = c.output(0).dtype;
  const Shape& y = c.output(0).shape;
  if (w.constant == nullptr || x.shape.size() < 3 || x.shape.size() > 5 || w.shape.size() != x.shape.size()) {
    return nullptr;
  }
  // The sum post-op accumulates into a destination of the same shape and
  // type: float, or int8 with the addend's scale (attribute sum_scale).
  if (has_sum && (c.input(6).dtype != out || c.input(6).shape != y)) return nullptr;
  if (has_sum && (out == DataType::kFloat32) == node.Has("sum_scale")) return nullptr;
  const int64_t group = node.GetInt("group", 1);
  const int64_t oc = w.shape[0];
  ASSIGN_OR_RETURN(ConvGeometry g, Geometry(node, x.shape, w.shape));
  ASSIGN_OR_RETURN(std::optional<Product> p, MakeProduct(c, oc, 1.0f, 1.0f, has_sum));
  if (!p.has_value() || p->dynamic) return nullptr;

  memory::dims weight_dims = ToDims(w.shape);
  if (group > 1) {
    weight_dims[0] = oc / group;
    weight_dims.insert(weight_dims.begin(), group);
  }
  const auto any = memory::format_tag::any;
  const memory::desc weight_plain =
      RowMajorDesc(Shape(weight_dims.begin(), weight_dims.end()), memory::data_type::s8);
  const memory::desc src_any(ToDims(x.shape), DnnlType(x.dtype), any);
  const memory::desc weight_any(weight_dims, memory::data_type::s8, any);
  const memory::desc bias_md({oc}, memory::data_type::f32, memory::format_tag::a);
  const memory::desc dst_any =
      FewChannels(y) ? RowMajorDesc(y, DnnlType(out)) : memory::desc(ToDims(y), DnnlType(out), any);
  const auto kind = dnnl::prop_kind::forward_inference;
  const auto direct = dnnl::algorithm::convolution_direct;
  const dnnl::convolution_forward::desc desc =
      p->bias.defined() ? dnnl::convolution_forward::desc(kind, direct, src_any, weight_any, bias_md, dst_any,
                                                          g.strides, g.dilates, g.pad_l, g.pad_r)
                        : dnnl::convolution_forward::desc(kind, direct, src_any, weight_any, dst_any,
                                                          g.strides, g.dilates, g.pad_l, g.pad_r);
  dnnl::convolution_forward::primitive_desc pd(desc, p->attr, c.engine);
  auto kernel = std::make_unique<PrimitiveKernel>(c.engine, MakePrimitive<dnnl::convolution_forward>(pd));
  kernel->BindInput(DNNL_ARG_SRC, 0, ActualDesc(x), pd.src_desc());
  BindProduct(c, *p, weight_plain, pd.weights_desc(), bias_md, pd.bias_desc(), *kernel);
  if (has_sum) {
    kernel->CopyInputToOutputFirst(6, ActualDesc(c.input(6)), 0, pd.dst_desc());
    if (ActualDesc(c.input(6)) == pd.dst_desc()) kernel->set_inplace_input(6);
  }
  kernel->BindOutput(DNNL_ARG_DST, 0, pd.dst_desc());
  kernel->SetScratchpad(pd.scratchpad_desc());
  c.SetOutputFormat(0, pd.dst_desc());
  // Winograd, where it applies, is kept when it measures faster than direct
  // convolution and its outputs agree (exact sums; one step of rounding).
  // The first plan variant built times it; the others, which differ only in
  // fp32 convolutions, take its choice (CompileRequest::choices).
  if (!c.request.measure) return kernel;
  const std::string key = absl::StrCat("int8 Winograd for ", node.outputs[0]);
  std::optional<KernelChoice> choice;
  if (c.request.choices != nullptr && c.request.choices->contains(key)) choice = c.request.choices->at(key);
  std::unique_ptr<WinogradInt8Kernel> winograd;
  if (!choice.has_value() || choice->alternative) {
    winograd = WinogradInt8Kernel::Make(c, g, pd.dst_desc());
    if (winograd == nullptr) return kernel;
  }
  if (!choice.has_value()) {
    std::vector<float> direct_result, winograd_result;
    const std::vector<TensorDesc> outs = OutputsIn(c, pd.dst_desc());
    ASSIGN_OR_RETURN(const double direct_ms,
                     TimeKernel(c.engine, *kernel, c.request.inputs, outs, 3, &direct_result));
    ASSIGN_OR_RETURN(const double winograd_ms,
                     TimeKernel(c.engine, *winograd, c.request.inputs, outs, 3, &winograd_result));
    const Disagreement d = Compare(winograd_result, direct_result);
    const bool agree = d.worst <= (out == DataType::kFloat32 ? 1e-4 * d.largest : 1.0);
    const std::string measured = absl::StrFormat("int8 Winograd F(4x4,3x3) %.3f ms, direct %.3f ms%s",
                                                 winograd_ms, direct_ms, agree ? "" : " (results differ)");
    const bool faster = agree && winograd_ms < direct_ms;
    choice = KernelChoice{faster, faster ? measured : absl::StrCat("direct: ", measured)};
    if (c.request.choices != nullptr) (*c.request.choices)[key] = *choice;
  }
  if (choice->alternative) {
    winograd->set_description(choice->description);
    return winograd;
  }
  kernel->set_description(choice->description);
  return kernel;
}

// QFusedGemm (transA 0) and QFusedMatMul with 2-D constant weights, as one
// [rows, K] x [K, N] product over the input's leading dimensions.
KernelOr CompileQuantizedMatMul(const OpContext& c) {
  const Node& node = c.node();
  const TensorDesc& a = c.input(0);
  const TensorDesc& b = c.input(3);
  const DataType out = c.output(0).dtype;
  const Shape& y = c.output(0).shape;
  const bool gemm = node.op_type == "QFusedGemm";
  if (b.constant == nullptr || b.shape.size() != 2 || a.shape.size() < 2 || a.layout != nullptr)
    return nullptr;
  if (gemm && (node.GetInt("transA", 0) != 0 || a.shape.size() != 2)) return nullptr;
  const bool trans_b = gemm && node.GetInt("transB", 0) != 0;
  const int64_t k = trans_b ? b.shape[1] : b.shape[0];
  const int64_t n = trans_b ? b.shape[0] : b.shape[1];
  if (a.shape.back() != k || y.back() != n) return nullptr;
  const int64_t rows = NumElementsUnchecked(a.shape) / std::max<int64_t>(k, 1);
  const float alpha = gemm ? node.GetFloat("alpha", 1.0f) : 1.0f;
  const float beta = gemm ? node.GetFloat("beta", 1.0f) : 1.0f;
  ASSIGN_OR_RETURN(std::optional<Product> p, MakeProduct(c, n, alpha, beta, false));
  if (!p.has_value()) return nullptr;

  const auto s8 = memory::data_type::s8;
  const memory::desc src = RowMajorDesc({rows, k}, DnnlType(a.dtype));
  const memory::desc weight_plain = trans_b ? Strided({k, n}, s8, {1, k}) : Strided({k, n}, s8, {n, 1});
  const memory::desc weight_any({k, n}, s8, memory::format_tag::any);
  const memory::desc bias_md = RowMajorDesc({1, n});
  const memory::desc dst = RowMajorDesc({rows, n}, DnnlType(out));
  const dnnl::matmul::desc desc = p->bias.defined() ? dnnl::matmul::desc(src, weight_any, bias_md, dst)
                                                    : dnnl::matmul::desc(src, weight_any, dst);
  dnnl::matmul::primitive_desc pd(desc, p->attr, c.engine);
  auto kernel = std::make_unique<PrimitiveKernel>(c.engine, MakePrimitive<dnnl::matmul>(pd));
  kernel->BindInput(DNNL_ARG_SRC, 0, src, pd.src_desc());
  BindProduct(c, *p, weight_plain, pd.weights_desc(), bias_md, pd.bias_desc(), *kernel);
  kernel->BindOutput(DNNL_ARG_DST, 0, pd.dst_desc());
  kernel->SetScratchpad(pd.scratchpad_desc());
  c.SetOutputFormat(0, RowMajorDesc(y, DnnlType(out)));
  return kernel;
}

namespace {

// QuantizeLinear (`to_int8`) or DequantizeLinear with a per-tensor constant
// scale and zero point: one reorder, in the input's own memory format.
KernelOr CompileQdq(const OpContext& c, bool to_int8) {
  const std::optional<Quantization> q = ConstantQuantization(c.input(1), c.input(2));
  if (!q.has_value()) return nullptr;
  const memory::desc src = ActualDesc(c.input(0));
  const memory::desc dst = WithType(src, DnnlType(c.output(0).dtype));
  dnnl::primitive_attr attr = ScratchpadAttr();
  attr.set_output_scales(0, {to_int8 ? 1.0f / q->scale : q->scale});
  const int zero_arg = to_int8 ? DNNL_ARG_DST : DNNL_ARG_SRC;
  if (q->zero_point != 0) attr.set_zero_points(zero_arg, 0, {DNNL_RUNTIME_S32_VAL});
  dnnl::reorder::primitive_desc pd(c.engine, src, c.engine, dst, attr);
  auto kernel = std::make_unique<PrimitiveKernel>(c.engine, MakePrimitive<dnnl::reorder>(pd));
  kernel->BindInput(DNNL_ARG_FROM, 0, src, src);
  if (q->zero_point != 0) {
    kernel->BindOwned(DNNL_ARG_ATTR_ZERO_POINTS | zero_arg, ZeroPointMemory(c.engine, q->zero_point));
  }
  kernel->BindOutput(DNNL_ARG_TO, 0, dst);
  kernel->SetScratchpad(pd.scratchpad_desc());
  c.SetOutputFormat(0, dst);
  return kernel;
}

}  // namespace

KernelOr CompileQuantize(const OpContext& c) { return CompileQdq(c, true); }
KernelOr CompileDequantize(const OpContext& c) { return CompileQdq(c, false); }

}  // namespace slimserve::runtime::onednn
