#include "server/core/config.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/status_macros.h"

namespace slimserve::server {
namespace {

using runtime::DataType;

struct TypeNames {
  DataType type;
  const char* wire;
  inference::DataType config;
};
constexpr TypeNames kTypes[] = {
    {DataType::kBool, "BOOL", inference::TYPE_BOOL},     {DataType::kUint8, "UINT8", inference::TYPE_UINT8},
    {DataType::kUint16, "UINT16", inference::TYPE_UINT16}, {DataType::kUint32, "UINT32", inference::TYPE_UINT32},
    {DataType::kUint64, "UINT64", inference::TYPE_UINT64}, {DataType::kInt8, "INT8", inference::TYPE_INT8},
    {DataType::kInt16, "INT16", inference::TYPE_INT16},   {DataType::kInt32, "INT32", inference::TYPE_INT32},
    {DataType::kInt64, "INT64", inference::TYPE_INT64},   {DataType::kFloat16, "FP16", inference::TYPE_FP16},
    {DataType::kFloat32, "FP32", inference::TYPE_FP32},   {DataType::kFloat64, "FP64", inference::TYPE_FP64},
    {DataType::kBFloat16, "BF16", inference::TYPE_BF16},
};

std::string DimsText(const google::protobuf::RepeatedField<int64_t>& dims) {
  return absl::StrCat("[", absl::StrJoin(dims, ","), "]");
}

// `graph_tensor`'s dims as the config states them: without the batch
// dimension when batching, -1 where the model leaves a dimension open.
std::vector<int64_t> ConfigDims(const runtime::ValueInfo& v, bool batching) {
  std::vector<int64_t> dims;
  for (size_t d = batching ? 1 : 0; d < v.shape.size(); ++d) dims.push_back(v.shape[d] < 0 ? -1 : v.shape[d]);
  return dims;
}

template <typename ConfigTensor>
absl::Status CompleteTensors(const std::vector<runtime::ValueInfo>& model_tensors, bool batching,
                             const char* what,
                             google::protobuf::RepeatedPtrField<ConfigTensor>& config_tensors) {
  for (const ConfigTensor& t : config_tensors) {
    bool found = false;
    for (const auto& v : model_tensors) found |= v.name == t.name();
    if (!found) {
      std::vector<std::string> names;
      for (const auto& v : model_tensors) names.push_back(v.name);
      return absl::InvalidArgumentError(absl::StrCat("config names ", what, " '", t.name(),
                                                     "', which the model does not have (it has: ",
                                                     absl::StrJoin(names, ", "), ")"));
    }
  }
  google::protobuf::RepeatedPtrField<ConfigTensor> completed;
  for (const runtime::ValueInfo& v : model_tensors) {
    ConfigTensor* t = completed.Add();
    for (const ConfigTensor& given : config_tensors) {
      if (given.name() == v.name) *t = given;
    }
    t->set_name(v.name);
    const inference::DataType type = ConfigDataType(v.dtype);
    if (type == inference::TYPE_INVALID) {
      return absl::UnimplementedError(absl::StrCat(what, " '", v.name, "' has type ",
                                                   runtime::DataTypeName(v.dtype), ", which the server cannot carry"));
    }
    if (t->data_type() != inference::TYPE_INVALID && t->data_type() != type) {
      return absl::InvalidArgumentError(absl::StrCat("config gives ", what, " '", v.name, "' type ",
                                                     inference::DataType_Name(t->data_type()), " but the model has ",
                                                     inference::DataType_Name(type)));
    }
    t->set_data_type(type);
    const std::vector<int64_t> model_dims = ConfigDims(v, batching);
    if (t->dims_size() == 0 && v.has_shape) {
      t->mutable_dims()->Assign(model_dims.begin(), model_dims.end());
    } else if (v.has_shape) {
      bool agree = static_cast<size_t>(t->dims_size()) == model_dims.size();
      for (size_t d = 0; agree && d < model_dims.size(); ++d) {
        agree = model_dims[d] < 0 || t->dims(d) == model_dims[d];
      }
      if (!agree) {
        return absl::InvalidArgumentError(absl::StrCat(
            "config gives ", what, " '", v.name, "' dims ", DimsText(t->dims()), " but the model has ",
            absl::StrCat("[", absl::StrJoin(model_dims, ","), "]"),
            batching ? " (without the batch dimension, as max_batch_size > 0)" : ""));
      }
    }
  }
  config_tensors.Swap(&completed);
  return absl::OkStatus();
}

bool FirstDimDynamic(const std::vector<runtime::ValueInfo>& tensors) {
  for (const auto& v : tensors) {
    if (!v.has_shape || v.shape.empty() || v.shape[0] >= 0) return false;
  }
  return true;
}

}  // namespace

// Keeps the parser's messages for the error instead of protobuf's log.
class ParseErrors : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column, const std::string& message) override {
    if (text.empty()) text = absl::StrCat("line ", line + 1, " column ", column + 1, ": ", message);
  }
  std::string text;
};

