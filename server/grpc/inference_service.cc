#include "server/grpc/inference_service.h"

#include <chrono>
#include <future>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "runtime/status_macros.h"
#include "server/core/config.h"
#include "server/grpc/grpc_status.h"
#include "server/grpc/tensor_codec.h"

namespace slimserve::server {
namespace {

using Clock = std::chrono::steady_clock;

void AddTensorMetadata(const std::string& name, inference::DataType type,
                       const google::protobuf::RepeatedField<int64_t>& dims, bool batching,
                       inference::ModelMetadataResponse::TensorMetadata* out) {
  out->set_name(name);
  out->set_datatype(WireDataType(*FromConfigDataType(type)));
  if (batching) out->add_shape(-1);
  for (int64_t d : dims) out->add_shape(d);
}

}  // namespace

grpc::Status InferenceService::ServerLive(grpc::ServerContext*, const inference::ServerLiveRequest*,
                                          inference::ServerLiveResponse* response) {
  response->set_live(true);
  return grpc::Status::OK;
}

grpc::Status InferenceService::ServerReady(grpc::ServerContext*, const inference::ServerReadyRequest*,
                                           inference::ServerReadyResponse* response) {
  response->set_ready(ready_);
  return grpc::Status::OK;
}

grpc::Status InferenceService::ServerMetadata(grpc::ServerContext*, const inference::ServerMetadataRequest*,
                                              inference::ServerMetadataResponse* response) {
  response->set_name(kServerName);
  response->set_version(kServerVersion);
  for (const char* extension : {"model_repository", "model_configuration", "schedule_policy", "statistics",
                                "binary_tensor_data"}) {
    response->add_extensions(extension);
  }
  return grpc::Status::OK;
}

grpc::Status InferenceService::ModelReady(grpc::ServerContext*, const inference::ModelReadyRequest* request,
                                          inference::ModelReadyResponse* response) {
  response->set_ready(models_.Get(request->name(), request->version()).ok());
  return grpc::Status::OK;
}

grpc::Status InferenceService::ModelMetadata(grpc::ServerContext*, const inference::ModelMetadataRequest* request,
                                             inference::ModelMetadataResponse* response) {
  absl::StatusOr<std::shared_ptr<Model>> model = models_.Get(request->name(), request->version());
  if (!model.ok()) return ToGrpc(model.status());
  const inference::ModelConfig& config = (*model)->config();
  const bool batching = config.max_batch_size() > 0;
  response->set_name((*model)->name());
  for (const std::string& v : models_.Versions(request->name())) response->add_versions(v);
  response->set_platform(config.platform());
  for (const auto& in : config.input()) {
    AddTensorMetadata(in.name(), in.data_type(), in.dims(), batching, response->add_inputs());
  }
  for (const auto& out : config.output()) {
    AddTensorMetadata(out.name(), out.data_type(), out.dims(), batching, response->add_outputs());
  }
  return grpc::Status::OK;
}

grpc::Status InferenceService::ModelConfig(grpc::ServerContext*, const inference::ModelConfigRequest* request,
                                           inference::ModelConfigResponse* response) {
  absl::StatusOr<std::shared_ptr<Model>> model = models_.Get(request->name(), request->version());
  if (!model.ok()) return ToGrpc(model.status());
  *response->mutable_config() = (*model)->config();
  return grpc::Status::OK;
}

grpc::Status InferenceService::ModelStatistics(grpc::ServerContext*, const inference::ModelStatisticsRequest* request,
                                               inference::ModelStatisticsResponse* response) {
  if (!request->name().empty()) {
    absl::StatusOr<std::shared_ptr<Model>> model = models_.Get(request->name(), request->version());
    if (!model.ok()) return ToGrpc(model.status());
  }
  for (const auto& model : models_.Loaded(request->name())) {
    if (!request->version().empty() && model->version_text() != request->version()) continue;
    model->FillStatistics(*response->add_model_stats());
  }
  return grpc::Status::OK;
}

void InferenceService::Drain(std::chrono::milliseconds timeout) {
  draining_ = true;
  const auto deadline = Clock::now() + timeout;
  while (in_flight_ > 0 && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

void InferenceService::Infer(const inference::ModelInferRequest& request, inference::ModelInferResponse& response,
                             std::function<void(const absl::Status&)> done) {
  ++in_flight_;
  auto finish = [this, done = std::move(done)](const absl::Status& status) {
    done(status);
    --in_flight_;
  };
  if (draining_) return finish(absl::UnavailableError("slimserve is shutting down; send the request to another replica"));
  const auto start = Clock::now();
  absl::StatusOr<std::shared_ptr<Model>> found = models_.Get(request.model_name(), request.model_version());
  if (!found.ok()) return finish(found.status());
  std::shared_ptr<Model> model = *std::move(found);
  // Counts the request, whatever its outcome, in the model's statistics.
  auto record = [model, start](const absl::Status& status, RequestTimes times, int64_t rows) {
    times.total = std::chrono::duration<double>(Clock::now() - start).count();
    model->RecordRequest(status, times, rows);
  };
  InferRequest run;
  std::vector<std::string> names;
  absl::Status checked = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(auto named, DecodeInputs(request, options_.max_tensor_bytes));
    ASSIGN_OR_RETURN(run.inputs, model->ArrangeInputs(std::move(named)));
    for (const auto& out : request.outputs()) {
      ASSIGN_OR_RETURN(int index, model->OutputIndex(out.name()));
      run.outputs.push_back(index);
      names.push_back(out.name());
    }
    if (request.outputs_size() == 0) {
      for (int i = 0; i < model->config().output_size(); ++i) {
        run.outputs.push_back(i);
        names.push_back(model->config().output(i).name());
      }
    }
    return absl::OkStatus();
  }();
  if (!checked.ok()) {
    record(checked, {}, 1);
    return finish(checked);
  }
  const int64_t rows = model->Rows(run);
  model->SampleTraffic(run.inputs);
  model->Submit(std::move(run), [&request, &response, model, names = std::move(names), rows, record,
                                 finish](absl::StatusOr<InferResult> result) {
    if (result.ok()) {
      response.set_model_name(model->name());
      response.set_model_version(model->version_text());
      response.set_id(request.id());
      EncodeOutputs(names, result->outputs, UsesTypedContents(request), response);
    }
    record(result.status(), result.ok() ? result->times : RequestTimes{}, rows);
    finish(result.status());
  });
}

grpc::ServerUnaryReactor* InferenceService::ModelInfer(grpc::CallbackServerContext* context,
                                                       const inference::ModelInferRequest* request,
                                                       inference::ModelInferResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  Infer(*request, *response, [reactor](const absl::Status& status) { reactor->Finish(ToGrpc(status)); });
  return reactor;
}

grpc::Status InferenceService::ModelStreamInfer(
    grpc::ServerContext*,
    grpc::ServerReaderWriter<inference::ModelStreamInferResponse, inference::ModelInferRequest>* stream) {
  inference::ModelInferRequest request;
  while (stream->Read(&request)) {
    inference::ModelStreamInferResponse reply;
    // Shared: the instance thread may still be inside set_value when get returns.
    auto outcome = std::make_shared<std::promise<absl::Status>>();
    Infer(request, *reply.mutable_infer_response(), [outcome](const absl::Status& s) { outcome->set_value(s); });
    const absl::Status status = outcome->get_future().get();
    if (!status.ok()) {
      reply.clear_infer_response();
      reply.mutable_infer_response()->set_id(request.id());
      reply.set_error_message(absl::StrCat(absl::StatusCodeToString(status.code()), ": ", status.message()));
    }
    if (!stream->Write(reply)) break;
  }
  return grpc::Status::OK;
}

grpc::Status InferenceService::RepositoryIndex(grpc::ServerContext*, const inference::RepositoryIndexRequest* request,
                                               inference::RepositoryIndexResponse* response) {
  for (const ModelIndexEntry& e : models_.Index()) {
    if (request->ready() && e.state != "READY") continue;
    auto* m = response->add_models();
    m->set_name(e.name);
    m->set_version(e.version);
    m->set_state(e.state);
    m->set_reason(e.reason);
  }
  return grpc::Status::OK;
}

grpc::Status InferenceService::RepositoryModelLoad(grpc::ServerContext*,
                                                   const inference::RepositoryModelLoadRequest* request,
                                                   inference::RepositoryModelLoadResponse*) {
  std::optional<inference::ModelConfig> config;
  std::map<std::string, std::string> files;
  for (const auto& [key, value] : request->parameters()) {
    if (key == "config") {
      if (value.parameter_choice_case() != inference::ModelRepositoryParameter::kStringParam) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "parameter 'config' must be a string_param (JSON)");
      }
      absl::StatusOr<inference::ModelConfig> parsed = ParseConfigJson(value.string_param());
      if (!parsed.ok()) return ToGrpc(parsed.status());
      if (!parsed->name().empty() && parsed->name() != request->model_name()) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            absl::StrCat("config names model '", parsed->name(), "' but the request loads '",
                                         request->model_name(), "'"));
      }
      config = *std::move(parsed);
    } else if (absl::StartsWith(key, "file:")) {
      if (value.parameter_choice_case() != inference::ModelRepositoryParameter::kBytesParam) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, absl::StrCat("parameter '", key, "' must be bytes_param"));
      }
      if (value.bytes_param().empty()) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, absl::StrCat("parameter '", key, "' is an empty file"));
      }
      if (static_cast<int64_t>(value.bytes_param().size()) > options_.max_model_bytes) {
        return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                            absl::StrCat("file '", key, "' has ", value.bytes_param().size(),
                                         " bytes, over the limit of ", options_.max_model_bytes,
                                         " (--max-model-bytes)"));
      }
      files[key.substr(5)] = value.bytes_param();
    } else {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrCat("unknown load parameter '", key, "' (known: config, file:<version>/<name>)"));
    }
  }
  return ToGrpc(models_.Load(request->model_name(), config, files));
}

grpc::Status InferenceService::RepositoryModelUnload(grpc::ServerContext*,
                                                     const inference::RepositoryModelUnloadRequest* request,
                                                     inference::RepositoryModelUnloadResponse*) {
  return ToGrpc(models_.Unload(request->model_name()));
}

}  // namespace slimserve::server
