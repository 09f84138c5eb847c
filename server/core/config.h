// Model configuration: Triton's ModelConfig (proto/model_config.proto), read
// from config.pbtxt (text format) or an upload's JSON, completed from the ONNX
// model where it is silent and checked against the model where it speaks.
//
//   ASSIGN_OR_RETURN(inference::ModelConfig config, ParseConfigText(text));
//   RETURN_IF_ERROR(CompleteConfig(graph, config));
#ifndef SLIMSERVE_SERVER_CORE_CONFIG_H_
#define SLIMSERVE_SERVER_CORE_CONFIG_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "proto/model_config.pb.h"
#include "runtime/dtype.h"
#include "runtime/graph.h"

namespace slimserve::server {

// Largest batch a model gets when its config does not say and every input
// and output has a dynamic first dimension.
inline constexpr int kDefaultMaxBatchSize = 8;
// Limits on what a config may ask for.
inline constexpr int kMaxBatchSize = 4096;
inline constexpr int kMaxInstances = 64;

absl::StatusOr<inference::ModelConfig> ParseConfigText(const std::string& text);
absl::StatusOr<inference::ModelConfig> ParseConfigJson(const std::string& json);

// Fills what `config` leaves out from `graph` (inputs, outputs, their types and
// dims, max_batch_size, dynamic batching, one instance) and checks that what it
// states matches the model: every named tensor exists with that type, dims
// agree, max_batch_size > 0 only if the first dimension is dynamic.
absl::Status CompleteConfig(const runtime::Graph& graph, inference::ModelConfig& config);

// Open Inference Protocol datatype names ("FP32", "INT64", ...).
std::string WireDataType(runtime::DataType type);
std::optional<runtime::DataType> ParseWireDataType(const std::string& name);
// Config enum <-> runtime types; TYPE_INVALID / nullopt where there is none.
inference::DataType ConfigDataType(runtime::DataType type);
std::optional<runtime::DataType> FromConfigDataType(inference::DataType type);

}  // namespace slimserve::server

#endif  // SLIMSERVE_SERVER_CORE_CONFIG_H_
