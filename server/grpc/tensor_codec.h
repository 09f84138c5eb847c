// Conversion between Open Inference Protocol tensors (raw bytes or typed
// contents) and runtime tensors, with every size checked against the shape.
#ifndef SLIMSERVE_SERVER_GRPC_TENSOR_CODEC_H_
#define SLIMSERVE_SERVER_GRPC_TENSOR_CODEC_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/grpc_service.pb.h"
#include "runtime/tensor.h"

namespace slimserve::server {

// The request's inputs as (name, tensor), in request order.
absl::StatusOr<std::vector<std::pair<std::string, runtime::Tensor>>> DecodeInputs(
    const inference::ModelInferRequest& request, int64_t max_tensor_bytes);

// Appends `tensors` to `response` as outputs `names`: as raw bytes, or as
// typed contents when `typed` and no output is FP16 or BF16.
void EncodeOutputs(const std::vector<std::string>& names, const std::vector<runtime::Tensor>& tensors, bool typed,
                   inference::ModelInferResponse& response);

// Output `i` of `response` (raw or typed), for clients.
absl::StatusOr<runtime::Tensor> DecodeOutput(const inference::ModelInferResponse& response, int i);
// Appends `tensor` to `request` as input `name`, in raw_input_contents.
void EncodeInput(const std::string& name, const runtime::Tensor& tensor, inference::ModelInferRequest& request);

// Whether any input of `request` carries typed contents.
bool UsesTypedContents(const inference::ModelInferRequest& request);

}  // namespace slimserve::server

#endif  // SLIMSERVE_SERVER_GRPC_TENSOR_CODEC_H_
