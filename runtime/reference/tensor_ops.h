// Internals shared by the data-movement kernels: tensor_ops.cc, index_ops.cc
// and resize.cc. Not a public interface: only those files include it.
#ifndef SLIMSERVE_RUNTIME_REFERENCE_TENSOR_OPS_H_
#define SLIMSERVE_RUNTIME_REFERENCE_TENSOR_OPS_H_

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "runtime/reference/common.h"
#include "runtime/reference/op_registry.h"
#include "runtime/tensor.h"

namespace slimserve::runtime::reference {

// Gather, GatherElements, GatherND, the Scatters, OneHot (index_ops.cc) and
// Resize, Upsample (resize.cc); called by RegisterTensorOps.
void RegisterIndexOps(OpTable& table);
void RegisterResizeOps(OpTable& table);

// Calls f(TypeTag<U>{}) with the unsigned type as wide as dtype's elements:
// moving data needs only the bits, and this covers float16, bfloat16 and bool.
template <typename F>
absl::Status VisitBytes(DataType dtype, F&& f) {
  switch (DataTypeSize(dtype)) {
    case 1:
      return f(TypeTag<uint8_t>{});
    case 2:
      return f(TypeTag<uint16_t>{});
    case 4:
      return f(TypeTag<uint32_t>{});
    case 8:
      return f(TypeTag<uint64_t>{});
    default:
      return absl::UnimplementedError(absl::StrCat("type ", DataTypeName(dtype), " not supported"));
  }
}

// An axis that indexes a shape of the given rank, from an attribute or input
// (Ctx is InferContext or ComputeContext). NormalizeAxis accepts axis 0 of a
// scalar, which would index past the end of its shape.
template <typename Ctx>
absl::StatusOr<int64_t> AxisOf(const Ctx& c, int64_t axis, size_t rank) {
  if (rank == 0) return c.Error("needs an input of rank 1 or more");
  absl::StatusOr<int64_t> a = NormalizeAxis(axis, static_cast<int64_t>(rank));
  if (!a.ok()) return c.Error(a.status().message());
  return *a;
}

inline bool IsIndexType(DataType t) { return t == DataType::kInt32 || t == DataType::kInt64; }

// Copies `bytes` bytes unless there are none (empty tensors may have no memory).
inline void CopyBytes(void* dst, const void* src, size_t bytes) {
  if (bytes > 0) std::memcpy(dst, src, bytes);
}

// Input i's value, or nullptr when the input is omitted. Ops read the inputs
// that decide their output shapes (OpDef::value_inputs) through these, so that
// one templated function serves infer and compute alike. At load time such an
// input must be a constant: the executor folds it or keys plans on it.
absl::StatusOr<const Tensor*> ValueOf(const InferContext& c, size_t i);
absl::StatusOr<const Tensor*> ValueOf(const ComputeContext& c, size_t i);

// Sets every element of out to the element at `value` (any type).
absl::Status Fill(Tensor& out, const void* value);

// out[o] = in[maps[0][o_0], ..., maps[r-1][o_r-1]], or the element at `fill`
// (one element of the tensor's type) where any maps[d][o_d] is -1. Indices must
// be in range for `in`; maps[d] has out.dim(d) entries. Any element type. The
// kernel of Pad and of nearest-neighbour Resize.
absl::Status GatherByAxisMaps(const Tensor& in, const std::vector<std::vector<int64_t>>& maps,
                              const void* fill, Tensor& out);

}  // namespace slimserve::runtime::reference

#endif  // SLIMSERVE_RUNTIME_REFERENCE_TENSOR_OPS_H_
