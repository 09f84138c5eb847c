// slimctl's client commands: they talk to a running slimserve (or any Open
// Inference Protocol gRPC server) at --url.
#ifndef SLIMSERVE_CLI_CLIENT_H_
#define SLIMSERVE_CLI_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "cli/args.h"

namespace slimserve::cli {

// A channel to --url (default localhost:8001), without message size limits.
std::shared_ptr<grpc::Channel> Connect(const Args& args);
// `what` failed with `status` (same code), or OK.
absl::Status FromGrpc(const grpc::Status& status, const std::string& what);
// Client deadline for one call.
void SetDeadline(grpc::ClientContext& context, int seconds);

// True for the names of client commands.
bool IsClientCommand(const std::string& command);
// Runs `command` with the arguments after its name; returns the exit code.
int ClientCommand(const std::string& command, int argc, char** argv);

}  // namespace slimserve::cli

#endif  // SLIMSERVE_CLI_CLIENT_H_
