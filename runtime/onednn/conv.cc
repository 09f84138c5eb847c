// Convolution on oneDNN: Conv and FusedConv (with an activation and an
// optional residual addend as post-ops). For 3x3 stride-1 convolutions both
// direct and Winograd algorithms are built and the faster one is kept, if it
// matches the direct result. 1x1 convolutions whose weights are mostly zero
// also try slimserve's own sparse kernel (runtime/reference/sparse.h), kept
// where it is clearly faster than oneDNN's dense one.
#include <cmath>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/activation.h"
#include "runtime/onednn/common.h"
#include "runtime/onednn/ops.h"
#include "runtime/reference/sparse.h"
#include "runtime/status_macros.h"

namespace slimserve::runtime::onednn {
namespace {

using dnnl::memory;

// Largest relative difference from direct convolution accepted for Winograd
// and the sparse kernel.
constexpr double kWinogradTolerance = 1e-4;
// The sparse kernel is tried on weights with at most this share not zero,
// and kept when it takes at most kSparseMargin of the dense kernel's time
// (its row-major output may cost the next layer a reorder).
constexpr double kMaxSparseDensity = 0.5;
constexpr double kSparseMargin = 0.8;

dnnl::memory::desc ChannelsLast(const Shape& shape) {
  return dnnl::memory::desc(ToDims(shape), dnnl::memory::data_type::f32, dnnl::memory::format_tag::nhwc);
}
dnnl::memory::desc Blocked16(const Shape& shape) {
  return dnnl::memory::desc(ToDims(shape), dnnl::memory::data_type::f32, dnnl::memory::format_tag::nChw16c);
}

// `md` as a layout the sparse kernel reads and writes, if it is one.
std::optional<reference::SparseLayout> SparseLayoutOf(const dnnl::memory::desc& md, const Shape& shape) {
  using L = reference::SparseLayout;
  if (md == RowMajorDesc(shape)) return L::kRowMajor;
  if (!reference::SparseChannelGroups()) return std::nullopt;
  if (md == Blocked16(shape)) return L::kBlocked16;
  if (md == ChannelsLast(shape)) return L::kChannelsLast;
  return std::nullopt;
}

// A 1x1 convolution on mostly-zero weights (reference/sparse.h) writing y,
// and reading a residual addend, in `dst` (one of SparseLayoutOf's); an x
// or addend in another layout is reordered into scratch first.
class SparseConvKernel final : public Kernel {
 public:
  SparseConvKernel(const OpContext& c, reference::SparseRows weights, Activation activation,
                   const dnnl::memory::desc& dst, reference::SparseLayout y_layout)
      : weights_(std::move(weights)),
        activation_(activation),
        threads_(c.request.num_threads),
        y_layout_(y_layout) {
    if (c.has_input(2)) bias_.assign(c.input(2).constant->data<float>(), c.input(2).constant->data<float>() + weights_.rows);
    const Shape& x = c.input(0).shape;
    batch_ = x[0];
    spatial_ = x[2] * x[3];
    const std::optional<reference::SparseLayout> x_layout = SparseLayoutOf(ActualDesc(c.input(0)), x);
    x_layout_ = x_layout.value_or(reference::SparseLayout::kRowMajor);
    inputs_.Bind(c, 0, x_layout.has_value() ? ActualDesc(c.input(0)) : RowMajorDesc(x));
    if (c.has_input(3)) inputs_.Bind(c, 3, dst);
    if (x_layout_ != reference::SparseLayout::kRowMajor) {  // x made row-major per image
      rows_bytes_ = weights_.cols * spatial_ * static_cast<int64_t>(sizeof(float));
    }
  }

  absl::Status Run(const KernelArgs& args) const override {
    ASSIGN_OR_RETURN(const std::vector<const void*> data, inputs_.Data(args));  // x, addend
    char* rows = static_cast<char*>(args.scratch) + inputs_.scratch_bytes();
    reference::SparseConv1x1(weights_, bias_.empty() ? nullptr : bias_.data(),
                             data.size() > 1 ? static_cast<const float*>(data[1]) : nullptr, activation_,
                             static_cast<const float*>(data[0]), x_layout_, args.outputs[0].data<float>(), y_layout_,
                             batch_, spatial_, reinterpret_cast<float*>(rows), threads_);
    return absl::OkStatus();
  }
  size_t scratch_bytes() const override { return static_cast<size_t>(inputs_.scratch_bytes() + rows_bytes_); }

