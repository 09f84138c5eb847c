#include "cli/offline.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/args.h"
#include "cli/common.h"
#include "runtime/backends.h"
#include "runtime/executor.h"
#include "runtime/npy.h"
#include "runtime/onnx_import.h"
#include "runtime/passes/passes.h"
#include "runtime/status_macros.h"

namespace slimserve::cli {
namespace {

using runtime::DataType;
using runtime::Shape;
using runtime::Tensor;

constexpr char kRunUsage[] =
    "usage: slimctl run MODEL.onnx [--input NAME=FILE.npy|NAME=random ...] [options]\n"
    "Runs the model once on the given inputs and prints its outputs.\n"
    "  --input NAME=FILE.npy   an input from a NumPy file; NAME=random for uniform [0,1) data\n"
    "  --shape NAME=1x3x224x224  shape for a random input with dynamic dimensions\n"
    "  --output-dir DIR        also write each output to DIR/NAME.npy\n"
    "  --labels FILE           class names, one per line, for the top-5 of a classifier\n"
    "  --threads T             intra-op threads (default: all cores)\n"
    "  --backend B             auto|onednn|xnnpack|reference (default auto)\n"
    "  --no-optimize           skip graph optimization (folding, fusion)\n";

constexpr char kBenchUsage[] =
    "usage: slimctl bench MODEL.onnx [options]\n"
    "Times inference on random inputs: median, p90, p99 latency and throughput.\n"
    "  --batch N               batch size for the first dynamic dimension (default 1)\n"
    "  --shape NAME=1x3x640x640  full shape of an input (other dynamic dimensions)\n"
    "  --threads T             intra-op threads (default: all cores)\n"
    "  --backend B             auto|onednn|xnnpack|reference (default auto)\n"
    "  --warmup-ms MS          run untimed for MS milliseconds first (default 2000)\n"
    "  --runs K                timed runs (default 50)\n"
    "  --json                  print one JSON object instead of text\n"
    "  --profile               also print time per op type and the slowest nodes\n"
    "                          (to stderr with --json, whose object then lists every node's time)\n"
    "  --no-optimize           skip graph optimization (folding, fusion)\n";

constexpr char kInspectUsage[] =
    "usage: slimctl inspect MODEL.onnx [--batch N] [--shape NAME=...] [--backend B] [--nodes]\n"
    "Prints the model's inputs and outputs and which backend runs each node.\n"
    "  --nodes                 list every node with its backend and, where one was measured against\n"
    "                          another (e.g. the sparse 1x1 convolution), the kernel kept\n"
    "  --no-optimize           skip graph optimization (folding, fusion)\n";

struct Loaded {
  runtime::BackendSet backends;
  std::unique_ptr<runtime::Executor> executor;
};

absl::StatusOr<Loaded> Load(const std::string& path, const Args& args) {
  Loaded loaded;
  ASSIGN_OR_RETURN(int64_t threads, args.GetInt("threads", 0));
  ASSIGN_OR_RETURN(loaded.backends,
                   runtime::MakeBackends(args.Get("backend", "auto"), static_cast<int>(threads)));
  ASSIGN_OR_RETURN(runtime::Graph graph, runtime::ImportOnnxFile(path, {}));
  if (!args.Has("no-optimize")) RETURN_IF_ERROR(runtime::Optimize(graph, {}));
  runtime::ExecutorOptions options;
  options.num_threads = static_cast<int>(threads);
  options.backends = loaded.backends.pointers();
  options.profile = args.Has("profile");
  ASSIGN_OR_RETURN(loaded.executor, runtime::Executor::Create(std::move(graph), options));
  return loaded;
}

absl::StatusOr<Shape> ParseShape(const std::string& text) {
  Shape shape;
  for (absl::string_view part : absl::StrSplit(text, 'x')) {
    int64_t d = 0;
    if (!absl::SimpleAtoi(part, &d) || d < 0) {
      return absl::InvalidArgumentError(absl::StrCat("bad shape '", text, "'; write it like 1x3x224x224"));
    }
    shape.push_back(d);
  }
  return shape;
}

// The shape of a generated input: --shape if given, else the declared shape
// with the first dynamic dimension set to `batch`.
absl::StatusOr<Shape> InputShape(const runtime::ValueInfo& info, int64_t batch,
                                 const std::map<std::string, std::string>& shapes) {
  if (auto it = shapes.find(info.name); it != shapes.end()) return ParseShape(it->second);
  Shape shape = info.shape;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] >= 0) continue;
    if (d == 0) {
      shape[d] = batch;
      continue;
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "input '", info.name, "' has dynamic dimension ", d,
        info.dim_names[d].empty() ? "" : absl::StrCat(" ('", info.dim_names[d], "')"),
        "; give its full shape with --shape ", info.name, "=", absl::StrJoin(info.shape, "x")));
  }
  return shape;
}

