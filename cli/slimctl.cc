// slimctl: the slimserve command-line tool.
#include <iostream>
#include <string>

#include "cli/client.h"
#include "cli/offline.h"
#include "runtime/openmp_env.h"

namespace {

constexpr char kUsage[] =
    "usage: slimctl COMMAND [options]   (slimctl COMMAND --help for details)\n"
    "\n"
    "Client commands (talk to a server at --url, default localhost:8001):\n"
    "  health    is the server live and ready\n"
    "  models    list the repository's models and their state\n"
    "  load      load a model, or upload an ONNX file as a model\n"
    "  unload    stop serving a model\n"
    "  metadata  a model's inputs, outputs and batching\n"
    "  infer     run one request and print the outputs\n"
    "  perf      load generator: throughput and latency percentiles\n"
    "  compress  build a compressed variant of a served model (progress bar), served as MODEL.VARIANT\n"
    "  variants  a model's variants with accuracy, agreement, SQNR, latency, size\n"
    "  promote   route a model's name to one of its variants (or back)\n"
    "  export    download a variant as ONNX\n"
    "  jobs, cancel   compression jobs\n"
    "  datasets  upload, list, delete calibration and evaluation data sets\n"
    "\n"
    "Offline commands (load an ONNX file in this process):\n"
    "  run      run a model once on inputs from .npy files and print its outputs\n"
    "  bench    time a model: median, p90, p99 latency and throughput\n"
    "  inspect  show a model's inputs, outputs and which backend runs each node\n"
    "  compress --offline  build an int8 or bf16 variant of a model file, evaluate it, write it as ONNX\n";

}  // namespace

int main(int argc, char** argv) {
  slimserve::UseShortOpenMpSpins(argv);
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h" ||
      std::string(argv[1]) == "help") {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  if (command == "run") return slimserve::cli::RunCommand(argc - 2, argv + 2);
  if (command == "bench") return slimserve::cli::BenchCommand(argc - 2, argv + 2);
  if (command == "inspect") return slimserve::cli::InspectCommand(argc - 2, argv + 2);
  if (command == "compress") return slimserve::cli::CompressCommand(argc - 2, argv + 2);
  if (slimserve::cli::IsClientCommand(command)) return slimserve::cli::ClientCommand(command, argc - 2, argv + 2);
  std::cerr << "unknown command '" << command << "'\n\n" << kUsage;
  return 2;
}
