// 2-D convolution on XNNPACK (convolution2d_nhwc_f32): Conv and FusedConv,
// grouped and depthwise included. The fused activation becomes the output
// clamp, so only Relu and Clip fuse; a residual addend has no XNNPACK form
// and leaves the node to another backend. XNNPACK picks its own algorithm
// (depthwise, 1x1 GEMM or indirect GEMM) from the shapes.
#include <array>

#include "runtime/activation.h"
#include "runtime/xnnpack/ops.h"

namespace slimserve::runtime::xnnpack {

KernelOr CompileConv(const OpContext& c) {
  const Node& node = c.node();
  const TensorDesc& x = c.input(0);
  const TensorDesc& w = c.input(1);
  if (x.shape.size() != 4 || w.shape.size() != 4 || w.constant == nullptr) return nullptr;
  if (c.has_input(2) && c.input(2).constant == nullptr) return nullptr;
  if (c.has_input(3)) return nullptr;  // residual addend
  const auto clamp = ClampRange(node.domain == kFusedDomain ? FusedActivation(node) : Activation{});
  if (!clamp.has_value()) return nullptr;

  const int64_t group = node.GetInt("group", 1);
  const int64_t out_channels = w.shape[0], group_in = w.shape[1];
  if (group <= 0 || x.shape[1] != group * group_in || out_channels % group != 0) return nullptr;
  const std::vector<int64_t> strides = node.GetInts("strides", {1, 1});
  const std::vector<int64_t> dilations = node.GetInts("dilations", {1, 1});
  const std::vector<int64_t> pads = node.GetInts("pads", {0, 0, 0, 0});
  if (strides.size() != 2 || dilations.size() != 2 || pads.size() != 4) return nullptr;
  const std::string auto_pad = node.GetString("auto_pad", "NOTSET");
  const Shape& y = c.output(0).shape;
  std::array<Padding, 2> pad;  // height, width
  for (size_t i = 0; i < 2; ++i) {
    const auto p = SpatialPadding(auto_pad, x.shape[2 + i], y[2 + i], w.shape[2 + i], strides[i],
                                  dilations[i], pads[i]);
    if (!p.has_value()) return nullptr;
    pad[i] = *p;
  }

  // ONNX weights are [O, I/group, kH, kW]; XNNPACK reads [O, kH, kW, I/group]
  // (for depthwise both are the same).
  std::vector<float> weights(NumElementsUnchecked(w.shape));
  ReorderChannels(Reorder::kToChannelsLast, w.shape, w.constant->data<float>(), weights.data(),
                  nullptr);
  std::vector<float> bias;
  if (c.has_input(2)) {
    const Tensor& b = *c.input(2).constant;
    if (b.num_elements() != out_channels) return nullptr;
    bias.assign(b.data<float>(), b.data<float>() + out_channels);
  }
  const auto u32 = [](int64_t v) { return static_cast<uint32_t>(v); };
  const uint32_t kernel_h = u32(w.shape[2]), kernel_w = u32(w.shape[3]);
  const float out_min = clamp->first, out_max = clamp->second;
  auto create = [=, weights = std::move(weights), bias = std::move(bias)](xnn_operator_t* op) {
    return xnn_create_convolution2d_nhwc_f32(
        u32(pad[0].begin), u32(pad[1].end), u32(pad[0].end), u32(pad[1].begin), kernel_h, kernel_w,
        u32(strides[0]), u32(strides[1]), u32(dilations[0]), u32(dilations[1]), u32(group),
        group_in, out_channels / group, /*input_channel_stride=*/group * group_in,
        /*output_channel_stride=*/out_channels, weights.data(),
        bias.empty() ? nullptr : bias.data(), out_min, out_max, /*flags=*/0, op);
  };
  const size_t batch = x.shape[0], height = x.shape[2], width = x.shape[3];
  auto setup = [=](xnn_operator_t op, const auto& in, float* out, pthreadpool_t pool) {
    return xnn_setup_convolution2d_nhwc_f32(op, batch, height, width, in[0], out, pool);
  };
  KernelOr kernel = OperatorKernel::Create(c.state, "convolution2d_nhwc_f32", std::move(create),
                                           std::move(setup), {c.Read(0, x.shape, true)});
  if (kernel.ok() && *kernel != nullptr) c.SetChannelsLast(0);
  return kernel;
}

}  // namespace slimserve::runtime::xnnpack
