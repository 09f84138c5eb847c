// Starts the real slimserve binary on 127.0.0.1 for tests: free ports, a
// private copy of a model repository, stdout captured to learn the gRPC port.
#ifndef SLIMSERVE_TESTS_SERVER_SERVER_PROCESS_H_
#define SLIMSERVE_TESTS_SERVER_SERVER_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "proto/grpc_service.grpc.pb.h"

namespace slimserve::testing {

// A port nothing listens on now (bound to port 0 and released).
int FreePort();

class ServerProcess {
 public:
  // Runs `binary` with `args` plus --grpc-port 0 and --metrics-port; waits
  // until it prints that it is ready (or fails).
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(const std::string& binary,
                                                               std::vector<std::string> args);
  // Start() serving every model of `repository` (explicit model control, two
  // threads), with `extra` arguments after those.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> ServeRepository(const std::string& binary,
                                                                         const std::string& repository,
                                                                         const std::vector<std::string>& extra);
  ~ServerProcess();  // SIGKILL if still running

  int grpc_port() const { return grpc_port_; }
  int metrics_port() const { return metrics_port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(grpc_port_); }
  std::unique_ptr<inference::GRPCInferenceService::Stub> Stub(int max_message_bytes = -1) const;
  // GET http://127.0.0.1:<metrics port>/metrics.
  absl::StatusOr<std::string> ScrapeMetrics() const;
  // Sends SIGTERM and waits up to `timeout_s` for the exit; returns the exit
  // code (-1 on timeout or a signal death).
  int Terminate(int timeout_s);
  // Everything the server printed so far.
  std::string output() const;

 private:
  pid_t pid_ = -1;
  int grpc_port_ = 0;
  int metrics_port_ = 0;
  std::string log_path_;
};

// A fresh temporary directory.
std::string TempDir();

// The sum of a Prometheus metric's samples whose labels contain `labels`
// (e.g. "model=\"m\""), or -1 when absent.
double MetricValue(const std::string& text, const std::string& name, const std::string& labels);

}  // namespace slimserve::testing

#endif  // SLIMSERVE_TESTS_SERVER_SERVER_PROCESS_H_