 private:
  reference::SparseRows weights_;
  std::vector<float> bias_;
  Activation activation_;
  int threads_;
  reference::SparseLayout x_layout_ = reference::SparseLayout::kRowMajor, y_layout_;
  int64_t batch_ = 0, spatial_ = 0, rows_bytes_ = 0;
  ReorderedInputs inputs_;
};

struct Candidate {
  dnnl::convolution_forward::primitive_desc pd;
  std::unique_ptr<PrimitiveKernel> kernel;
};

// Largest |x - reference| relative to the largest |reference|.
double Difference(const std::vector<float>& x, const std::vector<float>& reference) {
  const Disagreement d = Compare(x, reference);
  return d.worst / std::max(d.largest, 1e-30);
}

}  // namespace

Disagreement Compare(const std::vector<float>& x, const std::vector<float>& reference) {
  Disagreement d;
  for (size_t k = 0; k < reference.size() && k < x.size(); ++k) {
    d.largest = std::max<double>(d.largest, std::fabs(reference[k]));
    d.worst = std::max<double>(d.worst, std::fabs(x[k] - reference[k]));
  }
  return d;
}

std::vector<TensorDesc> OutputsIn(const OpContext& c, const dnnl::memory::desc& md) {
  std::vector<TensorDesc> outs(c.request.outputs.begin(), c.request.outputs.end());
  outs[0].layout = LayoutFor(c.backend, md, outs[0].shape);
  outs[0].bytes = static_cast<int64_t>(md.get_size());
  return outs;
}

void ReorderedInputs::Bind(const OpContext& c, int index, const dnnl::memory::desc& wanted) {
  engine_ = c.engine;
  Input in{index, ActualDesc(c.input(index)), wanted};
  if (in.actual != in.wanted) {
    in.reorder = std::make_shared<dnnl::reorder>(dnnl::reorder::primitive_desc(engine_, in.actual, engine_, wanted));
    in.offset = scratch_bytes_;
    scratch_bytes_ += (static_cast<int64_t>(wanted.get_size()) + 63) / 64 * 64;
  }
  inputs_.push_back(in);
}

absl::StatusOr<std::vector<const void*>> ReorderedInputs::Data(const KernelArgs& args) const {
  std::vector<const void*> data;
  char* scratch = static_cast<char*>(args.scratch);
  try {
    for (const Input& in : inputs_) {
      const Tensor& t = args.inputs[in.index];
      data.push_back(t.raw_data());
      if (in.reorder == nullptr) continue;
      dnnl::memory src(in.actual, engine_, const_cast<void*>(t.raw_data())), dst(in.wanted, engine_, scratch + in.offset);
      in.reorder->execute(ThreadStream(engine_), src, dst);
      ThreadStream(engine_).wait();
      data.back() = scratch + in.offset;
    }
  } catch (const dnnl::error& e) {
    return DnnlError(e, "reordering a kernel's input");
  }
  return data;
}

bool FewChannels(const Shape& y) { return y.size() >= 3 && y[1] < 8; }

absl::StatusOr<ConvGeometry> Geometry(const Node& node, const Shape& x, const Shape& w) {
  const size_t spatial = x.size() - 2;
  ConvGeometry g;
  const std::vector<int64_t> strides = node.GetInts("strides", std::vector<int64_t>(spatial, 1));
  const std::vector<int64_t> dilations = node.GetInts("dilations", std::vector<int64_t>(spatial, 1));
  std::vector<int64_t> pads = node.GetInts("pads", std::vector<int64_t>(2 * spatial, 0));
  if (strides.size() != spatial || dilations.size() != spatial || pads.size() != 2 * spatial) {
    return absl::InvalidArgumentError("bad conv attributes");
  }
  const std::string auto_pad = node.GetString("auto_pad", "NOTSET");
  for (size_t i = 0; i < spatial; ++i) {
    const int64_t in = x[2 + i], k = w[2 + i], s = strides[i], d = dilations[i];
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      const int64_t out = (in + s - 1) / s;
      const int64_t total = std::max<int64_t>(0, (out - 1) * s + (k - 1) * d + 1 - in);
      pads[i] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      pads[i + spatial] = total - pads[i];
    } else if (auto_pad == "VALID") {
      pads[i] = pads[i + spatial] = 0;
    }
    g.strides.push_back(s);
    g.dilates.push_back(d - 1);
    g.pad_l.push_back(pads[i]);
    g.pad_r.push_back(pads[i + spatial]);
  }
  return g;
}

