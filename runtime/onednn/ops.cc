// The lighter oneDNN ops: pooling, broadcasting binary ops, softmax, concat
// and normalizations. They read their inputs in whatever format the producer
// left them, so blocked activations flow through without reorders.
#include "runtime/onednn/common.h"
#include "runtime/onednn/ops.h"

namespace slimserve::runtime::onednn {
namespace {

using dnnl::memory;

int64_t NormalizedAxis(int64_t axis, size_t rank) { return axis < 0 ? axis + rank : axis; }

// Owned memory holding a constant, in the format `md` (from row-major).
dnnl::memory ConstantIn(const OpContext& c, const Tensor& value, const memory::desc& md) {
  return PackConstant(c.engine, value, RowMajorDesc(value.shape()), md);
}

}  // namespace

KernelOr CompilePool(const OpContext& c) {
  const Node& node = c.node();
  const TensorDesc& x = c.input(0);
  const Shape& y = c.output(0).shape;
  if (x.shape.size() < 3 || x.shape.size() > 5) return nullptr;
  if (node.outputs.size() > 1 && !node.outputs[1].empty()) return nullptr;  // MaxPool indices
  const size_t spatial = x.shape.size() - 2;
  const bool global = node.op_type.rfind("Global", 0) == 0;
  const bool max = node.op_type.find("Max") != std::string::npos;
  memory::dims kernel, strides, dilates, pad_l, pad_r;
  std::vector<int64_t> k = global ? std::vector<int64_t>(x.shape.begin() + 2, x.shape.end())
                                  : node.GetInts("kernel_shape");
  std::vector<int64_t> s = node.GetInts("strides", std::vector<int64_t>(spatial, 1));
  std::vector<int64_t> d = node.GetInts("dilations", std::vector<int64_t>(spatial, 1));
  std::vector<int64_t> pads = node.GetInts("pads", std::vector<int64_t>(2 * spatial, 0));
  if (global) s.assign(spatial, 1), d.assign(spatial, 1), pads.assign(2 * spatial, 0);
  if (k.size() != spatial || s.size() != spatial || d.size() != spatial || pads.size() != 2 * spatial) {
    return nullptr;
  }
  const std::string auto_pad = node.GetString("auto_pad", "NOTSET");
  const bool include_pad = node.GetInt("count_include_pad", 0) != 0;
  for (size_t i = 0; i < spatial; ++i) {
    const int64_t in = x.shape[2 + i], out = y[2 + i];
    int64_t l = pads[i], r = pads[i + spatial];
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      const int64_t total = std::max<int64_t>(0, (out - 1) * s[i] + (k[i] - 1) * d[i] + 1 - in);
      l = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      r = total - l;
    } else if (auto_pad == "VALID") {
      l = r = 0;
    }
    // ceil_mode windows reach past the padding: extend it, which only max
    // pooling and padding-excluding averages ignore.
    const int64_t needed = (out - 1) * s[i] + (k[i] - 1) * d[i] + 1 - in - l;
    if (needed > r) {
      if (!max && include_pad) return nullptr;
      r = needed;
    }
    kernel.push_back(k[i]);
    strides.push_back(s[i]);
    dilates.push_back(d[i] - 1);
    pad_l.push_back(l);
    pad_r.push_back(r);
  }
  const dnnl::algorithm algorithm =
      max ? dnnl::algorithm::pooling_max
          : (include_pad ? dnnl::algorithm::pooling_avg_include_padding
                         : dnnl::algorithm::pooling_avg_exclude_padding);
  const memory::desc src = ActualDesc(x);
  const memory::desc dst(ToDims(y), src.data_type(), memory::format_tag::any);
  dnnl::pooling_v2_forward::primitive_desc pd(
      dnnl::pooling_v2_forward::desc(dnnl::prop_kind::forward_inference, algorithm, src, dst,
                                     strides, kernel, dilates, pad_l, pad_r),
      ScratchpadAttr(), c.engine);
  auto result = std::make_unique<PrimitiveKernel>(c.engine, MakePrimitive<dnnl::pooling_v2_forward>(pd));
  result->BindInput(DNNL_ARG_SRC, 0, src, pd.src_desc());
  result->BindOutput(DNNL_ARG_DST, 0, pd.dst_desc());
  result->SetScratchpad(pd.scratchpad_desc());
  c.SetOutputFormat(0, pd.dst_desc());
  return result;
}

