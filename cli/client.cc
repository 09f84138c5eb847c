#include "cli/client.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/common.h"
#include "cli/variants.h"
#include "proto/grpc_service.grpc.pb.h"
#include "proto/health.grpc.pb.h"
#include "runtime/npy.h"
#include "runtime/status_macros.h"
#include "server/core/config.h"
#include "server/grpc/tensor_codec.h"

namespace slimserve::cli {

absl::Status FromGrpc(const grpc::Status& status, const std::string& what) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(what, ": ", status.error_message()));
}

std::shared_ptr<grpc::Channel> Connect(const Args& args) {
  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(-1);
  channel_args.SetMaxSendMessageSize(-1);
  return grpc::CreateCustomChannel(args.Get("url", "localhost:8001"), grpc::InsecureChannelCredentials(), channel_args);
}

void SetDeadline(grpc::ClientContext& context, int seconds) {
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
}

namespace {

using Clock = std::chrono::steady_clock;
using inference::GRPCInferenceService;
using runtime::Shape;
using runtime::Tensor;

constexpr char kUrlHelp[] = "  --url HOST:PORT         server address (default localhost:8001)\n";

struct Command {
  const char* name;
  const char* usage;
  std::set<std::string> flags, valued, repeated;
  int (*run)(const Args& args);
};

int Health(const Args& args) {
  auto channel = Connect(args);
  auto stub = GRPCInferenceService::NewStub(channel);
  inference::ServerLiveResponse live;
  inference::ServerReadyResponse ready;
  grpc::ClientContext c1, c2, c3;
  SetDeadline(c1, 5), SetDeadline(c2, 5), SetDeadline(c3, 5);
  absl::Status status = FromGrpc(stub->ServerLive(&c1, {}, &live), "ServerLive");
  if (!status.ok()) return Fail(status);
  status = FromGrpc(stub->ServerReady(&c2, {}, &ready), "ServerReady");
  if (!status.ok()) return Fail(status);
  grpc::health::v1::HealthCheckResponse health;
  const grpc::Status checked = grpc::health::v1::Health::NewStub(channel)->Check(&c3, {}, &health);
  std::cout << "live: " << (live.live() ? "yes" : "no") << "\nready: " << (ready.ready() ? "yes" : "no")
            << "\nhealth: "
            << (checked.ok() ? grpc::health::v1::HealthCheckResponse::ServingStatus_Name(health.status())
                             : "unavailable (" + checked.error_message() + ")")
            << "\n";
  return live.live() && ready.ready() ? 0 : 1;
}

int Models(const Args& args) {
  auto stub = GRPCInferenceService::NewStub(Connect(args));
  grpc::ClientContext context;
  SetDeadline(context, 10);
  inference::RepositoryIndexResponse index;
  const absl::Status status = FromGrpc(stub->RepositoryIndex(&context, {}, &index), "RepositoryIndex");
  if (!status.ok()) return Fail(status);
  std::cout << absl::StrFormat("%-32s %-8s %-12s %s\n", "MODEL", "VERSION", "STATE", "REASON");
  for (const auto& m : index.models()) {
    std::cout << absl::StrFormat("%-32s %-8s %-12s %s\n", m.name(), m.version().empty() ? "-" : m.version(),
                                 m.state(), m.reason());
  }
  return 0;
}

absl::StatusOr<std::string> ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read '", path, "'"));
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

int Load(const Args& args) {
  if (args.positional().size() != 1) return Fail(absl::InvalidArgumentError("give the model's name"));
  const std::string name = args.positional()[0];
  inference::RepositoryModelLoadRequest request;
  request.set_model_name(name);
  if (args.Has("file")) {
    absl::StatusOr<std::string> model = ReadBytes(args.Get("file"));
    if (!model.ok()) return Fail(model.status());
    std::string config = absl::StrCat("{\"name\": \"", name, "\"}");
    if (args.Has("config")) {
      absl::StatusOr<std::string> text = ReadBytes(args.Get("config"));
      if (!text.ok()) return Fail(text.status());
      config = *std::move(text);
    }
    (*request.mutable_parameters())["config"].set_string_param(config);
    (*request.mutable_parameters())[absl::StrCat("file:", args.Get("version", "1"), "/model.onnx")].set_bytes_param(
        *std::move(model));
  } else if (args.Has("config")) {
    return Fail(absl::InvalidArgumentError("--config goes with --file (an upload)"));
  }
  auto stub = GRPCInferenceService::NewStub(Connect(args));
  grpc::ClientContext context;
  SetDeadline(context, 600);
  inference::RepositoryModelLoadResponse response;
  const auto start = Clock::now();
  const absl::Status status = FromGrpc(stub->RepositoryModelLoad(&context, request, &response), "load");
  if (!status.ok()) return Fail(status);
  std::cout << absl::StrFormat("loaded %s in %.2f s\n", name,
                               std::chrono::duration<double>(Clock::now() - start).count());
  return 0;
}

int Unload(const Args& args) {
  if (args.positional().size() != 1) return Fail(absl::InvalidArgumentError("give the model's name"));
  auto stub = GRPCInferenceService::NewStub(Connect(args));
  grpc::ClientContext context;
  SetDeadline(context, 60);
  inference::RepositoryModelUnloadRequest request;
  request.set_model_name(args.positional()[0]);
  inference::RepositoryModelUnloadResponse response;
  const absl::Status status = FromGrpc(stub->RepositoryModelUnload(&context, request, &response), "unload");
  if (!status.ok()) return Fail(status);
  std::cout << "unloaded " << args.positional()[0] << "\n";
  return 0;
}

absl::StatusOr<inference::ModelMetadataResponse> GetMetadata(GRPCInferenceService::Stub& stub, const Args& args) {
  if (args.positional().size() != 1) return absl::InvalidArgumentError("give the model's name");
  grpc::ClientContext context;
  SetDeadline(context, 10);
  inference::ModelMetadataRequest request;
  request.set_name(args.positional()[0]);
  request.set_version(args.Get("version"));
  inference::ModelMetadataResponse metadata;
  RETURN_IF_ERROR(FromGrpc(stub.ModelMetadata(&context, request, &metadata), "ModelMetadata"));
  return metadata;
}

int Metadata(const Args& args) {
  auto stub = GRPCInferenceService::NewStub(Connect(args));
  absl::StatusOr<inference::ModelMetadataResponse> metadata = GetMetadata(*stub, args);
  if (!metadata.ok()) return Fail(metadata.status());
  grpc::ClientContext context;
  SetDeadline(context, 10);
  inference::ModelConfigRequest config_request;
  config_request.set_name(metadata->name());
  config_request.set_version(args.Get("version"));
  inference::ModelConfigResponse config;
  const absl::Status status = FromGrpc(stub->ModelConfig(&context, config_request, &config), "ModelConfig");
  if (!status.ok()) return Fail(status);
  std::cout << metadata->name() << "  versions " << absl::StrJoin(metadata->versions(), ",") << "  platform "
            << metadata->platform() << "  max_batch_size " << config.config().max_batch_size() << "\n";
  for (const auto* list : {&metadata->inputs(), &metadata->outputs()}) {
    for (const auto& t : *list) {
      std::cout << (list == &metadata->inputs() ? "  input  " : "  output ")
                << absl::StrFormat("%-24s %-6s [%s]\n", t.name(), t.datatype(), absl::StrJoin(t.shape(), ","));
    }
  }
  if (config.config().has_dynamic_batching()) {
    const auto& b = config.config().dynamic_batching();
    std::cout << "  dynamic batching: max queue delay " << b.max_queue_delay_microseconds() << " us, preferred ["
              << absl::StrJoin(b.preferred_batch_size(), ",") << "]\n";
  }
  return 0;
}

// Inputs for `metadata`'s tensors: from --input NAME=FILE.npy, or random with
// dynamic dimensions 1 and the batch dimension `batch`.
absl::StatusOr<inference::ModelInferRequest> MakeRequest(const inference::ModelMetadataResponse& metadata,
                                                         const Args& args, int64_t batch) {
  ASSIGN_OR_RETURN(auto files, Pairs(args, "input"));
  std::mt19937 rng(1);
  inference::ModelInferRequest request;
  request.set_model_name(metadata.name());
  request.set_model_version(args.Get("version"));
  for (const auto& t : metadata.inputs()) {
    auto it = files.find(t.name());
    Tensor tensor;
    if (it != files.end() && it->second != "random") {
      ASSIGN_OR_RETURN(tensor, runtime::ReadNpy(it->second));
    } else {
      Shape shape(t.shape().begin(), t.shape().end());
      for (size_t d = 0; d < shape.size(); ++d) shape[d] = shape[d] >= 0 ? shape[d] : (d == 0 ? batch : 1);
      const std::optional<runtime::DataType> dtype = server::ParseWireDataType(t.datatype());
      if (!dtype.has_value()) return absl::InvalidArgumentError(absl::StrCat("unknown datatype ", t.datatype()));
      ASSIGN_OR_RETURN(tensor, RandomTensor(*dtype, shape, rng));
    }
    server::EncodeInput(t.name(), tensor, request);
  }
  for (const auto& [name, file] : files) {
    if (std::none_of(metadata.inputs().begin(), metadata.inputs().end(), [&](const auto& t) { return t.name() == name; })) {
      return absl::InvalidArgumentError(absl::StrCat("the model has no input '", name, "'"));
    }
  }
  return request;
}

int Infer(const Args& args) {
  auto stub = GRPCInferenceService::NewStub(Connect(args));
  absl::StatusOr<inference::ModelMetadataResponse> metadata = GetMetadata(*stub, args);
  if (!metadata.ok()) return Fail(metadata.status());
  absl::StatusOr<inference::ModelInferRequest> request = MakeRequest(*metadata, args, 1);
  if (!request.ok()) return Fail(request.status());
  std::vector<std::string> labels;
  if (args.Has("labels")) {
    absl::StatusOr<std::vector<std::string>> lines = ReadLines(args.Get("labels"));
    if (!lines.ok()) return Fail(lines.status());
    labels = *std::move(lines);
  }
  grpc::ClientContext context;
  SetDeadline(context, 60);
  inference::ModelInferResponse response;
  const auto start = Clock::now();
  const absl::Status status = FromGrpc(stub->ModelInfer(&context, *request, &response), "ModelInfer");
  if (!status.ok()) return Fail(status);
  std::cout << absl::StrFormat("%s version %s, %.3f ms\n", response.model_name(), response.model_version(),
                               std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  for (int i = 0; i < response.outputs_size(); ++i) {
    absl::StatusOr<Tensor> out = server::DecodeOutput(response, i);
    if (!out.ok()) return Fail(out.status());
    PrintOutput(response.outputs(i).name(), *out, labels);
  }
  return 0;
}

absl::StatusOr<inference::ModelStatistics> Statistics(GRPCInferenceService::Stub& stub, const std::string& name) {
  grpc::ClientContext context;
  SetDeadline(context, 10);
  inference::ModelStatisticsRequest request;
  request.set_name(name);
  inference::ModelStatisticsResponse response;
  RETURN_IF_ERROR(FromGrpc(stub.ModelStatistics(&context, request, &response), "ModelStatistics"));
  inference::ModelStatistics total;
  for (const auto& s : response.model_stats()) {
    total.set_inference_count(total.inference_count() + s.inference_count());
    total.set_execution_count(total.execution_count() + s.execution_count());
    auto* t = total.mutable_inference_stats();
    t->mutable_success()->set_count(t->success().count() + s.inference_stats().success().count());
    t->mutable_queue()->set_ns(t->queue().ns() + s.inference_stats().queue().ns());
    t->mutable_compute_infer()->set_ns(t->compute_infer().ns() + s.inference_stats().compute_infer().ns());
  }
  return total;
}

struct LoadRun {
  std::vector<double> latencies_ms;  // of the successful calls, sorted
  int64_t failures = 0;
  std::string first_error;
  double seconds = 0;
};

// Keeps `concurrency` calls in flight for `duration` seconds, each answered
// one replaced by a new one at once. One thread drives them all over a
// completion queue (as perf_analyzer does): a thread per call would cost the
// machine more CPU than the server spends on small models. `prepare` makes one
// call, not yet started.
template <typename Response>
LoadRun RunLoad(int64_t concurrency, int64_t duration,
             const std::function<std::unique_ptr<grpc::ClientAsyncResponseReader<Response>>(
                 grpc::ClientContext*, grpc::CompletionQueue*)>& prepare) {
  struct Call {
    grpc::ClientContext context;
    Response response;
    grpc::Status status;
    Clock::time_point sent;
    std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> reader;
  };
  grpc::CompletionQueue queue;
  auto send = [&] {
    auto* call = new Call;
    SetDeadline(call->context, 60);
    call->sent = Clock::now();
    call->reader = prepare(&call->context, &queue);
    call->reader->StartCall();
    call->reader->Finish(&call->response, &call->status, call);
  };
  LoadRun load;
  const auto start = Clock::now();
  const auto end = start + std::chrono::seconds(duration);
  for (int64_t c = 0; c < concurrency; ++c) send();
  const bool bar = isatty(STDERR_FILENO);  // a progress bar on a terminal
  auto last_bar = start;
  int64_t in_flight = concurrency;
  void* tag = nullptr;
  bool ok = false;
  while (in_flight > 0 && queue.Next(&tag, &ok)) {
    std::unique_ptr<Call> call(static_cast<Call*>(tag));
    const auto now = Clock::now();
    if (ok && call->status.ok()) {
      load.latencies_ms.push_back(std::chrono::duration<double, std::milli>(now - call->sent).count());
    } else if (load.failures++ == 0) {
      load.first_error = call->status.error_message();
    }
    if (now < end) {
      send();
    } else {
      --in_flight;
    }
    if (bar && now - last_bar > std::chrono::milliseconds(200)) {
      last_bar = now;
      const double done = std::min(1.0, std::chrono::duration<double>(now - start).count() / duration);
      std::cerr << "\r[" << std::string(static_cast<int>(done * 30), '#')
                << std::string(30 - static_cast<int>(done * 30), ' ') << "] " << static_cast<int>(done * 100) << "%"
                << std::flush;
    }
  }
  if (bar) std::cerr << "\r" << std::string(40, ' ') << "\r";
  load.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::sort(load.latencies_ms.begin(), load.latencies_ms.end());
  return load;
}

// A load generator like perf_analyzer: `concurrency` requests in flight for
// `duration` seconds. With --live, empty ServerLive calls instead: the round
// trip that any reply costs on this machine and network.
int Perf(const Args& args) {
  auto stub = GRPCInferenceService::NewStub(Connect(args));
  auto concurrency = args.GetInt("concurrency", 1);
  auto duration = args.GetInt("duration", 10);
  auto batch = args.GetInt("batch", 1);
  for (const auto* v : {&concurrency, &duration, &batch}) {
    if (!v->ok()) return Fail(v->status());
  }
  if (*concurrency < 1 || *duration < 1 || *batch < 1) {
    return Fail(absl::InvalidArgumentError("--concurrency, --duration and --batch must be at least 1"));
  }
  if (args.Has("live")) {
    if (!args.positional().empty()) return Fail(absl::InvalidArgumentError("--live takes no model name"));
    const LoadRun load = RunLoad<inference::ServerLiveResponse>(
        *concurrency, *duration, [&](grpc::ClientContext* context, grpc::CompletionQueue* queue) {
          return stub->PrepareAsyncServerLive(context, inference::ServerLiveRequest(), queue);
        });
    const std::vector<double>& l = load.latencies_ms;
    if (args.Has("json")) {
      std::cout << absl::StrFormat(
          "{\"rpc\":\"ServerLive\",\"concurrency\":%d,\"requests\":%d,\"failures\":%d,"
          "\"throughput_per_s\":%.2f,\"p50_ms\":%.4f,\"p90_ms\":%.4f,\"p99_ms\":%.4f}\n",
          *concurrency, l.size(), load.failures, l.size() / load.seconds, Percentile(l, 0.5), Percentile(l, 0.9),
          Percentile(l, 0.99));
    } else {
      std::cout << absl::StrFormat(
          "ServerLive  concurrency %d  %.1f s\nrequests %d  failures %d  throughput %.1f calls/s\n"
          "latency p50 %.3f ms  p90 %.3f ms  p99 %.3f ms\n",
          *concurrency, load.seconds, l.size(), load.failures, l.size() / load.seconds, Percentile(l, 0.5),
          Percentile(l, 0.9), Percentile(l, 0.99));
    }
    if (load.failures > 0) std::cerr << "first failure: " << load.first_error << "\n";
    return load.failures > 0 ? 1 : 0;
  }

  absl::StatusOr<inference::ModelMetadataResponse> metadata = GetMetadata(*stub, args);
  if (!metadata.ok()) return Fail(metadata.status());
  absl::StatusOr<inference::ModelInferRequest> request = MakeRequest(*metadata, args, *batch);
  if (!request.ok()) return Fail(request.status());
  absl::StatusOr<inference::ModelStatistics> before = Statistics(*stub, metadata->name());
  if (!before.ok()) return Fail(before.status());
  const LoadRun load = RunLoad<inference::ModelInferResponse>(
      *concurrency, *duration, [&](grpc::ClientContext* context, grpc::CompletionQueue* queue) {
        return stub->PrepareAsyncModelInfer(context, *request, queue);
      });
  absl::StatusOr<inference::ModelStatistics> after = Statistics(*stub, metadata->name());
  if (!after.ok()) return Fail(after.status());
  const std::vector<double>& l = load.latencies_ms;
  const double throughput = l.size() * *batch / load.seconds;
  const int64_t inferences = after->inference_count() - before->inference_count();
  const int64_t executions = after->execution_count() - before->execution_count();
  const double server_batch = executions > 0 ? static_cast<double>(inferences) / executions : 0;
  // The server's own account of a request: waiting for a batch and an
  // instance, and the model run (per request, from ModelStatistics).
  const auto& b = before->inference_stats();
  const auto& a = after->inference_stats();
  const double served = std::max<int64_t>(1, a.success().count() - b.success().count());
  const double queue_us = (a.queue().ns() - b.queue().ns()) / served / 1e3;
  const double compute_us = (a.compute_infer().ns() - b.compute_infer().ns()) / served / 1e3;
  if (args.Has("json")) {
    std::cout << absl::StrFormat(
        "{\"model\":\"%s\",\"concurrency\":%d,\"batch\":%d,\"requests\":%d,\"failures\":%d,"
        "\"throughput_per_s\":%.2f,\"p50_ms\":%.4f,\"p90_ms\":%.4f,\"p99_ms\":%.4f,"
        "\"server_inferences\":%d,\"server_executions\":%d,\"server_mean_batch\":%.3f,"
        "\"server_queue_us\":%.1f,\"server_compute_us\":%.1f}\n",
        metadata->name(), *concurrency, *batch, l.size(), load.failures, throughput, Percentile(l, 0.5),
        Percentile(l, 0.9), Percentile(l, 0.99), inferences, executions, server_batch, queue_us, compute_us);
  } else {
    std::cout << absl::StrFormat(
        "%s  concurrency %d  batch %d  %.1f s\n"
        "requests %d  failures %d  throughput %.1f inferences/s\n"
        "latency p50 %.3f ms  p90 %.3f ms  p99 %.3f ms\n"
        "server: %d inferences in %d executions (mean batch %.2f); per request %.0f us queued, %.0f us computing\n",
        metadata->name(), *concurrency, *batch, load.seconds, l.size(), load.failures, throughput,
        Percentile(l, 0.5), Percentile(l, 0.9), Percentile(l, 0.99), inferences, executions, server_batch, queue_us,
        compute_us);
  }
  if (load.failures > 0) std::cerr << "first failure: " << load.first_error << "\n";
  return load.failures > 0 ? 1 : 0;
}

const Command kCommands[] = {
    {"health",
     "usage: slimctl health [--url HOST:PORT]\nShows whether the server is live and ready; exit code 0 when ready.\n",
     {"help"}, {"url"}, {}, Health},
    {"models", "usage: slimctl models [--url HOST:PORT]\nLists the models of the server's repository and their state.\n",
     {"help"}, {"url"}, {}, Models},
    {"load",
     "usage: slimctl load NAME [--file model.onnx [--config config.json] [--version N]] [--url HOST:PORT]\n"
     "Loads NAME from the server's repository, or uploads model.onnx as NAME (version N, default 1) with\n"
     "a ModelConfig in JSON (default: derived from the model). The server needs --model-control-mode explicit.\n",
     {"help"}, {"url", "file", "config", "version"}, {}, Load},
    {"unload", "usage: slimctl unload NAME [--url HOST:PORT]\nStops serving NAME; requests in flight finish.\n",
     {"help"}, {"url"}, {}, Unload},
    {"metadata",
     "usage: slimctl metadata NAME [--version V] [--url HOST:PORT]\nShows a model's inputs, outputs and batching.\n",
     {"help"}, {"url", "version"}, {}, Metadata},
    {"infer",
     "usage: slimctl infer NAME [--input NAME=FILE.npy|random ...] [--labels FILE] [--version V] [--url HOST:PORT]\n"
     "Runs one request and prints the outputs (top 5 classes of a classifier, named from --labels).\n"
     "Inputs not given are random, with batch size 1.\n",
     {"help"}, {"url", "version", "labels"}, {"input"}, Infer},
    {"perf",
     "usage: slimctl perf NAME [--concurrency C] [--duration S] [--batch B] [--input NAME=FILE.npy ...] [--json]\n"
     "                    [--url HOST:PORT]\n"
     "       slimctl perf --live [--concurrency C] [--duration S] [--json] [--url HOST:PORT]\n"
     "Load generator: C clients (default 1) send requests of batch B (default 1) back to back for S seconds\n"
     "(default 10); prints throughput, p50/p90/p99 latency and the server's mean executed batch size.\n"
     "With --live it sends empty ServerLive calls instead: the round trip any reply costs, to compare with.\n",
     {"help", "json", "live"}, {"url", "version", "concurrency", "duration", "batch"}, {"input"}, Perf},
    {"variants",
     "usage: slimctl variants [MODEL] [--delete VARIANT] [--url HOST:PORT]\n"
     "Lists the compressed variants (of MODEL, or all) with their measurements: top-1 against labels and the\n"
     "original's, top-1 agreement, SQNR, p50 latency at batch 1 against the original's, size, served, promoted.\n"
     "--delete stops serving a variant and removes it from the cache.\n",
     {"help"}, {"url", "delete"}, {}, VariantsCommand},
    {"promote",
     "usage: slimctl promote MODEL VARIANT [--force] [--max-agreement-loss P] [--url HOST:PORT]\n"
     "       slimctl promote MODEL --original [--url HOST:PORT]\n"
     "Routes requests for MODEL to MODEL.VARIANT (or back to the original). Refused unless the variant is\n"
     "faster than the original and loses at most P points of top-1 agreement (default 1), or --force.\n",
     {"help", "force", "original"}, {"url", "max-agreement-loss"}, {}, PromoteCommand},
    {"export",
     "usage: slimctl export MODEL VARIANT -o FILE.onnx [--url HOST:PORT]\n"
     "Downloads a variant as a standard ONNX file (int8 as QuantizeLinear/DequantizeLinear pairs).\n",
     {"help"}, {"url", "o"}, {}, ExportCommand},
    {"jobs", "usage: slimctl jobs [MODEL] [--url HOST:PORT]\nLists compression jobs and their state.\n", {"help"},
     {"url"}, {}, JobsCommand},
    {"cancel", "usage: slimctl cancel JOB [--url HOST:PORT]\nCancels a queued or running compression job.\n",
     {"help"}, {"url"}, {}, CancelCommand},
    {"datasets",
     "usage: slimctl datasets [list] | delete NAME [--url HOST:PORT]\n"
     "       slimctl datasets upload NAME --from FILE.npz [--url HOST:PORT]\n"
     "       slimctl datasets upload NAME --from IMAGES-idx3-ubyte[.gz] [--labels LABELS-idx1-ubyte[.gz]]\n"
     "                               [--input NAME] [--divide-by D]\n"
     "Data sets for calibration (compress --data NAME) and evaluation (compress --eval NAME): an .npz with\n"
     "one array per model input, rows first, and optionally int64 `labels` (tools/make_eval_set.py); or\n"
     "MNIST-style IDX files (e.g. /usr/share/datasets/fashion-mnist/): uint8 images [N,H,W] uploaded as the\n"
     "float input --input (default 'input') [N,1,H,W], divided by --divide-by (default 255).\n",
     {"help"}, {"url", "from", "labels", "input", "divide-by"}, {}, DataSetsCommand},
};

}  // namespace

bool IsClientCommand(const std::string& command) {
  return std::any_of(std::begin(kCommands), std::end(kCommands), [&](const Command& c) { return command == c.name; });
}

int ClientCommand(const std::string& command, int argc, char** argv) {
  for (const Command& c : kCommands) {
    if (command != c.name) continue;
    absl::StatusOr<Args> args = Args::Parse(argc, argv, c.flags, c.valued, c.repeated);
    if (!args.ok()) return Fail(args.status());
    if (args->Has("help")) {
      std::cout << c.usage << kUrlHelp;
      return 0;
    }
    return c.run(*args);
  }
  return 2;
}

}  // namespace slimserve::cli