KernelOr CompileConv(const OpContext& c) {
  const Node& node = c.node();
  const TensorDesc& x = c.input(0);
  const TensorDesc& w = c.input(1);
  const bool fused = node.op_type == "FusedConv";
  const bool has_sum = fused && c.has_input(3);
  if (w.constant == nullptr || (c.has_input(2) && c.input(2).constant == nullptr)) return nullptr;
  if (x.shape.size() < 3 || x.shape.size() > 5 || w.shape.size() != x.shape.size()) return nullptr;
  const int64_t group = node.GetInt("group", 1);
  const Shape& y = c.output(0).shape;
  const int64_t oc = w.shape[0];
  ASSIGN_OR_RETURN(ConvGeometry g, Geometry(node, x.shape, w.shape));

  memory::dims weight_dims = ToDims(w.shape);
  if (group > 1) {
    weight_dims[0] = oc / group;
    weight_dims.insert(weight_dims.begin(), group);
  }
  const memory::desc weight_plain = [&] {
    memory::dims strides(weight_dims.size(), 1);
    for (int i = static_cast<int>(weight_dims.size()) - 2; i >= 0; --i) {
      strides[i] = strides[i + 1] * weight_dims[i + 1];
    }
    return memory::desc(weight_dims, memory::data_type::f32, strides);
  }();
  const int variant = c.request.variant;
  const auto any = memory::format_tag::any;
  const auto f32 = memory::data_type::f32;
  // The blocked variant pins 2-D convolutions to nChw16c where channels allow.
  auto pinnable = [&](int64_t channels) { return x.shape.size() == 4 && channels % 16 == 0; };
  auto format = [&](int64_t channels) {
    return variant == kWinogradBlocked && pinnable(channels) ? memory::format_tag::nChw16c : any;
  };
  const memory::desc src_any(ToDims(x.shape), f32, format(x.shape[1]));
  const memory::desc weight_any(weight_dims, f32, any);
  const memory::desc bias_md({oc}, f32, memory::format_tag::a);
  const memory::desc dst_any = FewChannels(y) ? RowMajorDesc(y) : memory::desc(ToDims(y), f32, format(y[1]));

  dnnl::post_ops post_ops;
  if (has_sum) post_ops.append_sum(1.0f);
  if (fused && !AppendActivation(node, post_ops)) return nullptr;
  const dnnl::primitive_attr attr = ScratchpadAttr(post_ops);

  const bool winograd_shape = c.options.winograd && x.shape.size() == 4 && group == 1 &&
                              w.shape[2] == 3 && w.shape[3] == 3 &&
                              g.strides == memory::dims{1, 1} && g.dilates == memory::dims{0, 0};
  if (c.request.variant_sensitive != nullptr &&
      (winograd_shape || pinnable(x.shape[1]) || (!FewChannels(y) && pinnable(y[1])))) {
    *c.request.variant_sensitive = true;
  }
  // Candidates in order of preference; later ones stand in when earlier ones
  // have no implementation for this shape.
  std::vector<dnnl::algorithm> algorithms = {dnnl::algorithm::convolution_direct};
  if (winograd_shape && variant == kMeasuredPerLayer) {
    algorithms.push_back(dnnl::algorithm::convolution_winograd);
  } else if (winograd_shape && variant == kWinogradBlocked) {
    algorithms.insert(algorithms.begin(), dnnl::algorithm::convolution_winograd);
  }

  const bool pointwise = x.shape.size() == 4 && group == 1 && w.shape[2] == 1 && w.shape[3] == 1 &&
                         g.strides == memory::dims{1, 1} && g.pad_l == memory::dims{0, 0} &&
                         g.pad_r == memory::dims{0, 0};
  const bool try_sparse = pointwise && c.request.measure;
  reference::SparseRows rows;
  if (try_sparse) rows = reference::SparseRows::FromDense(w.constant->data<float>(), oc, w.shape[1]);
  const bool sparse = try_sparse && rows.density() <= kMaxSparseDensity;
  const bool measure = (algorithms.size() > 1 || sparse) && variant == kMeasuredPerLayer && c.request.measure;
  std::vector<Candidate> candidates;
  for (dnnl::algorithm algorithm : algorithms) {
    if (!measure && !candidates.empty()) break;
    std::unique_ptr<dnnl::convolution_forward::desc> desc;
    const auto kind = dnnl::prop_kind::forward_inference;
    if (c.has_input(2)) {
      desc = std::make_unique<dnnl::convolution_forward::desc>(kind, algorithm, src_any, weight_any,
                                                               bias_md, dst_any, g.strides,
                                                               g.dilates, g.pad_l, g.pad_r);
    } else {
      desc = std::make_unique<dnnl::convolution_forward::desc>(kind, algorithm, src_any, weight_any,
                                                               dst_any, g.strides, g.dilates,
                                                               g.pad_l, g.pad_r);
    }
    dnnl::convolution_forward::primitive_desc pd;
    try {
      pd = dnnl::convolution_forward::primitive_desc(*desc, attr, c.engine);
    } catch (const dnnl::error&) {
      continue;  // e.g. no Winograd implementation for this shape
    }
    auto kernel = std::make_unique<PrimitiveKernel>(c.engine, MakePrimitive<dnnl::convolution_forward>(pd));
    kernel->BindInput(DNNL_ARG_SRC, 0, ActualDesc(x), pd.src_desc());
    kernel->BindOwned(DNNL_ARG_WEIGHTS, PackConstant(c.engine, *w.constant, weight_plain, pd.weights_desc()));
    if (c.has_input(2)) {
      kernel->BindOwned(DNNL_ARG_BIAS, PackConstant(c.engine, *c.input(2).constant, bias_md, pd.bias_desc()));
    }
    if (has_sum) {
      kernel->CopyInputToOutputFirst(3, ActualDesc(c.input(3)), 0, pd.dst_desc());
      if (ActualDesc(c.input(3)) == pd.dst_desc()) kernel->set_inplace_input(3);
    }
    kernel->BindOutput(DNNL_ARG_DST, 0, pd.dst_desc());
    kernel->SetScratchpad(pd.scratchpad_desc());
    candidates.push_back({pd, std::move(kernel)});
  }
  if (candidates.empty()) return nullptr;

  size_t best = 0;
  if (measure && candidates.size() > 1) {
    // Time each candidate; Winograd must also agree with direct convolution.
    std::vector<double> times;
    std::vector<std::vector<float>> results(candidates.size());
    for (size_t i = 0; i < candidates.size(); ++i) {
      ASSIGN_OR_RETURN(double ms, TimeKernel(c.engine, *candidates[i].kernel, c.request.inputs,
                                             OutputsIn(c, candidates[i].pd.dst_desc()), 3, &results[i]));
      times.push_back(ms);
    }
    for (size_t i = 1; i < candidates.size(); ++i) {
      if (Difference(results[i], results[0]) <= kWinogradTolerance && times[i] < times[best]) best = i;
    }
  }
  if (sparse) {
    // Writes the layout the dense kernel would: row-major, nChw16c or nhwc.
    const dnnl::memory::desc dst = candidates[best].pd.dst_desc();
    const std::optional<reference::SparseLayout> layout = SparseLayoutOf(dst, y);
    if (layout.has_value() && (*layout == reference::SparseLayout::kRowMajor || oc % 16 == 0)) {
      const double density = rows.density();
      auto kernel = std::make_unique<SparseConvKernel>(c, std::move(rows), fused ? FusedActivation(node) : Activation{},
                                                       dst, *layout);
      std::vector<float> dense_result, sparse_result;
      ASSIGN_OR_RETURN(const double dense_ms, TimeKernel(c.engine, *candidates[best].kernel, c.request.inputs,
                                                         OutputsIn(c, dst), 3, &dense_result));
      ASSIGN_OR_RETURN(const double sparse_ms,
                       TimeKernel(c.engine, *kernel, c.request.inputs, OutputsIn(c, dst), 3, &sparse_result));
      const bool faster =
          Difference(sparse_result, dense_result) <= kWinogradTolerance && sparse_ms <= kSparseMargin * dense_ms;
      const std::string measured = absl::StrFormat("sparse 1x1 (%.1f %% non-zero) %.3f ms, dense %.3f ms",
                                                   100 * density, sparse_ms, dense_ms);
      if (faster) {
        kernel->set_description(measured);
        c.SetOutputFormat(0, dst);
        return kernel;
      }
      candidates[best].kernel->set_description(absl::StrCat("dense: ", measured));
    }
  }
  c.SetOutputFormat(0, candidates[best].pd.dst_desc());
  return std::move(candidates[best].kernel);
}

}  // namespace slimserve::runtime::onednn