KernelOr CompileBinary(const OpContext& c) {
  static const std::map<std::string, std::pair<dnnl::algorithm, bool>> kOps = {
      {"Add", {dnnl::algorithm::binary_add, true}}, {"Sub", {dnnl::algorithm::binary_sub, false}},
      {"Mul", {dnnl::algorithm::binary_mul, true}}, {"Div", {dnnl::algorithm::binary_div, false}},
      {"Max", {dnnl::algorithm::binary_max, true}}, {"Min", {dnnl::algorithm::binary_min, true}}};
  if (c.request.inputs.size() != 2) return nullptr;
  const auto [algorithm, commutative] = kOps.at(c.node().op_type);
  const Shape& y = c.output(0).shape;
  if (y.empty()) return nullptr;
  int first = 0, second = 1;
  if (c.input(0).shape != y) {
    if (!commutative || c.input(1).shape != y) return nullptr;
    std::swap(first, second);
  }
  const TensorDesc& a = c.input(first);
  const TensorDesc& b = c.input(second);
  if (a.constant != nullptr) return nullptr;
  const memory::desc src0 = ActualDesc(a);
  // Same shape: read the second operand in the first one's format.
  // Broadcast: a row-major operand with the output's rank.
  memory::dims b_dims(y.size() - b.shape.size(), 1);
  b_dims.insert(b_dims.end(), b.shape.begin(), b.shape.end());
  const bool same = b.shape == y;
  if (!same && b.layout != nullptr) return nullptr;
  const memory::desc src1 = same ? src0 : RowMajorDesc(Shape(b_dims.begin(), b_dims.end()));
  dnnl::binary::primitive_desc pd(dnnl::binary::desc(algorithm, src0, src1, src0), ScratchpadAttr(),
                                  c.engine);
  auto kernel = std::make_unique<PrimitiveKernel>(c.engine, MakePrimitive<dnnl::binary>(pd));
  kernel->BindInput(DNNL_ARG_SRC_0, first, src0, pd.src0_desc());
  if (b.constant != nullptr) {
    kernel->BindOwned(DNNL_ARG_SRC_1, PackConstant(c.engine, *b.constant,
                                                   RowMajorDesc(Shape(b_dims.begin(), b_dims.end())),
                                                   pd.src1_desc()));
  } else {
    kernel->BindInput(DNNL_ARG_SRC_1, second, same ? ActualDesc(b) : src1, pd.src1_desc());
  }
  kernel->BindOutput(DNNL_ARG_DST, 0, pd.dst_desc());
  kernel->SetScratchpad(pd.scratchpad_desc());
  c.SetOutputFormat(0, pd.dst_desc());
  return kernel;
}

KernelOr CompileSoftmax(const OpContext& c) {
  const TensorDesc& x = c.input(0);
  const size_t rank = x.shape.size();
  if (rank == 0) return nullptr;
  memory::desc md = ActualDesc(x);
  int64_t axis = NormalizedAxis(c.node().GetInt("axis", c.request.opset >= 13 ? -1 : 1), rank);
  if (axis < 0 || axis >= static_cast<int64_t>(rank)) return nullptr;
  if (c.request.opset < 13 && axis != static_cast<int64_t>(rank) - 1) {
    // Before opset 13 the input is viewed as 2-D at `axis`.
    if (x.layout != nullptr) return nullptr;
    int64_t outer = 1;
    for (int64_t i = 0; i < axis; ++i) outer *= x.shape[i];
    md = RowMajorDesc({outer, NumElementsUnchecked(x.shape) / std::max<int64_t>(outer, 1)});
    axis = 1;
  }
  const auto kind = dnnl::prop_kind::forward_inference;
  std::unique_ptr<PrimitiveKernel> kernel;
  memory::desc dst;
  if (c.node().op_type == "Softmax") {
    dnnl::softmax_forward::primitive_desc pd(dnnl::softmax_forward::desc(kind, md, static_cast<int>(axis)),
                                             ScratchpadAttr(), c.engine);
    kernel = std::make_unique<PrimitiveKernel>(c.engine, MakePrimitive<dnnl::softmax_forward>(pd));
    kernel->SetScratchpad(pd.scratchpad_desc());
    dst = pd.dst_desc();
  } else {
    dnnl::logsoftmax_forward::primitive_desc pd(
        dnnl::logsoftmax_forward::desc(kind, md, static_cast<int>(axis)), ScratchpadAttr(), c.engine);
    kernel = std::make_unique<PrimitiveKernel>(c.engine, MakePrimitive<dnnl::logsoftmax_forward>(pd));
    kernel->SetScratchpad(pd.scratchpad_desc());
    dst = pd.dst_desc();
  }
  kernel->BindInput(DNNL_ARG_SRC, 0, md, md);
  kernel->BindOutput(DNNL_ARG_DST, 0, dst);
  if (md.dims().size() == rank) c.SetOutputFormat(0, dst);
  return kernel;
}

