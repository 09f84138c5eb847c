#include "runtime/reference/op_registry.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace slimserve::runtime::reference {
namespace {

const OpTable& Table() {
  static const OpTable* table = [] {
    auto* t = new OpTable;
    RegisterElementwiseOps(*t);
    RegisterTensorOps(*t);
    RegisterNnOps(*t);
    RegisterReduceOps(*t);
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

std::vector<std::string> SupportedOps() {
  std::vector<std::string> names;
  for (const auto& [name, def] : Table()) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace slimserve::runtime::reference
