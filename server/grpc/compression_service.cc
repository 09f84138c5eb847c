#include "server/grpc/compression_service.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "server/grpc/grpc_status.h"

namespace slimserve::server {
namespace {

// Copies a StatusOr's value into `out`, or returns its error.
template <typename T>
grpc::Status Reply(absl::StatusOr<T> result, T* out) {
  if (!result.ok()) return ToGrpc(result.status());
  *out = *std::move(result);
  return grpc::Status::OK;
}

}  // namespace

grpc::Status CompressionService::CreateVariant(grpc::ServerContext*, const v1::CreateVariantRequest* request,
                                               v1::Job* job) {
  return Reply(compressor_.CreateVariant(*request), job);
}

grpc::Status CompressionService::GetJob(grpc::ServerContext*, const v1::JobRef* request, v1::Job* job) {
  return Reply(compressor_.GetJob(request->id()), job);
}

grpc::Status CompressionService::WatchJob(grpc::ServerContext* context, const v1::JobRef* request,
                                          grpc::ServerWriter<v1::Job>* writer) {
  return ToGrpc(compressor_.WatchJob(request->id(), [&](const v1::Job& job) {
    return !context->IsCancelled() && writer->Write(job);
  }));
}

grpc::Status CompressionService::CancelJob(grpc::ServerContext*, const v1::JobRef* request, v1::Job* job) {
  return Reply(compressor_.CancelJob(request->id()), job);
}

grpc::Status CompressionService::ListJobs(grpc::ServerContext*, const v1::ListJobsRequest* request,
                                          v1::ListJobsResponse* response) {
  for (v1::Job& job : compressor_.Jobs(request->model())) *response->add_jobs() = std::move(job);
  return grpc::Status::OK;
}

grpc::Status CompressionService::ListVariants(grpc::ServerContext*, const v1::ListVariantsRequest* request,
                                              v1::ListVariantsResponse* response) {
  for (v1::Variant& v : compressor_.Variants(request->model())) *response->add_variants() = std::move(v);
  return grpc::Status::OK;
}

grpc::Status CompressionService::DeleteVariant(grpc::ServerContext*, const v1::VariantRef* request,
                                               v1::DeleteVariantResponse*) {
  return ToGrpc(compressor_.DeleteVariant(request->model(), request->variant()));
}

grpc::Status CompressionService::PromoteVariant(grpc::ServerContext*, const v1::PromoteVariantRequest* request,
                                                v1::Variant* variant) {
  return Reply(compressor_.Promote(*request), variant);
}

grpc::Status CompressionService::ExportVariant(grpc::ServerContext* context, const v1::VariantRef* request,
                                               grpc::ServerWriter<v1::FileChunk>* writer) {
  absl::StatusOr<std::string> path = compressor_.VariantFile(request->model(), request->variant());
  if (!path.ok()) return ToGrpc(path.status());
  std::ifstream in(*path, std::ios::binary | std::ios::ate);
  if (!in) return grpc::Status(grpc::StatusCode::UNAVAILABLE, absl::StrCat("cannot open ", *path));
  const int64_t total = in.tellg();
  in.seekg(0);
  constexpr int64_t kChunk = 1 << 20;
  v1::FileChunk chunk;
  chunk.set_total_bytes(total);
  for (int64_t sent = 0; sent < total || sent == 0; sent += kChunk) {
    std::string& data = *chunk.mutable_data();
    data.resize(static_cast<size_t>(std::min(kChunk, total - sent)));
    if (!in.read(data.data(), static_cast<std::streamsize>(data.size()))) {
      return grpc::Status(grpc::StatusCode::DATA_LOSS, absl::StrCat("cannot read ", *path));
    }
    if (context->IsCancelled() || !writer->Write(chunk)) return grpc::Status::CANCELLED;
    chunk.clear_total_bytes();
    if (total == 0) break;
  }
  return grpc::Status::OK;
}

grpc::Status CompressionService::UploadDataSet(grpc::ServerContext* context,
                                               grpc::ServerReader<v1::DataSetChunk>* reader, v1::DataSetInfo* info) {
  DataSetUpload upload(compressor_.max_dataset_bytes());
  v1::DataSetChunk chunk;
  while (reader->Read(&chunk)) {
    const absl::Status added = upload.Add(chunk);
    if (!added.ok()) return ToGrpc(added);
  }
  if (context->IsCancelled()) {
    return grpc::Status(grpc::StatusCode::CANCELLED, "the upload was cut off; nothing was stored");
  }
  absl::StatusOr<v1::StoredDataSet> data = upload.Finish();
  if (!data.ok()) return ToGrpc(data.status());
  return Reply(compressor_.datasets().Put(*std::move(data)), info);
}

grpc::Status CompressionService::ListDataSets(grpc::ServerContext*, const v1::ListDataSetsRequest*,
                                              v1::ListDataSetsResponse* response) {
  for (v1::DataSetInfo& info : compressor_.datasets().List()) *response->add_data_sets() = std::move(info);
  return grpc::Status::OK;
}

grpc::Status CompressionService::DeleteDataSet(grpc::ServerContext*, const v1::DataSetRef* request,
                                               v1::DataSetInfo* info) {
  return Reply(compressor_.datasets().Remove(request->name()), info);
}

}  // namespace slimserve::server