KernelOr CompileConcat(const OpContext& c) {
  const size_t rank = c.output(0).shape.size();
  const int64_t axis = NormalizedAxis(c.node().GetInt("axis", 0), rank);
  if (rank == 0 || c.request.inputs.size() < 2) return nullptr;
  std::vector<memory::desc> srcs;
  for (const TensorDesc& in : c.request.inputs) {
    if (in.constant != nullptr || NumElementsUnchecked(in.shape) == 0) return nullptr;
    srcs.push_back(ActualDesc(in));
  }
  const memory::desc dst(ToDims(c.output(0).shape), memory::data_type::f32, memory::format_tag::any);
  dnnl::concat::primitive_desc pd(dst, static_cast<int>(axis), srcs, c.engine, ScratchpadAttr());
  auto kernel = std::make_unique<PrimitiveKernel>(c.engine, MakePrimitive<dnnl::concat>(pd));
  for (size_t i = 0; i < srcs.size(); ++i) {
    kernel->BindInput(DNNL_ARG_MULTIPLE_SRC + static_cast<int>(i), static_cast<int>(i), srcs[i], srcs[i]);
  }
  kernel->BindOutput(DNNL_ARG_DST, 0, pd.dst_desc());
  kernel->SetScratchpad(pd.scratchpad_desc());
  c.SetOutputFormat(0, pd.dst_desc());
  return kernel;
}

KernelOr CompileLayerNorm(const OpContext& c) {
  const TensorDesc& x = c.input(0);
  const size_t rank = x.shape.size();
  if (rank < 2 || NormalizedAxis(c.node().GetInt("axis", -1), rank) != static_cast<int64_t>(rank) - 1) {
    return nullptr;
  }
  for (size_t k = 1; k < c.node().outputs.size(); ++k) {
    if (!c.node().outputs[k].empty()) return nullptr;  // Mean / InvStdDev outputs
  }
  if (c.input(1).constant == nullptr || (c.has_input(2) && c.input(2).constant == nullptr)) return nullptr;
  auto flags = dnnl::normalization_flags::use_scale;
  if (c.has_input(2)) flags |= dnnl::normalization_flags::use_shift;
  const memory::desc md = RowMajorDesc(x.shape);
  dnnl::layer_normalization_forward::primitive_desc pd(
      dnnl::layer_normalization_forward::desc(dnnl::prop_kind::forward_inference, md,
                                              c.node().GetFloat("epsilon", 1e-5f), flags),
      ScratchpadAttr(), c.engine);
  auto kernel =
      std::make_unique<PrimitiveKernel>(c.engine, MakePrimitive<dnnl::layer_normalization_forward>(pd));
  kernel->BindInput(DNNL_ARG_SRC, 0, ActualDesc(x), md);
  const memory::desc channel = RowMajorDesc({x.shape.back()});
  kernel->BindOwned(DNNL_ARG_SCALE, ConstantIn(c, c.input(1).constant->Reshaped({x.shape.back()}), channel));
  if (c.has_input(2)) {
    kernel->BindOwned(DNNL_ARG_SHIFT, ConstantIn(c, c.input(2).constant->Reshaped({x.shape.back()}), channel));
  }
  kernel->BindOutput(DNNL_ARG_DST, 0, pd.dst_desc());
  kernel->SetScratchpad(pd.scratchpad_desc());
  c.SetOutputFormat(0, pd.dst_desc());
  return kernel;
}

