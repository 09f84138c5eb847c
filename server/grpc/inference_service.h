// inference.GRPCInferenceService over the ModelManager: decodes each request,
// calls the core, encodes the reply; the one place where absl::Status becomes
// grpc::Status (the codes are the same numbers).
//
// ModelInfer uses gRPC's callback API: the handler queues the request and
// returns; the instance thread that ran it encodes the reply and finishes the
// call. No thread waits per request in flight, and a reply costs one thread
// hand-off fewer (~50 us on this VM, where waking a thread on the other core
// costs ~35 us).
#ifndef SLIMSERVE_SERVER_GRPC_INFERENCE_SERVICE_H_
#define SLIMSERVE_SERVER_GRPC_INFERENCE_SERVICE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>

#include "proto/grpc_service.grpc.pb.h"
#include "server/core/model_manager.h"

namespace slimserve::server {

inline constexpr char kServerName[] = "slimserve";
inline constexpr char kServerVersion[] = "0.1.0";

struct ServiceOptions {
  int64_t max_tensor_bytes = int64_t{1} << 30;
  int64_t max_model_bytes = int64_t{1} << 30;
};

class InferenceService final
    : public inference::GRPCInferenceService::WithCallbackMethod_ModelInfer<inference::GRPCInferenceService::Service> {
 public:
  InferenceService(ModelManager& models, ServiceOptions options) : models_(models), options_(options) {}

  // ServerReady's answer; false before the startup loads finish and while
  // shutting down.
  void SetReady(bool ready) { ready_ = ready; }
  // Shutdown, first step: new inference requests get UNAVAILABLE at once
  // (clients retry elsewhere); returns when the ones under way have finished
  // or `timeout` has passed.
  void Drain(std::chrono::milliseconds timeout);

  grpc::Status ServerLive(grpc::ServerContext*, const inference::ServerLiveRequest*,
                          inference::ServerLiveResponse* response) override;
  grpc::Status ServerReady(grpc::ServerContext*, const inference::ServerReadyRequest*,
                           inference::ServerReadyResponse* response) override;
  grpc::Status ServerMetadata(grpc::ServerContext*, const inference::ServerMetadataRequest*,
                              inference::ServerMetadataResponse* response) override;
  grpc::Status ModelReady(grpc::ServerContext*, const inference::ModelReadyRequest* request,
                          inference::ModelReadyResponse* response) override;
  grpc::Status ModelMetadata(grpc::ServerContext*, const inference::ModelMetadataRequest* request,
                             inference::ModelMetadataResponse* response) override;
  grpc::Status ModelConfig(grpc::ServerContext*, const inference::ModelConfigRequest* request,
                           inference::ModelConfigResponse* response) override;
  grpc::Status ModelStatistics(grpc::ServerContext*, const inference::ModelStatisticsRequest* request,
                               inference::ModelStatisticsResponse* response) override;
  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* context, const inference::ModelInferRequest* request,
                                       inference::ModelInferResponse* response) override;
  grpc::Status ModelStreamInfer(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<inference::ModelStreamInferResponse, inference::ModelInferRequest>* stream) override;
  grpc::Status RepositoryIndex(grpc::ServerContext*, const inference::RepositoryIndexRequest* request,
                               inference::RepositoryIndexResponse* response) override;
  grpc::Status RepositoryModelLoad(grpc::ServerContext*, const inference::RepositoryModelLoadRequest* request,
                                   inference::RepositoryModelLoadResponse* response) override;
  grpc::Status RepositoryModelUnload(grpc::ServerContext*, const inference::RepositoryModelUnloadRequest* request,
                                     inference::RepositoryModelUnloadResponse* response) override;

 private:
  // Checks `request`, runs it and fills `response`; `done` gets the outcome,
  // on the instance thread that ran the request or, if it failed before
  // reaching the model, on this one. Both messages must outlive `done`.
  void Infer(const inference::ModelInferRequest& request, inference::ModelInferResponse& response,
             std::function<void(const absl::Status&)> done);

  ModelManager& models_;
  const ServiceOptions options_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> in_flight_{0};
};

}  // namespace slimserve::server

#endif  // SLIMSERVE_SERVER_GRPC_INFERENCE_SERVICE_H_
