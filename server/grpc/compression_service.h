// slimserve.v1.Compression over the Compressor: decode, call the core,
// encode. Streams: WatchJob writes the job on every change; ExportVariant
// sends the file in 1 MiB chunks; UploadDataSet joins the client's chunks
// and stores the data set only when the stream ends cleanly.
#ifndef SLIMSERVE_SERVER_GRPC_COMPRESSION_SERVICE_H_
#define SLIMSERVE_SERVER_GRPC_COMPRESSION_SERVICE_H_

#include "proto/compression.grpc.pb.h"
#include "server/core/compressor.h"

namespace slimserve::server {

class CompressionService final : public v1::Compression::Service {
 public:
  explicit CompressionService(Compressor& compressor) : compressor_(compressor) {}

  grpc::Status CreateVariant(grpc::ServerContext*, const v1::CreateVariantRequest* request, v1::Job* job) override;
  grpc::Status GetJob(grpc::ServerContext*, const v1::JobRef* request, v1::Job* job) override;
  grpc::Status WatchJob(grpc::ServerContext* context, const v1::JobRef* request,
                        grpc::ServerWriter<v1::Job>* writer) override;
  grpc::Status CancelJob(grpc::ServerContext*, const v1::JobRef* request, v1::Job* job) override;
  grpc::Status ListJobs(grpc::ServerContext*, const v1::ListJobsRequest* request,
                        v1::ListJobsResponse* response) override;
  grpc::Status ListVariants(grpc::ServerContext*, const v1::ListVariantsRequest* request,
                            v1::ListVariantsResponse* response) override;
  grpc::Status DeleteVariant(grpc::ServerContext*, const v1::VariantRef* request,
                             v1::DeleteVariantResponse* response) override;
  grpc::Status PromoteVariant(grpc::ServerContext*, const v1::PromoteVariantRequest* request,
                              v1::Variant* variant) override;
  grpc::Status ExportVariant(grpc::ServerContext* context, const v1::VariantRef* request,
                             grpc::ServerWriter<v1::FileChunk>* writer) override;
  grpc::Status UploadDataSet(grpc::ServerContext* context, grpc::ServerReader<v1::DataSetChunk>* reader,
                             v1::DataSetInfo* info) override;
  grpc::Status ListDataSets(grpc::ServerContext*, const v1::ListDataSetsRequest* request,
                            v1::ListDataSetsResponse* response) override;
  grpc::Status DeleteDataSet(grpc::ServerContext*, const v1::DataSetRef* request, v1::DataSetInfo* info) override;

 private:
  Compressor& compressor_;
};

}  // namespace slimserve::server

#endif  // SLIMSERVE_SERVER_GRPC_COMPRESSION_SERVICE_H_