namespace slimserve::runtime::onednn {

// ConvTranspose with explicit pads (no auto_pad or output_shape, which the
// reference handles). ONNX stores weights as [C_in, C_out/group, k...];
// oneDNN reads them through strides as [group, C_out/group, C_in/group, k...].
KernelOr CompileConvTranspose(const OpContext& c) {
  const Node& node = c.node();
  const TensorDesc& x = c.input(0);
  const TensorDesc& w = c.input(1);
  if (w.constant == nullptr || (c.has_input(2) && c.input(2).constant == nullptr)) return nullptr;
  if (x.shape.size() != 4 || w.shape.size() != 4) return nullptr;
  if (node.GetString("auto_pad", "NOTSET") != "NOTSET" || node.Has("output_shape")) return nullptr;
  const int64_t group = node.GetInt("group", 1);
  const int64_t ic_g = w.shape[0] / group, oc_g = w.shape[1], kh = w.shape[2], kw = w.shape[3];
  const Shape& y = c.output(0).shape;
  const std::vector<int64_t> strides = node.GetInts("strides", {1, 1});
  const std::vector<int64_t> dilations = node.GetInts("dilations", {1, 1});
  const std::vector<int64_t> pads = node.GetInts("pads", {0, 0, 0, 0});
  const std::vector<int64_t> output_padding = node.GetInts("output_padding", {0, 0});
  if (strides.size() != 2 || dilations.size() != 2 || pads.size() != 4 || output_padding.size() != 2) {
    return nullptr;
  }
  const memory::dims padding_l = {pads[0], pads[1]};
  // Extra output rows from output_padding are padding taken off the end.
  const memory::dims padding_r = {pads[2] - output_padding[0], pads[3] - output_padding[1]};
  const memory::dims dilates = {dilations[0] - 1, dilations[1] - 1};
  const memory::dims weight_dims = {group, oc_g, ic_g, kh, kw};
  const memory::dims weight_strides = {ic_g * oc_g * kh * kw, kh * kw, oc_g * kh * kw, kw, 1};
  const auto f32 = memory::data_type::f32;
  const auto any = memory::format_tag::any;
  const memory::desc weight_plain(weight_dims, f32, weight_strides);
  const memory::desc src_any(ToDims(x.shape), f32, any);
  const memory::desc dst_any = FewChannels(y) ? RowMajorDesc(y) : memory::desc(ToDims(y), f32, any);
  const memory::desc bias_md({group * oc_g}, f32, memory::format_tag::a);
  const memory::desc weight_any(weight_dims, f32, any);
  const auto kind = dnnl::prop_kind::forward_inference;
  const auto algorithm = dnnl::algorithm::deconvolution_direct;
  const dnnl::deconvolution_forward::desc desc =
      c.has_input(2) ? dnnl::deconvolution_forward::desc(kind, algorithm, src_any, weight_any, bias_md,
                                                         dst_any, strides, dilates, padding_l, padding_r)
                     : dnnl::deconvolution_forward::desc(kind, algorithm, src_any, weight_any, dst_any,
                                                         strides, dilates, padding_l, padding_r);
  dnnl::deconvolution_forward::primitive_desc pd(desc, ScratchpadAttr(), c.engine);
  auto kernel = std::make_unique<PrimitiveKernel>(c.engine, MakePrimitive<dnnl::deconvolution_forward>(pd));
  kernel->BindInput(DNNL_ARG_SRC, 0, ActualDesc(x), pd.src_desc());
  kernel->BindOwned(DNNL_ARG_WEIGHTS, PackConstant(c.engine, *w.constant, weight_plain, pd.weights_desc()));
  if (c.has_input(2)) {
    kernel->BindOwned(DNNL_ARG_BIAS, PackConstant(c.engine, *c.input(2).constant, bias_md, pd.bias_desc()));
  }
  kernel->BindOutput(DNNL_ARG_DST, 0, pd.dst_desc());
  kernel->SetScratchpad(pd.scratchpad_desc());
  c.SetOutputFormat(0, pd.dst_desc());
  return kernel;
}

}  // namespace slimserve::runtime::onednn
