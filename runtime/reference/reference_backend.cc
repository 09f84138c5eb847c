#include "runtime/reference/reference_backend.h"

#include "runtime/reference/op_registry.h"

namespace slimserve::runtime::reference {
namespace {

class ReferenceKernel final : public Kernel {
 public:
  ReferenceKernel(const Node& node, int64_t opset, const OpDef& op, int num_threads)
      : node_(node), opset_(opset), op_(op), num_threads_(num_threads) {}

  absl::Status Run(const KernelArgs& args) const override {
    ComputeContext context{node_, opset_, args.inputs, args.outputs, num_threads_};
    return op_.compute(context);
  }

 private:
  const Node& node_;
  const int64_t opset_;
  const OpDef& op_;
  const int num_threads_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> ReferenceBackend::Compile(const CompileRequest& request) {
  const OpDef* op = FindOp(request.node);
  if (op == nullptr) return nullptr;
  return std::make_unique<ReferenceKernel>(request.node, request.opset, *op, request.num_threads);
}

}  // namespace slimserve::runtime::reference
