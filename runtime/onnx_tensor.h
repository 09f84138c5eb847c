// Conversion between onnx::TensorProto and Tensor. Used by the importer and by
// tests that read ONNX's test_data_set_N/*.pb files.
#ifndef SLIMSERVE_RUNTIME_ONNX_TENSOR_H_
#define SLIMSERVE_RUNTIME_ONNX_TENSOR_H_

#include <string>

#include "absl/status/statusor.h"
#include "onnx/onnx_pb.h"
#include "runtime/tensor.h"

namespace slimserve::runtime {

// `base_dir` resolves external data ("" forbids it); sizes over
// `max_tensor_bytes` are rejected before allocation.
absl::StatusOr<Tensor> TensorFromProto(const onnx::TensorProto& proto, const std::string& base_dir,
                                       int64_t max_tensor_bytes);

// A sparse initializer as a dense tensor: `values` at the positions given by
// `indices` (int64, linear [NNZ] or coordinates [NNZ, rank]), zeros elsewhere.
absl::StatusOr<Tensor> DenseFromSparseProto(const onnx::SparseTensorProto& proto, const std::string& base_dir,
                                            int64_t max_tensor_bytes);

// Reads a serialized TensorProto file; `name` receives its name field.
absl::StatusOr<Tensor> ReadTensorProtoFile(const std::string& path, std::string* name = nullptr);

}  // namespace slimserve::runtime

#endif  // SLIMSERVE_RUNTIME_ONNX_TENSOR_H_