KernelOr CompileBatchNorm(const OpContext& c) {
  const TensorDesc& x = c.input(0);
  if (x.shape.size() < 2 || c.request.opset < 7) return nullptr;
  for (size_t k = 1; k < c.node().outputs.size(); ++k) {
    if (!c.node().outputs[k].empty()) return nullptr;
  }
  for (int i = 1; i <= 4; ++i) {
    if (c.input(i).constant == nullptr) return nullptr;
  }
  if (c.node().GetInt("training_mode", 0) != 0) return nullptr;
  const auto flags = dnnl::normalization_flags::use_global_stats |
                     dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
  const memory::desc src = ActualDesc(x);
  dnnl::batch_normalization_forward::primitive_desc pd(
      dnnl::batch_normalization_forward::desc(dnnl::prop_kind::forward_inference, src,
                                              c.node().GetFloat("epsilon", 1e-5f), flags),
      ScratchpadAttr(), c.engine);
  auto kernel =
      std::make_unique<PrimitiveKernel>(c.engine, MakePrimitive<dnnl::batch_normalization_forward>(pd));
  kernel->BindInput(DNNL_ARG_SRC, 0, src, pd.src_desc());
  const memory::desc channel = RowMajorDesc({x.shape[1]});
  const int args[] = {DNNL_ARG_SCALE, DNNL_ARG_SHIFT, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE};
  for (int i = 0; i < 4; ++i) {
    kernel->BindOwned(args[i], ConstantIn(c, c.input(i + 1).constant->Reshaped({x.shape[1]}), channel));
  }
  kernel->BindOutput(DNNL_ARG_DST, 0, pd.dst_desc());
  kernel->SetScratchpad(pd.scratchpad_desc());
  c.SetOutputFormat(0, pd.dst_desc());
  return kernel;
}

}  // namespace slimserve::runtime::onednn

namespace slimserve::runtime::onednn {

KernelOr CompileTranspose(const OpContext& c) {
  const TensorDesc& x = c.input(0);
  const size_t rank = x.shape.size();
  if (rank < 2 || rank > 6) return nullptr;
  std::vector<int64_t> perm = c.node().GetInts("perm");
  if (perm.empty()) {
    for (size_t i = 0; i < rank; ++i) perm.push_back(static_cast<int64_t>(rank - 1 - i));
  }
  // A reorder into the output's row-major memory, described in the input's
  // dimension order: input dim perm[j] advances by the output's stride j.
  const std::vector<int64_t> out_strides = Strides(c.output(0).shape);
  memory::dims strides(rank);
  for (size_t j = 0; j < rank; ++j) strides[perm[j]] = out_strides[j];
  const memory::desc src = ActualDesc(x);
  const memory::desc dst(ToDims(x.shape), memory::data_type::f32, strides);
  dnnl::reorder::primitive_desc pd(c.engine, src, c.engine, dst, ScratchpadAttr());
  auto kernel = std::make_unique<PrimitiveKernel>(c.engine, MakePrimitive<dnnl::reorder>(pd));
  kernel->BindInput(DNNL_ARG_FROM, 0, src, src);
  kernel->BindOutput(DNNL_ARG_TO, 0, dst);
  kernel->SetScratchpad(pd.scratchpad_desc());
  return kernel;
}

KernelOr CompileReduce(const OpContext& c) {
  static const std::map<std::string, dnnl::algorithm> kOps = {
      {"ReduceMean", dnnl::algorithm::reduction_mean},
      {"ReduceSum", dnnl::algorithm::reduction_sum},
      {"ReduceMax", dnnl::algorithm::reduction_max},
      {"ReduceMin", dnnl::algorithm::reduction_min}};
  const Node& node = c.node();
  const TensorDesc& x = c.input(0);
  const size_t rank = x.shape.size();
  if (rank == 0 || rank > 6) return nullptr;
  std::vector<int64_t> axes = node.GetInts("axes");
  if (node.op_type == "ReduceSum" && c.request.opset >= 13) {
    if (c.has_input(1) && c.input(1).constant == nullptr) return nullptr;
    axes = c.has_input(1) ? c.input(1).constant->ToInt64Vector() : std::vector<int64_t>{};
  }
  if (axes.empty() && node.GetInt("noop_with_empty_axes", 0) != 0) return nullptr;
  Shape kept = x.shape;
  for (size_t d = 0; d < rank; ++d) {
    const bool reduced = axes.empty() || std::find(axes.begin(), axes.end(), d) != axes.end() ||
                         std::find(axes.begin(), axes.end(), static_cast<int64_t>(d) - static_cast<int64_t>(rank)) != axes.end();
    if (reduced) kept[d] = 1;
  }
  // keepdims=0 drops the ones: the same memory, so the output reads as is.
  const memory::desc src = ActualDesc(x);
  const memory::desc dst = RowMajorDesc(kept);
  dnnl::reduction::primitive_desc pd(dnnl::reduction::desc(kOps.at(node.op_type), src, dst, 0.f, 0.f),
                                     ScratchpadAttr(), c.engine);
  if (IsReferenceImpl(pd)) return nullptr;
  auto kernel = std::make_unique<PrimitiveKernel>(c.engine, MakePrimitive<dnnl::reduction>(pd));
  kernel->BindInput(DNNL_ARG_SRC, 0, src, pd.src_desc());
  kernel->BindOutput(DNNL_ARG_DST, 0, dst);
  kernel->SetScratchpad(pd.scratchpad_desc());
  return kernel;
}

}  // namespace slimserve::runtime::onednn