absl::StatusOr<std::vector<Tensor>> MakeInputs(const runtime::Graph& graph, const Args& args,
                                               int64_t batch, bool all_random) {
  ASSIGN_OR_RETURN(auto files, Pairs(args, "input"));
  ASSIGN_OR_RETURN(auto shapes, Pairs(args, "shape"));
  std::mt19937 rng(0);
  std::vector<Tensor> inputs;
  for (const runtime::ValueInfo& info : graph.inputs) {
    auto it = files.find(info.name);
    if (!all_random && it == files.end()) {
      return absl::InvalidArgumentError(absl::StrCat("missing input '", info.name, "': pass --input ",
                                                     info.name, "=FILE.npy (or =random)"));
    }
    if (!all_random && it->second != "random") {
      ASSIGN_OR_RETURN(Tensor t, runtime::ReadNpy(it->second));
      inputs.push_back(std::move(t));
      continue;
    }
    ASSIGN_OR_RETURN(Shape shape, InputShape(info, batch, shapes));
    ASSIGN_OR_RETURN(Tensor t, RandomTensor(info.dtype, shape, rng));
    inputs.push_back(std::move(t));
  }
  for (const auto& [name, file] : files) {
    if (std::none_of(graph.inputs.begin(), graph.inputs.end(),
                     [&](const runtime::ValueInfo& i) { return i.name == name; })) {
      return absl::InvalidArgumentError(absl::StrCat("the model has no input '", name, "'"));
    }
  }
  return inputs;
}

}  // namespace

int RunCommand(int argc, char** argv) {
  auto args = Args::Parse(argc, argv, {"help", "no-optimize"}, {"output-dir", "labels", "threads", "backend"}, {"input", "shape"});
  if (!args.ok()) return Fail(args.status());
  if (args->Has("help") || args->positional().size() != 1) {
    std::cout << kRunUsage;
    return args->Has("help") ? 0 : 2;
  }
  auto loaded = Load(args->positional()[0], *args);
  if (!loaded.ok()) return Fail(loaded.status());
  const runtime::Graph& graph = loaded->executor->graph();
  auto inputs = MakeInputs(graph, *args, 1, false);
  if (!inputs.ok()) return Fail(inputs.status());
  auto outputs = loaded->executor->Run(*inputs);
  if (!outputs.ok()) return Fail(outputs.status());
  std::vector<std::string> labels;
  if (args->Has("labels")) {
    auto lines = ReadLines(args->Get("labels"));
    if (!lines.ok()) return Fail(lines.status());
    labels = *std::move(lines);
  }
  const std::string dir = args->Get("output-dir");
  for (size_t i = 0; i < outputs->size(); ++i) {
    const std::string& name = graph.outputs[i].name;
    PrintOutput(name, (*outputs)[i], labels);
    if (dir.empty()) continue;
    std::string file = name;
    std::replace_if(file.begin(), file.end(), [](char c) { return !std::isalnum(c) && c != '_' && c != '-' && c != '.'; }, '_');
    std::filesystem::create_directories(dir);
    const absl::Status written = runtime::WriteNpy((std::filesystem::path(dir) / (file + ".npy")).string(), (*outputs)[i]);
    if (!written.ok()) return Fail(written);
  }
  return 0;
}

