// Kernel factories of the XNNPACK backend, one per op family. Each returns
// nullptr when XNNPACK does not run the node as described (the executor then
// asks the next backend). Inputs arrive row-major or in this backend's
// channels-last layout; outputs a factory marks channels-last are written so.
#ifndef SLIMSERVE_RUNTIME_XNNPACK_OPS_H_
#define SLIMSERVE_RUNTIME_XNNPACK_OPS_H_

#include <memory>

#include "absl/status/statusor.h"
#include "runtime/kernel.h"
#include "runtime/xnnpack/common.h"

namespace slimserve::runtime::xnnpack {

struct OpContext {
  BackendState& state;
  const CompileRequest& request;

  const Node& node() const { return request.node; }
  // An undefined desc for an omitted or absent input.
  const TensorDesc& input(size_t i) const;
  bool has_input(size_t i) const {
    return i < request.inputs.size() && request.inputs[i].defined();
  }
  TensorDesc& output(size_t i) const { return request.outputs[i]; }
  // Records output i as channels-last, unless both orders coincide for its shape.
  void SetChannelsLast(size_t i) const;
  // An operand reading input i, viewed as `shape` ([N, C, spatial...] when
  // a reorder may be needed), in the order the operator wants: reordered into
  // scratch on each run when the input is in the other order, or once now
  // when it is a constant.
  Operand Read(size_t i, const Shape& shape, bool channels_last) const;
};

using KernelOr = absl::StatusOr<std::unique_ptr<Kernel>>;

KernelOr CompileConv(const OpContext& c);    // Conv, FusedConv
KernelOr CompileGemm(const OpContext& c);    // Gemm, FusedGemm
KernelOr CompileMatMul(const OpContext& c);  // MatMul, FusedMatMul
KernelOr CompilePool(const OpContext& c);    // MaxPool, AveragePool
KernelOr CompileGlobalAveragePool(const OpContext& c);
KernelOr CompileBinary(const OpContext& c);  // Add, Sub, Mul, Div, Max, Min
KernelOr CompileUnary(const OpContext& c);   // Relu, Clip, Sigmoid, HardSwish, LeakyRelu
KernelOr CompileSoftmax(const OpContext& c);

}  // namespace slimserve::runtime::xnnpack

#endif  // SLIMSERVE_RUNTIME_XNNPACK_OPS_H_
