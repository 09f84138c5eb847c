// The one place an absl::Status becomes a grpc::Status: the codes are the
// same numbers, the message is kept.
#ifndef SLIMSERVE_SERVER_GRPC_GRPC_STATUS_H_
#define SLIMSERVE_SERVER_GRPC_GRPC_STATUS_H_

#include <grpcpp/grpcpp.h>

#include <string>

#include "absl/status/status.h"

namespace slimserve::server {

inline grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

}  // namespace slimserve::server

#endif  // SLIMSERVE_SERVER_GRPC_GRPC_STATUS_H_
