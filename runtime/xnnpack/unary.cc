// One-input ops on XNNPACK: the elementwise activations (Relu and Clip as a
// clamp, Sigmoid, HardSwish, LeakyRelu), which run on the whole tensor as one
// row and so take either order, and Softmax over the trailing axes, which
// needs row-major order.
#include "runtime/activation.h"
#include "runtime/xnnpack/ops.h"

namespace slimserve::runtime::xnnpack {
namespace {

using UnarySetupFn = decltype(&xnn_setup_clamp_nc_f32);  // the same for every *_nc_f32 activation

}  // namespace

KernelOr CompileUnary(const OpContext& c) {
  const std::optional<Activation> activation =
      ActivationOf(c.node(), c.request.opset, [&](size_t i) { return c.input(i).constant; });
  if (!activation.has_value()) return nullptr;
  // Elementwise: `elements` rows of one channel, which XNNPACK treats as one
  // contiguous vector split into blocks across threads.
  const TensorDesc& x = c.input(0);
  const size_t elements = NumElementsUnchecked(x.shape);
  const char* what = nullptr;
  OperatorKernel::CreateFn create;
  UnarySetupFn setup_nc = nullptr;
  switch (activation->kind) {
    case Activation::Kind::kRelu:
    case Activation::Kind::kClip: {
      const std::pair<float, float> range = *ClampRange(*activation);
      const float out_min = range.first, out_max = range.second;
      what = "clamp_nc_f32";
      create = [=](xnn_operator_t* op) {
        return xnn_create_clamp_nc_f32(1, 1, 1, out_min, out_max, 0, op);
      };
      setup_nc = xnn_setup_clamp_nc_f32;
      break;
    }
    case Activation::Kind::kSigmoid:
      what = "sigmoid_nc_f32";
      create = [](xnn_operator_t* op) { return xnn_create_sigmoid_nc_f32(1, 1, 1, 0, op); };
      setup_nc = xnn_setup_sigmoid_nc_f32;
      break;
    case Activation::Kind::kHardSwish:
      what = "hardswish_nc_f32";
      create = [](xnn_operator_t* op) { return xnn_create_hardswish_nc_f32(1, 1, 1, 0, op); };
      setup_nc = xnn_setup_hardswish_nc_f32;
      break;
    case Activation::Kind::kLeakyRelu: {
      const float slope = activation->alpha;
      what = "leaky_relu_nc_f32";
      create = [=](xnn_operator_t* op) {
        return xnn_create_leaky_relu_nc_f32(1, 1, 1, slope, 0, op);
      };
      setup_nc = xnn_setup_leaky_relu_nc_f32;
      break;
    }
    default:
      return nullptr;
  }
  auto setup = [=](xnn_operator_t op, const auto& in, float* out, pthreadpool_t pool) {
    return setup_nc(op, elements, in[0], out, pool);
  };
  KernelOr kernel = OperatorKernel::Create(c.state, what, std::move(create), std::move(setup),
                                           {c.Read(0, x.shape, IsChannelsLast(x))});
  if (kernel.ok() && *kernel != nullptr) c.output(0).layout = x.layout;  // same order as the input
  return kernel;
}

KernelOr CompileSoftmax(const OpContext& c) {
  const TensorDesc& x = c.input(0);
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  if (rank == 0) return nullptr;
  int64_t axis = c.node().GetInt("axis", c.request.opset >= 13 ? -1 : 1);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) return nullptr;
  // From opset 13 Softmax runs along one axis: only the last is a row of
  // XNNPACK's softmax. Before, the input is viewed as 2-D at `axis`, whose
  // rows are the trailing axes together.
  if (c.request.opset >= 13 && axis != rank - 1) return nullptr;
  const size_t channels = NumElementsUnchecked(absl::MakeConstSpan(x.shape).subspan(axis));
  const size_t batch = NumElementsUnchecked(x.shape) / channels;
  return OperatorKernel::Create(
      c.state, "softmax_nc_f32",
      [=](xnn_operator_t* op) {
        return xnn_create_softmax_nc_f32(channels, channels, channels, 0, op);
      },
      [=](xnn_operator_t op, const auto& in, float* out, pthreadpool_t pool) {
        return xnn_setup_softmax_nc_f32(op, batch, in[0], out, pool);
      },
      {c.Read(0, x.shape, false)});
}

}  // namespace slimserve::runtime::xnnpack
