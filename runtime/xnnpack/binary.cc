// Broadcasting binary ops on XNNPACK (the *_nd_f32 operators): Add, Sub,
// Mul, Div, Max, Min. Broadcasting does not depend on the order of dims, so
// when an operand arrives channels-last every operand is viewed (and, if
// needed, reordered) in channels-last order and the output stays
// channels-last; otherwise everything is row-major.
#include <limits>

#include "runtime/xnnpack/ops.h"

namespace slimserve::runtime::xnnpack {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

using SetupFn = decltype(&xnn_setup_add_nd_f32);  // the same for every *_nd_f32 operator

struct BinaryOp {
  const char* op_type;
  const char* what;
  xnn_status (*create)(xnn_operator_t*);
  SetupFn setup;
};

const BinaryOp kBinaryOps[] = {
    {"Add", "add_nd_f32",
     [](xnn_operator_t* op) { return xnn_create_add_nd_f32(-kInf, kInf, 0, op); },
     xnn_setup_add_nd_f32},
    {"Sub", "subtract_nd_f32",
     [](xnn_operator_t* op) { return xnn_create_subtract_nd_f32(-kInf, kInf, 0, op); },
     xnn_setup_subtract_nd_f32},
    {"Mul", "multiply_nd_f32",
     [](xnn_operator_t* op) { return xnn_create_multiply_nd_f32(-kInf, kInf, 0, op); },
     xnn_setup_multiply_nd_f32},
    {"Div", "divide_nd_f32",
     [](xnn_operator_t* op) { return xnn_create_divide_nd_f32(-kInf, kInf, 0, op); },
     xnn_setup_divide_nd_f32},
    {"Max", "maximum_nd_f32", [](xnn_operator_t* op) { return xnn_create_maximum_nd_f32(0, op); },
     xnn_setup_maximum_nd_f32},
    {"Min", "minimum_nd_f32", [](xnn_operator_t* op) { return xnn_create_minimum_nd_f32(0, op); },
     xnn_setup_minimum_nd_f32},
};

}  // namespace

KernelOr CompileBinary(const OpContext& c) {
  // Max and Min take any number of inputs; XNNPACK's take two.
  if (c.request.inputs.size() != 2 || !c.has_input(0) || !c.has_input(1)) return nullptr;
  const BinaryOp* op = nullptr;
  for (const BinaryOp& candidate : kBinaryOps) {
    if (c.node().op_type == candidate.op_type) op = &candidate;
  }
  const Shape& y = c.output(0).shape;
  if (op == nullptr || y.size() > XNN_MAX_TENSOR_DIMS) return nullptr;
  // Channels-last values are 4-D; with a higher-rank output they are read row-major.
  const bool channels_last =
      y.size() == 4 && (IsChannelsLast(c.input(0)) || IsChannelsLast(c.input(1)));

  std::vector<Operand> operands;
  std::array<std::vector<size_t>, 2> shapes;
  for (size_t i = 0; i < 2; ++i) {
    Shape shape = c.input(i).shape;
    if (channels_last) {
      shape.insert(shape.begin(), y.size() - shape.size(), 1);
      operands.push_back(c.Read(i, shape, true));
      shape = ChannelsLastShape(shape);
    } else {
      operands.push_back(c.Read(i, shape, false));
    }
    shapes[i].assign(shape.begin(), shape.end());
  }
  const SetupFn setup_nd = op->setup;
  auto setup = [=](xnn_operator_t xop, const auto& in, float* out, pthreadpool_t pool) {
    return setup_nd(xop, shapes[0].size(), shapes[0].data(), shapes[1].size(), shapes[1].data(),
                    in[0], in[1], out, pool);
  };
  KernelOr kernel =
      OperatorKernel::Create(c.state, op->what, op->create, std::move(setup), std::move(operands));
  if (channels_last && kernel.ok() && *kernel != nullptr) c.SetChannelsLast(0);
  return kernel;
}

}  // namespace slimserve::runtime::xnnpack
