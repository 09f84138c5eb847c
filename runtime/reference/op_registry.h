// The reference implementation of every supported ONNX operator: shape and
// type inference plus a plain C++ computation. It is the oracle other backends
// are tested against, the fallback for nodes no other backend claims, and the
// source of truth for output shapes.
//
// Each op family lives in its own file and registers itself through an
// explicit Register*Ops call from op_registry.cc (no static initializers).
// The table is built once and is immutable afterwards: thread-safe.
//
//   const OpDef* op = FindOp("Relu");
//   RETURN_IF_ERROR(op->infer(infer_context));
#ifndef SLIMSERVE_RUNTIME_REFERENCE_OP_REGISTRY_H_
#define SLIMSERVE_RUNTIME_REFERENCE_OP_REGISTRY_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "runtime/graph.h"
#include "runtime/kernel.h"
#include "runtime/tensor.h"

namespace slimserve::runtime::reference {

struct InferContext {
  const Node& node;
  int64_t opset;
  absl::Span<const TensorDesc> inputs;
  std::vector<TensorDesc>& outputs;  // sized to node.outputs; fill dtype and shape

  size_t num_inputs() const { return inputs.size(); }
  // Input i, or an undefined desc when it is omitted.
  const TensorDesc& input(size_t i) const;
  void SetOutput(size_t i, DataType dtype, Shape shape) const;
  // An InvalidArgument error prefixed with the node's description.
  absl::Status Error(absl::string_view message) const;
};

struct ComputeContext {
  const Node& node;
  int64_t opset;
  absl::Span<const Tensor> inputs;  // undefined Tensor for an omitted input
  absl::Span<Tensor> outputs;       // allocated with the inferred shapes
  int num_threads;

  size_t num_inputs() const { return inputs.size(); }
  const Tensor& input(size_t i) const;
  bool has_input(size_t i) const { return i < inputs.size() && inputs[i].defined(); }
  absl::Status Error(absl::string_view message) const;
};

using InferFn = absl::Status (*)(InferContext&);
using ComputeFn = absl::Status (*)(ComputeContext&);

struct OpDef {
  InferFn infer = nullptr;
  ComputeFn compute = nullptr;
  // Inputs whose values (not only shapes) shape inference needs, e.g. Reshape's
  // `shape`. The executor makes sure they are known at compile time.
  std::vector<int> value_inputs;
  // True when the outputs depend only on input shapes (Shape, Size).
  bool shape_only = false;
};

using OpTable = absl::flat_hash_map<std::string, OpDef>;

// The op for a default-domain op type, or nullptr.
const OpDef* FindOp(absl::string_view op_type);
// The op a node runs: default domain, or the runtime's fused ops; else nullptr.
const OpDef* FindOp(const Node& node);

// Computes a node on known inputs, once (constant folding). Inputs without
// data (null raw_data) are fine for ops that read only shapes.
absl::StatusOr<std::vector<Tensor>> Evaluate(const Node& node, int64_t opset,
                                             absl::Span<const Tensor> inputs,
                                             int64_t max_tensor_bytes);
// Sorted names of all supported op types.
std::vector<std::string> SupportedOps();

// Registration, one per op family (see op_registry.cc).
void RegisterElementwiseOps(OpTable& table);
void RegisterTensorOps(OpTable& table);
void RegisterNnOps(OpTable& table);
void RegisterReduceOps(OpTable& table);
void RegisterQuantizeOps(OpTable& table);
// The runtime's fused ops, keyed "slimserve.FusedConv" etc.
void RegisterFusedOps(OpTable& table);
// Their int8 forms, keyed "slimserve.QFusedConv" etc.
void RegisterQuantizedFusedOps(OpTable& table);

}  // namespace slimserve::runtime::reference

#endif  // SLIMSERVE_RUNTIME_REFERENCE_OP_REGISTRY_H_
