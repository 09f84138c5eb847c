#include "runtime/reference/op_registry.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "runtime/activation.h"
#include "runtime/status_macros.h"

namespace slimserve::runtime::reference {
namespace {

const OpTable& Table() {
  static const OpTable* table = [] {
    auto* t = new OpTable;
    RegisterElementwiseOps(*t);
    RegisterTensorOps(*t);
    RegisterNnOps(*t);
    RegisterReduceOps(*t);
    RegisterQuantizeOps(*t);
    RegisterFusedOps(*t);
    RegisterQuantizedFusedOps(*t);
    return t;
  }();
  return *table;
}

const TensorDesc& Undefined() {
  static const TensorDesc desc;
  return desc;
}

const Tensor& UndefinedTensor() {
  static const Tensor tensor;
  return tensor;
}

}  // namespace

const TensorDesc& InferContext::input(size_t i) const {
  return i < inputs.size() ? inputs[i] : Undefined();
}

void InferContext::SetOutput(size_t i, DataType dtype, Shape shape) const {
  if (i >= outputs.size()) return;
  outputs[i].dtype = dtype;
  outputs[i].shape = std::move(shape);
}

absl::Status InferContext::Error(absl::string_view message) const {
  return absl::InvalidArgumentError(absl::StrCat(node.Describe(), ": ", message));
}

const Tensor& ComputeContext::input(size_t i) const {
  return i < inputs.size() ? inputs[i] : UndefinedTensor();
}

absl::Status ComputeContext::Error(absl::string_view message) const {
  return absl::InvalidArgumentError(absl::StrCat(node.Describe(), ": ", message));
}

const OpDef* FindOp(absl::string_view op_type) {
  auto it = Table().find(op_type);
  return it == Table().end() ? nullptr : &it->second;
}

const OpDef* FindOp(const Node& node) {
  if (node.domain.empty()) return FindOp(node.op_type);
  if (node.domain == kFusedDomain) return FindOp(absl::StrCat(kFusedDomain, ".", node.op_type));
  return nullptr;
}

absl::StatusOr<std::vector<Tensor>> Evaluate(const Node& node, int64_t opset,
                                             absl::Span<const Tensor> inputs,
                                             int64_t max_tensor_bytes) {
  const OpDef* op = FindOp(node);
  if (op == nullptr) {
    return absl::UnimplementedError(absl::StrCat("unsupported operator ", node.op_type));
  }
  std::vector<TensorDesc> in_descs;
  for (const Tensor& t : inputs) {
    in_descs.push_back(TensorDesc{t.dtype(), t.shape(), t.raw_data() != nullptr ? &t : nullptr});
  }
  std::vector<TensorDesc> out_descs(node.outputs.size());
  InferContext infer{node, opset, in_descs, out_descs};
  RETURN_IF_ERROR(op->infer(infer));
  std::vector<Tensor> outputs;
  for (size_t k = 0; k < out_descs.size(); ++k) {
    if (node.outputs[k].empty() || !out_descs[k].defined()) {
      outputs.emplace_back();
      continue;
    }
    absl::StatusOr<Tensor> t = Tensor::Allocate(out_descs[k].dtype, out_descs[k].shape, max_tensor_bytes);
    if (!t.ok()) {
      return absl::Status(t.status().code(), absl::StrCat(node.Describe(), ": ", t.status().message()));
    }
    outputs.push_back(*std::move(t));
  }
  ComputeContext compute{node, opset, inputs, absl::MakeSpan(outputs), 1};
  RETURN_IF_ERROR(op->compute(compute));
  return outputs;
}

std::vector<std::string> SupportedOps() {
  std::vector<std::string> names;
  for (const auto& [name, def] : Table()) {
    if (name.find('.') == std::string::npos) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace slimserve::runtime::reference
