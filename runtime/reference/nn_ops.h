// The neural-network op families that RegisterNnOps (nn_ops.cc) assembles,
// one per file, plus checks they share. Internal to the reference backend.
#ifndef SLIMSERVE_RUNTIME_REFERENCE_NN_OPS_H_
#define SLIMSERVE_RUNTIME_REFERENCE_NN_OPS_H_

#include <initializer_list>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/reference/op_registry.h"

namespace slimserve::runtime::reference {

void RegisterConvOps(OpTable& table);    // conv.cc: Conv, ConvTranspose
void RegisterPoolOps(OpTable& table);    // pool.cc: MaxPool, AveragePool, LpPool, Global*Pool
void RegisterNormOps(OpTable& table);    // norm.cc: BatchNormalization, LayerNormalization, ...
void RegisterEinsumOps(OpTable& table);  // einsum.cc

// OK when the given inputs among [first, last) all have input `first`'s type
// and it is in `allowed`. float16 and bfloat16 are Unimplemented (valid ONNX
// this runtime does not compute), other types InvalidArgument.
absl::Status CheckInputTypes(InferContext& c, size_t first, size_t last,
                             std::initializer_list<DataType> allowed);
// The node's `axis` attribute (default `fallback`) in [0, rank); the error
// names the node.
absl::StatusOr<int64_t> AxisAttribute(const Node& node, int64_t fallback, int64_t rank);

// `axes` each in [0, rank), checked to be in range and distinct.
absl::StatusOr<std::vector<int64_t>> NormalizeAxes(const Node& node, absl::Span<const int64_t> axes,
                                                   int64_t rank);

inline constexpr std::initializer_list<DataType> kFloatTypes = {DataType::kFloat32,
                                                                DataType::kFloat64};

}  // namespace slimserve::runtime::reference

#endif  // SLIMSERVE_RUNTIME_REFERENCE_NN_OPS_H_