absl::StatusOr<inference::ModelConfig> ParseConfigText(const std::string& text) {
  inference::ModelConfig config;
  ParseErrors errors;
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &config)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not a ModelConfig in protobuf text format (see proto/model_config.proto): ", errors.text));
  }
  return config;
}

absl::StatusOr<inference::ModelConfig> ParseConfigJson(const std::string& json) {
  inference::ModelConfig config;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto status = google::protobuf::util::JsonStringToMessage(json, &config, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("the config parameter is not a ModelConfig in JSON: ",
                                                   std::string(status.message())));
  }
  return config;
}

absl::Status CompleteConfig(const runtime::Graph& graph, inference::ModelConfig& config) {
  if (config.platform().empty()) config.set_platform("onnxruntime_onnx");
  if (config.backend().empty()) config.set_backend("slimserve");
  const bool batchable = FirstDimDynamic(graph.inputs) && FirstDimDynamic(graph.outputs);
  if (config.max_batch_size() < 0) {
    return absl::InvalidArgumentError("max_batch_size must be 0 (no batching) or more");
  }
  if (config.max_batch_size() > kMaxBatchSize) {
    return absl::InvalidArgumentError(absl::StrCat("max_batch_size ", config.max_batch_size(), " is over the limit of ",
                                                   kMaxBatchSize));
  }
  if (config.max_batch_size() > 0 && !batchable) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_batch_size is ", config.max_batch_size(),
        " but not every input and output of the model has a dynamic first dimension to batch along; "
        "set max_batch_size: 0"));
  }
  // Like Triton's auto-completion: a model that can batch does, dynamically.
  const bool stated = config.input_size() > 0 || config.output_size() > 0;
  if (config.max_batch_size() == 0 && batchable && !stated) {
    config.set_max_batch_size(kDefaultMaxBatchSize);
    if (!config.has_dynamic_batching()) config.mutable_dynamic_batching();
  }
  const bool batching = config.max_batch_size() > 0;
  RETURN_IF_ERROR(CompleteTensors(graph.inputs, batching, "input", *config.mutable_input()));
  RETURN_IF_ERROR(CompleteTensors(graph.outputs, batching, "output", *config.mutable_output()));
  if (config.instance_group_size() == 0) config.add_instance_group()->set_count(1);
  int instances = 0;
  for (auto& group : *config.mutable_instance_group()) {
    if (group.kind() == inference::ModelInstanceGroup::KIND_GPU) {
      return absl::InvalidArgumentError("instance_group asks for KIND_GPU; this server runs on CPUs only");
    }
    if (group.count() <= 0) group.set_count(1);
    instances += std::min(group.count(), kMaxInstances + 1);
    if (instances > kMaxInstances) {
      return absl::InvalidArgumentError(absl::StrCat("instance_group counts add up to more than ", kMaxInstances));
    }
  }

  if (config.has_dynamic_batching()) {
    for (int size : config.dynamic_batching().preferred_batch_size()) {
      if (size <= 0 || size > config.max_batch_size()) {
        return absl::InvalidArgumentError(absl::StrCat("preferred_batch_size ", size,
                                                       " is outside 1..max_batch_size (", config.max_batch_size(), ")"));
      }
    }
  }
  return absl::OkStatus();
}

std::string WireDataType(DataType type) {
  for (const TypeNames& t : kTypes) {
    if (t.type == type) return t.wire;
  }
  return "INVALID";
}

std::optional<DataType> ParseWireDataType(const std::string& name) {
  for (const TypeNames& t : kTypes) {
    if (name == t.wire) return t.type;
  }
  return std::nullopt;
}

inference::DataType ConfigDataType(DataType type) {
  for (const TypeNames& t : kTypes) {
    if (t.type == type) return t.config;
  }
  return inference::TYPE_INVALID;
}

std::optional<DataType> FromConfigDataType(inference::DataType type) {
  for (const TypeNames& t : kTypes) {
    if (t.config == type) return t.type;
  }
  return std::nullopt;
}

}  // namespace slimserve::server
