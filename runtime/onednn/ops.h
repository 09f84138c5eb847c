// Kernel factories of the oneDNN backend, one per op family. Each returns
// nullptr when oneDNN does not run the node as described (the executor then
// asks the next backend) and may throw dnnl::error, which the backend catches.
#ifndef SLIMSERVE_RUNTIME_ONEDNN_OPS_H_
#define SLIMSERVE_RUNTIME_ONEDNN_OPS_H_

#include <memory>

#include "absl/status/statusor.h"
#include "dnnl.hpp"
#include "runtime/kernel.h"
#include "runtime/onednn/backend.h"

namespace slimserve::runtime::onednn {

struct OpContext {
  Backend* backend;  // owner of produced layouts
  const dnnl::engine& engine;
  const OnednnOptions& options;
  const CompileRequest& request;

  const Node& node() const { return request.node; }
  const TensorDesc& input(size_t i) const;
  bool has_input(size_t i) const { return i < request.inputs.size() && request.inputs[i].defined(); }
  TensorDesc& output(size_t i) const { return request.outputs[i]; }
  // Records `md` as output i's memory format.
  void SetOutputFormat(size_t i, const dnnl::memory::desc& md) const;
};

using KernelOr = absl::StatusOr<std::unique_ptr<Kernel>>;

KernelOr CompileConv(const OpContext& c);
KernelOr CompileConvTranspose(const OpContext& c);
KernelOr CompileResize(const OpContext& c);
KernelOr CompileMatMul(const OpContext& c);
KernelOr CompileGemm(const OpContext& c);
KernelOr CompilePool(const OpContext& c);
KernelOr CompileEltwise(const OpContext& c);
KernelOr CompileBinary(const OpContext& c);
KernelOr CompileSoftmax(const OpContext& c);
KernelOr CompileConcat(const OpContext& c);
KernelOr CompileLayerNorm(const OpContext& c);
KernelOr CompileBatchNorm(const OpContext& c);
KernelOr CompileTranspose(const OpContext& c);
KernelOr CompileReduce(const OpContext& c);
KernelOr CompileReorder(const dnnl::engine& engine, const TensorDesc& value);

// Appends the activation of a fused node (attributes `activation` and
// `activation_params`) as an eltwise post-op; false if oneDNN lacks it.
bool AppendActivation(const Node& node, dnnl::post_ops& post_ops);

}  // namespace slimserve::runtime::onednn

#endif  // SLIMSERVE_RUNTIME_ONEDNN_OPS_H_
