// slimserve: the inference server. The only place flags are parsed.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cli/args.h"
#include "runtime/openmp_env.h"
#include "server/core/model_manager.h"
#include "server/core/compressor.h"
#include "server/grpc/compression_service.h"
#include "server/grpc/inference_service.h"
#include "server/metrics/prometheus_metrics.h"

namespace slimserve::server {
namespace {

constexpr char kUsage[] =
    "usage: slimserve --model-repository DIR [options]\n"
    "Serves the ONNX models of a Triton-layout repository over the Open Inference Protocol (gRPC,\n"
    "KServe v2 / Triton), with Prometheus metrics over HTTP.\n"
    "  --model-repository DIR     <DIR>/<model>/[config.pbtxt] and <DIR>/<model>/<version>/model.onnx\n"
    "  --grpc-port N              gRPC port (default 8001; 0 picks a free one, printed at start)\n"
    "  --grpc-address A           address to listen on (default 0.0.0.0)\n"
    "  --metrics-port N           Prometheus metrics at http://host:N/metrics (default 8002; 0: off)\n"
    "  --model-control-mode M     none: load the whole repository at start (default);\n"
    "                             explicit: load/unload/upload over the API (RepositoryModelLoad)\n"
    "  --load-model NAME          explicit mode: load NAME at start (repeatable; '*' = all)\n"
    "  --threads N                intra-op threads per model instance (default: all cores)\n"
    "  --backend B                auto|onednn|xnnpack|reference (default auto)\n"
    "  --max-message-bytes N      largest gRPC message (default 67108864: 8 images 3x640x640 fp32)\n"
    "  --max-model-bytes N        largest model file accepted (default 1073741824)\n"
    "  --shutdown-timeout-s N     on SIGTERM/SIGINT, wait this long for accepted requests (default 30)\n"
    "Compression (slimserve.v1.Compression; variants are served as <model>.<variant>):\n"
    "  --state-dir DIR            variant cache, data sets and job records (default <repository>/.slimserve)\n"
    "  --compression-workers N    jobs built at once (default 1)\n"
    "  --compression-threads N    intra-op threads per job (default 1; jobs run under SCHED_IDLE)\n"
    "  --compression-busy-share F while requests are being answered, the share of time a job computes\n"
    "                             (default 0.1; 1: no yielding)\n"
    "  --variant-cache-bytes N    variant cache budget, oldest evicted first (default 4294967296)\n"
    "  --max-dataset-bytes N      largest data set upload (default 1073741824)\n"
    "  --traffic-sample-bytes N   per model, recent request inputs kept to calibrate on (default 33554432;\n"
    "                             0: none, and then 'data=traffic' profiles fail)\n";

int Fail(const std::string& message) {
  std::cerr << "slimserve: " << message << "\n";
  return 1;
}

int Serve(int argc, char** argv) {
  auto args = cli::Args::Parse(argc - 1, argv + 1, {"help"},
                               {"model-repository", "grpc-port", "grpc-address", "metrics-port",
                                "model-control-mode", "threads", "backend", "max-message-bytes", "max-model-bytes",
                                "shutdown-timeout-s", "state-dir", "compression-workers", "compression-threads",
                                "variant-cache-bytes", "max-dataset-bytes", "traffic-sample-bytes",
                                "compression-busy-share"},
                               {"load-model"});
  if (!args.ok()) return Fail(std::string(args.status().message()));
  if (args->Has("help")) {
    std::cout << kUsage;
    return 0;
  }
  if (!args->Has("model-repository") || !args->positional().empty()) {
    std::cerr << kUsage;
    return 2;
  }
  constexpr int kNumbers = 11;
  int64_t numbers[kNumbers];
  const char* names[kNumbers] = {"grpc-port",           "metrics-port",        "threads",
                                 "max-message-bytes",   "max-model-bytes",     "shutdown-timeout-s",
                                 "compression-workers", "compression-threads", "variant-cache-bytes",
                                 "max-dataset-bytes",   "traffic-sample-bytes"};
  const int64_t defaults[kNumbers] = {8001, 8002, 0, int64_t{64} << 20, int64_t{1} << 30, 30,
                                      1,    1,    int64_t{4} << 30, int64_t{1} << 30, int64_t{32} << 20};
  for (int i = 0; i < kNumbers; ++i) {
    absl::StatusOr<int64_t> v = args->GetInt(names[i], defaults[i]);
    if (!v.ok()) return Fail(std::string(v.status().message()));
    if (*v < 0) return Fail(absl::StrCat("--", names[i], " cannot be negative"));
    numbers[i] = *v;
  }
  const auto [grpc_port, metrics_port, threads, max_message, max_model, shutdown_s] =
      std::make_tuple(numbers[0], numbers[1], numbers[2], numbers[3], numbers[4], numbers[5]);
  if (numbers[6] < 1 || numbers[7] < 1) return Fail("--compression-workers and --compression-threads must be at least 1");
  const std::string mode = args->Get("model-control-mode", "none");
  if (mode != "none" && mode != "explicit") {
    return Fail("--model-control-mode is none or explicit");
  }
  if (mode == "none" && args->Has("load-model")) return Fail("--load-model needs --model-control-mode explicit");

  std::unique_ptr<MetricsSink> metrics = std::make_unique<NullMetrics>();
  if (metrics_port > 0) {
    auto prometheus = PrometheusMetrics::Start(absl::StrCat("0.0.0.0:", metrics_port));
    if (!prometheus.ok()) return Fail(std::string(prometheus.status().message()));
    metrics = *std::move(prometheus);
  }
  ManagerOptions manager_options;
  manager_options.repository = args->Get("model-repository");
  manager_options.explicit_control = mode == "explicit";
  manager_options.model.intra_op_threads = static_cast<int>(threads);
  manager_options.model.backend = args->Get("backend", "auto");
  manager_options.model.max_model_bytes = max_model;
  manager_options.model.traffic_sample_bytes = numbers[10];
  auto models = std::make_unique<ModelManager>(manager_options, metrics.get());
  CompressorOptions compressor_options;
  compressor_options.state_dir = args->Get("state-dir", manager_options.repository + "/.slimserve");
  compressor_options.workers = static_cast<int>(numbers[6]);
  compressor_options.threads = static_cast<int>(numbers[7]);
  compressor_options.cache_bytes = numbers[8];
  compressor_options.max_dataset_bytes = numbers[9];
  if (!absl::SimpleAtod(args->Get("compression-busy-share", "0.1"), &compressor_options.busy_share) ||
      !(compressor_options.busy_share > 0 && compressor_options.busy_share <= 1)) {
    return Fail("--compression-busy-share is a number in (0, 1]");
  }
  auto compressor = Compressor::Create(compressor_options, *models, metrics.get());
  if (!compressor.ok()) return Fail(std::string(compressor.status().message()));
  CompressionService compression(**compressor);
  ServiceOptions service_options;
  service_options.max_tensor_bytes = max_message;
  service_options.max_model_bytes = max_model;
  InferenceService service(*models, service_options);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(absl::StrCat(args->Get("grpc-address", "0.0.0.0"), ":", grpc_port),
                           grpc::InsecureServerCredentials(), &bound_port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(std::min<int64_t>(max_message, INT32_MAX)));
  builder.SetMaxSendMessageSize(static_cast<int>(std::min<int64_t>(max_message, INT32_MAX)));
  builder.RegisterService(&service);
  builder.RegisterService(&compression);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound_port == 0) {
    return Fail(absl::StrCat("cannot listen on port ", grpc_port, " (taken? choose one with --grpc-port)"));
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus(false);
  std::cout << "slimserve: gRPC on port " << bound_port;
  if (metrics_port > 0) std::cout << ", metrics on http://0.0.0.0:" << metrics_port << "/metrics";
  std::cout << "; loading models from " << manager_options.repository << std::endl;

  // Live at once; ready (and SERVING) once the models asked for at start are loaded.
  const std::vector<std::string> at_start = mode == "none" ? std::vector<std::string>{} : args->GetAll("load-model");
  absl::Status loaded = absl::OkStatus();
  if (mode == "none" || !at_start.empty()) loaded = models->LoadAtStart(at_start);
  for (const auto& e : models->Index()) {
    std::cout << "slimserve: model " << e.name << (e.version.empty() ? "" : " version " + e.version) << ": "
              << e.state << (e.reason.empty() ? "" : " (" + e.reason + ")") << std::endl;
  }
  service.SetReady(loaded.ok());
  health->SetServingStatus(loaded.ok());
  std::cout << "slimserve: " << (loaded.ok() ? "ready" : "serving, but not ready: a model failed to load")
            << std::endl;

  // SIGTERM/SIGINT: stop taking requests, finish the accepted ones, exit 0.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  int signal = 0;
  sigwait(&signals, &signal);
  std::cout << "slimserve: " << (signal == SIGTERM ? "SIGTERM" : "SIGINT") << ", finishing accepted requests"
            << std::endl;
  service.SetReady(false);
  health->SetServingStatus(false);
  const auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(shutdown_s);
  service.Drain(std::chrono::seconds(shutdown_s));
  server->Shutdown(deadline);
  server->Wait();
  compressor->reset();  // cancels jobs under way; their records say so at the next start
  models.reset();       // drains every model's queue
  std::cout << "slimserve: stopped" << std::endl;
  return 0;
}

}  // namespace
}  // namespace slimserve::server

int main(int argc, char** argv) {
  slimserve::UseShortOpenMpSpins(argv);
  // Signals go to the sigwait in Serve, not to whichever thread they hit.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return slimserve::server::Serve(argc, argv);
}
