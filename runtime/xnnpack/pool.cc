// Pooling on XNNPACK: MaxPool and AveragePool (2-D, channels-last) and
// GlobalAveragePool (either order). Only configurations whose results match
// ONNX exactly are taken:
// - XNNPACK's padded max pooling reads the nearest border pixel instead of
//   padding, which changes nothing as long as every window covers an input
//   pixel (ceil_mode or large pads can make a window all padding);
// - XNNPACK's padded average pooling divides by the number of input pixels a
//   window covers: ONNX's count_include_pad=0. With count_include_pad=1 only
//   unpadded pooling agrees.
#include <array>
#include <limits>

#include "runtime/xnnpack/ops.h"

namespace slimserve::runtime::xnnpack {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// True when each of `out` windows covers at least one of `in` input pixels.
bool EveryWindowCoversInput(int64_t in, int64_t out, int64_t kernel, int64_t stride,
                            int64_t dilation, int64_t pad_begin) {
  for (int64_t o = 0; o < out; ++o) {
    bool covered = false;
    for (int64_t j = 0; j < kernel && !covered; ++j) {
      const int64_t pos = o * stride - pad_begin + j * dilation;
      covered = pos >= 0 && pos < in;
    }
    if (!covered) return false;
  }
  return true;
}

}  // namespace

KernelOr CompilePool(const OpContext& c) {
  const Node& node = c.node();
  const TensorDesc& x = c.input(0);
  if (x.shape.size() != 4) return nullptr;
  if (node.outputs.size() > 1 && !node.outputs[1].empty()) return nullptr;  // MaxPool indices
  const bool max = node.op_type == "MaxPool";
  const std::vector<int64_t> kernel = node.GetInts("kernel_shape");
  const std::vector<int64_t> strides = node.GetInts("strides", {1, 1});
  const std::vector<int64_t> dilations = node.GetInts("dilations", {1, 1});
  const std::vector<int64_t> pads = node.GetInts("pads", {0, 0, 0, 0});
  if (kernel.size() != 2 || strides.size() != 2 || dilations.size() != 2 || pads.size() != 4) {
    return nullptr;
  }
  // XNNPACK's average pooling has no dilation.
  if (!max && (dilations[0] != 1 || dilations[1] != 1)) return nullptr;
  const bool include_pad = node.GetInt("count_include_pad", 0) != 0;
  const std::string auto_pad = node.GetString("auto_pad", "NOTSET");
  const Shape& y = c.output(0).shape;
  std::array<Padding, 2> pad;  // height, width
  for (size_t i = 0; i < 2; ++i) {
    const auto p = SpatialPadding(auto_pad, x.shape[2 + i], y[2 + i], kernel[i], strides[i],
                                  dilations[i], pads[i]);
    if (!p.has_value()) return nullptr;
    if (!EveryWindowCoversInput(x.shape[2 + i], y[2 + i], kernel[i], strides[i], dilations[i],
                                p->begin)) {
      return nullptr;
    }
    if (!max && include_pad && (p->begin != 0 || p->end != 0)) return nullptr;
    pad[i] = *p;
  }

  const auto u32 = [](int64_t v) { return static_cast<uint32_t>(v); };
  const uint32_t top = u32(pad[0].begin), right = u32(pad[1].end), bottom = u32(pad[0].end),
                 left = u32(pad[1].begin);
  const uint32_t kernel_h = u32(kernel[0]), kernel_w = u32(kernel[1]);
  const uint32_t stride_h = u32(strides[0]), stride_w = u32(strides[1]);
  const uint32_t dilation_h = u32(dilations[0]), dilation_w = u32(dilations[1]);
  const size_t channels = x.shape[1];
  const size_t batch = x.shape[0], height = x.shape[2], width = x.shape[3];
  OperatorKernel::CreateFn create;
  OperatorKernel::SetupFn setup;
  if (max) {
    create = [=](xnn_operator_t* op) {
      return xnn_create_max_pooling2d_nhwc_f32(top, right, bottom, left, kernel_h, kernel_w,
                                               stride_h, stride_w, dilation_h, dilation_w, channels,
                                               channels, channels, -kInf, kInf, 0, op);
    };
    setup = [=](xnn_operator_t op, const auto& in, float* out, pthreadpool_t pool) {
      return xnn_setup_max_pooling2d_nhwc_f32(op, batch, height, width, in[0], out, pool);
    };
  } else {
    create = [=](xnn_operator_t* op) {
      return xnn_create_average_pooling2d_nhwc_f32(top, right, bottom, left, kernel_h, kernel_w,
                                                   stride_h, stride_w, channels, channels, channels,
                                                   -kInf, kInf, 0, op);
    };
    setup = [=](xnn_operator_t op, const auto& in, float* out, pthreadpool_t pool) {
      return xnn_setup_average_pooling2d_nhwc_f32(op, batch, height, width, in[0], out, pool);
    };
  }
  KernelOr result =
      OperatorKernel::Create(c.state, max ? "max_pooling2d_nhwc_f32" : "average_pooling2d_nhwc_f32",
                             std::move(create), std::move(setup), {c.Read(0, x.shape, true)});
  if (result.ok() && *result != nullptr) c.SetChannelsLast(0);
  return result;
}

KernelOr CompileGlobalAveragePool(const OpContext& c) {
  const TensorDesc& x = c.input(0);
  if (x.shape.size() < 3) return nullptr;
  // The output, [N, C, 1, ...], is the same in both orders. The input is
  // averaged where it is: channels-last rows of C, or row-major rows of pixels.
  const size_t batch = x.shape[0], channels = x.shape[1];
  const size_t pixels = NumElementsUnchecked(absl::MakeConstSpan(x.shape).subspan(2));
  if (IsChannelsLast(x)) {
    return OperatorKernel::Create(
        c.state, "global_average_pooling_nwc_f32",
        [=](xnn_operator_t* op) {
          return xnn_create_global_average_pooling_nwc_f32(channels, channels, channels, -kInf,
                                                           kInf, 0, op);
        },
        [=](xnn_operator_t op, const auto& in, float* out, pthreadpool_t pool) {
          return xnn_setup_global_average_pooling_nwc_f32(op, batch, pixels, in[0], out, pool);
        },
        {c.Read(0, x.shape, true)});
  }
  return OperatorKernel::Create(
      c.state, "global_average_pooling_ncw_f32",
      [=](xnn_operator_t* op) {
        return xnn_create_global_average_pooling_ncw_f32(channels, -kInf, kInf, 0, op);
      },
      [=](xnn_operator_t op, const auto& in, float* out, pthreadpool_t pool) {
        return xnn_setup_global_average_pooling_ncw_f32(op, batch, pixels, in[0], out, pool);
      },
      {c.Read(0, x.shape, false)});
}

}  // namespace slimserve::runtime::xnnpack