// Time per op type and backend, then the slowest nodes, per run.
void PrintProfile(const runtime::PlanSummary& summary, std::ostream& out) {
  struct Total {
    int nodes = 0;
    double ms = 0;
  };
  std::map<std::string, Total> by_op;
  double total_ms = 0;
  for (const auto& e : summary.nodes) {
    Total& t = by_op[absl::StrCat(e.op_type, " (", e.backend, ")")];
    ++t.nodes;
    t.ms += e.mean_ms;
    total_ms += e.mean_ms;
  }
  std::vector<std::pair<std::string, Total>> ops(by_op.begin(), by_op.end());
  std::sort(ops.begin(), ops.end(), [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
  out << absl::StrFormat("\nprofile over %d runs: %.3f ms per run in kernels\n", summary.profiled_runs,
                         total_ms);
  for (const auto& [op, t] : ops) {
    out << absl::StrFormat("  %-40s %4d nodes %9.3f ms %5.1f %%\n", op, t.nodes, t.ms,
                           100 * t.ms / std::max(total_ms, 1e-9));
  }
  std::vector<const runtime::PlanSummary::Entry*> nodes;
  for (const auto& e : summary.nodes) nodes.push_back(&e);
  std::sort(nodes.begin(), nodes.end(), [](auto* a, auto* b) { return a->mean_ms > b->mean_ms; });
  nodes.resize(std::min<size_t>(nodes.size(), 10));
  out << "slowest nodes:\n";
  for (const auto* e : nodes) {
    out << absl::StrFormat("  %-40s %-20s %-8s %9.3f ms\n", e->node.empty() ? "-" : e->node,
                           e->op_type, e->backend, e->mean_ms);
  }
}

int BenchCommand(int argc, char** argv) {
  auto args = Args::Parse(argc, argv, {"help", "json", "profile", "no-optimize"},
                          {"batch", "threads", "backend", "warmup-ms", "runs"}, {"shape"});
  if (!args.ok()) return Fail(args.status());
  if (args->Has("help") || args->positional().size() != 1) {
    std::cout << kBenchUsage;
    return args->Has("help") ? 0 : 2;
  }
  auto batch = args->GetInt("batch", 1);
  auto warmup_ms = args->GetInt("warmup-ms", 2000);
  auto runs = args->GetInt("runs", 50);
  for (const auto* v : {&batch, &warmup_ms, &runs}) {
    if (!v->ok()) return Fail(v->status());
  }
  if (*batch < 1 || *runs < 1 || *warmup_ms < 0) {
    return Fail(absl::InvalidArgumentError("--batch and --runs must be at least 1, --warmup-ms at least 0"));
  }
  auto loaded = Load(args->positional()[0], *args);
  if (!loaded.ok()) return Fail(loaded.status());
  runtime::Executor& executor = *loaded->executor;
  auto inputs = MakeInputs(executor.graph(), *args, *batch, true);
  if (!inputs.ok()) return Fail(inputs.status());

  using Clock = std::chrono::steady_clock;
  const auto warmup_end = Clock::now() + std::chrono::milliseconds(*warmup_ms);
  do {
    auto out = executor.Run(*inputs);
    if (!out.ok()) return Fail(out.status());
  } while (Clock::now() < warmup_end);
  std::vector<double> ms;
  for (int64_t i = 0; i < *runs; ++i) {
    const auto start = Clock::now();
    auto out = executor.Run(*inputs);
    if (!out.ok()) return Fail(out.status());
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  std::sort(ms.begin(), ms.end());
  const double median = Percentile(ms, 0.5), p90 = Percentile(ms, 0.9), p99 = Percentile(ms, 0.99);
  double mean = 0;
  for (double m : ms) mean += m / ms.size();
  const double throughput = *batch * 1000.0 / median;
  const int64_t threads = args->GetInt("threads", 0).value_or(0);
  absl::StatusOr<runtime::PlanSummary> summary;
  std::string nodes;  // with --profile and --json: ,"nodes":[{"node":...,"op":...,"ms":...},...]
  if (args->Has("profile")) {
    summary = executor.Prepare(*inputs);
    if (!summary.ok()) return Fail(summary.status());
    for (const auto& e : summary->nodes) {
      absl::StrAppend(&nodes, nodes.empty() ? ",\"nodes\":[" : ",",
                      absl::StrFormat("{\"node\":\"%s\",\"op\":\"%s\",\"backend\":\"%s\",\"ms\":%.5f}",
                                      absl::CEscape(e.node), e.op_type, e.backend, e.mean_ms));
    }
    if (!nodes.empty()) nodes += "]";
  }
  if (args->Has("json")) {
    std::cout << absl::StrFormat(
        "{\"runtime\":\"slimserve\",\"model\":\"%s\",\"backend\":\"%s\",\"batch\":%d,"
        "\"threads\":%d,\"runs\":%d,\"median_ms\":%.4f,\"p90_ms\":%.4f,\"p99_ms\":%.4f,"
        "\"mean_ms\":%.4f,\"throughput_per_s\":%.2f%s}\n",
        args->positional()[0], args->Get("backend", "auto"), *batch, threads, *runs, median, p90,
        p99, mean, throughput, nodes);
  } else {
    std::cout << absl::StrFormat(
        "%s  batch %d  threads %s  backend %s  %d runs\n"
        "median %.3f ms   p90 %.3f ms   p99 %.3f ms   mean %.3f ms   %.1f items/s\n",
        args->positional()[0], *batch, threads > 0 ? absl::StrCat(threads) : "all",
        args->Get("backend", "auto"), *runs, median, p90, p99, mean, throughput);
  }
  if (args->Has("profile")) PrintProfile(*summary, args->Has("json") ? std::cerr : std::cout);
  return 0;
}

int InspectCommand(int argc, char** argv) {
  auto args = Args::Parse(argc, argv, {"help", "no-optimize", "nodes"}, {"batch", "threads", "backend"}, {"shape"});
  if (!args.ok()) return Fail(args.status());
  if (args->Has("help") || args->positional().size() != 1) {
    std::cout << kInspectUsage;
    return args->Has("help") ? 0 : 2;
  }
  auto loaded = Load(args->positional()[0], *args);
  if (!loaded.ok()) return Fail(loaded.status());
  const runtime::Graph& graph = loaded->executor->graph();
  std::cout << "opset " << graph.opset << ", " << graph.nodes.size() << " nodes, "
            << graph.initializers.size() << " constants\n";
  auto describe = [](const runtime::ValueInfo& v) {
    std::vector<std::string> dims;
    for (size_t d = 0; d < v.shape.size(); ++d) {
      dims.push_back(v.shape[d] >= 0 ? absl::StrCat(v.shape[d])
                                     : (v.dim_names[d].empty() ? "?" : v.dim_names[d]));
    }
    return absl::StrCat(v.name, ": ", runtime::DataTypeName(v.dtype), " [", absl::StrJoin(dims, ","), "]");
  };
  for (const auto& v : graph.inputs) std::cout << "input  " << describe(v) << "\n";
  for (const auto& v : graph.outputs) std::cout << "output " << describe(v) << "\n";
  auto batch = args->GetInt("batch", 1);
  if (!batch.ok()) return Fail(batch.status());
  auto inputs = MakeInputs(graph, *args, *batch, true);
  if (!inputs.ok()) return Fail(inputs.status());
  auto summary = loaded->executor->Prepare(*inputs);
  if (!summary.ok()) return Fail(summary.status());
  std::map<std::string, std::map<std::string, int>> by_backend;
  for (const auto& e : summary->nodes) ++by_backend[e.backend][e.op_type];
  std::cout << summary->nodes.size() << " nodes run, " << summary->folded_nodes
            << " folded at load; activation memory " << summary->arena_bytes / 1024 << " KiB\n";
  if (summary->measured_ms > 0) {
    std::cout << "plan: " << summary->strategy << " (fastest candidate, "
              << absl::StrFormat("%.2f", summary->measured_ms) << " ms)\n";
  }
  for (const auto& [backend, ops] : by_backend) {
    std::cout << "  " << backend << ":";
    for (const auto& [op, count] : ops) std::cout << " " << op << " x" << count;
    std::cout << "\n";
  }
  if (args->Has("nodes")) {
    for (const auto& e : summary->nodes) {
      std::cout << absl::StrFormat("  %-48s %-20s %-9s %s\n", e.node.empty() ? "-" : e.node, e.op_type, e.backend,
                                   e.kernel);
    }
  }
  return 0;
}

}  // namespace slimserve::cli