namespace slimserve::runtime::onednn {

// Resize where oneDNN's resampling computes the same thing: nearest with
// whole-number scale factors, and linear with half-pixel centers.
KernelOr CompileResize(const OpContext& c) {
  const Node& node = c.node();
  const TensorDesc& x = c.input(0);
  const Shape& y = c.output(0).shape;
  if (c.request.opset < 11 || x.shape.size() < 3 || x.shape.size() > 5) return nullptr;
  if (x.shape[0] != y[0] || x.shape[1] != y[1]) return nullptr;
  // oneDNN maps coordinates with out/in; ONNX with the given scales, which
  // may differ from out/in after flooring.
  if (c.has_input(2) && c.input(2).constant != nullptr && c.input(2).constant->num_elements() > 0) {
    const Tensor& scales = *c.input(2).constant;
    if (scales.num_elements() != static_cast<int64_t>(y.size())) return nullptr;
    for (size_t d = 0; d < y.size(); ++d) {
      if (scales.GetDouble(d) * x.shape[d] != static_cast<double>(y[d])) return nullptr;
    }
  }
  const std::string mode = node.GetString("mode", "nearest");
  const std::string transform = node.GetString("coordinate_transformation_mode", "half_pixel");
  dnnl::algorithm algorithm;
  if (mode == "nearest") {
    // With whole-number factors F, oneDNN takes source pixel floor(dst / F),
    // which is what ONNX computes for these two combinations only.
    const std::string rounding = node.GetString("nearest_mode", "round_prefer_floor");
    const bool half_pixel = transform == "half_pixel" || transform == "pytorch_half_pixel";
    if (!(transform == "asymmetric" && rounding == "floor") &&
        !(half_pixel && rounding.rfind("round_prefer_", 0) == 0)) {
      return nullptr;
    }
    for (size_t d = 2; d < y.size(); ++d) {
      if (x.shape[d] == 0 || y[d] % x.shape[d] != 0) return nullptr;
    }
    algorithm = dnnl::algorithm::resampling_nearest;
  } else if (mode == "linear" && transform == "half_pixel") {
    algorithm = dnnl::algorithm::resampling_linear;
  } else {
    return nullptr;
  }
  const memory::desc src = ActualDesc(x);
  const memory::desc dst(ToDims(y), memory::data_type::f32, memory::format_tag::any);
  dnnl::resampling_forward::primitive_desc pd(
      dnnl::resampling_forward::desc(dnnl::prop_kind::forward_inference, algorithm, src, dst),
      ScratchpadAttr(), c.engine);
  auto kernel = std::make_unique<PrimitiveKernel>(c.engine, MakePrimitive<dnnl::resampling_forward>(pd));
  kernel->BindInput(DNNL_ARG_SRC, 0, src, pd.src_desc());
  kernel->BindOutput(DNNL_ARG_DST, 0, pd.dst_desc());
  kernel->SetScratchpad(pd.scratchpad_desc());
  c.SetOutputFormat(0, pd.dst_desc());
  return kernel;
}

}  // namespace slimserve::runtime::onednn
