// slimctl compress --offline: the compression pipeline on a file, no server.
#include <iostream>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/args.h"
#include "cli/common.h"
#include "cli/offline.h"
#include "compression/dataset.h"
#include "compression/evaluate.h"
#include "compression/quantize.h"
#include "runtime/onnx_export.h"
#include "runtime/onnx_import.h"
#include "runtime/passes/passes.h"
#include "runtime/status_macros.h"

namespace slimserve::cli {
namespace {

constexpr char kCompressUsage[] =
    "usage: slimctl compress --offline MODEL.onnx --profile int8-static|int8-dynamic|bf16 -o OUT.onnx [options]\n"
    "Builds a compressed variant of MODEL.onnx in this process and writes it as ONNX: int8 in QDQ form\n"
    "(QuantizeLinear/DequantizeLinear around the original ops), which ONNX Runtime runs too.\n"
    "  --profile P        int8-static: activation ranges calibrated on --data (min/max);\n"
    "                     int8-dynamic: activation ranges computed per request;\n"
    "                     bf16: weights and activations rounded to bfloat16\n"
    "  --data FILE.npz    calibration data (int8-static): arrays named after the model's inputs\n"
    "  --samples N        calibration rows taken from --data (default 512)\n"
    "  --calibration C    minmax (default: the whole range of each activation), percentile, or mse (the\n"
    "                     clipped range with the least squared quantization error)\n"
    "  --percentile P     with --calibration percentile: clip each tail beyond the P-th (default 99.99)\n"
    "  --keep-fp32 NAME   a node name or op type to leave in fp32 (repeatable)\n"
    "  --eval FILE.npz    compare the variant with the original on this data set: top-1 against its\n"
    "                     `labels` array if present, top-1 agreement, SQNR and cosine of the outputs\n"
    "  --threads T        intra-op threads (default: all cores)\n"
    "Weights are int8 with one scale per output channel; activations uint8. BatchNorm is folded first.\n";

absl::Status Compress(const Args& args) {
  if (!args.Has("offline")) {
    return absl::UnimplementedError("compression runs offline only for now: add --offline");
  }
  if (args.positional().size() != 1 || args.Get("o").empty()) {
    return absl::InvalidArgumentError("give MODEL.onnx and -o OUT.onnx (see --help)");
  }
  const std::string profile = args.Get("profile");
  const std::map<std::string, compression::Precision> profiles = {
      {"int8-static", compression::Precision::kInt8Static},
      {"int8-dynamic", compression::Precision::kInt8Dynamic},
      {"bf16", compression::Precision::kBf16}};
  if (!profiles.count(profile)) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown profile '", profile, "'; offline profiles: int8-static, int8-dynamic, bf16"));
  }
  ASSIGN_OR_RETURN(int64_t threads, args.GetInt("threads", 0));
  ASSIGN_OR_RETURN(int64_t samples, args.GetInt("samples", 512));
  ASSIGN_OR_RETURN(runtime::Graph original, runtime::ImportOnnxFile(args.positional()[0], {}));
  runtime::OptimizeOptions fold;
  fold.fuse = false;  // the result must stay standard ONNX
  RETURN_IF_ERROR(runtime::Optimize(original, fold));

  compression::QuantizeOptions options;
  options.precision = profiles.at(profile);
  options.keep_fp32 = args.GetAll("keep-fp32");
  options.num_threads = static_cast<int>(threads);
  const std::string calibration_method = args.Get("calibration", "minmax");
  if (calibration_method == "percentile") {
    options.calibration = compression::Calibration::kPercentile;
    if (!absl::SimpleAtod(args.Get("percentile", "99.99"), &options.percentile) || options.percentile <= 50 ||
        options.percentile > 100) {
      return absl::InvalidArgumentError("--percentile must be a number in (50, 100]");
    }
  } else if (calibration_method == "mse") {
    options.calibration = compression::Calibration::kMse;
  } else if (calibration_method != "minmax") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown calibration '", calibration_method, "'; known: minmax, percentile, mse"));
  }
  std::vector<std::vector<runtime::Tensor>> calibration;
  if (options.precision == compression::Precision::kInt8Static) {
    if (!args.Has("data")) return absl::InvalidArgumentError("int8-static needs calibration data: --data FILE.npz");
    ASSIGN_OR_RETURN(compression::DataSet data, compression::LoadDataSet(args.Get("data"), original));
    calibration = data.Batches(0, samples, 64);
    std::cerr << "calibrating on " << std::min(samples, data.rows()) << " rows of " << args.Get("data") << "\n";
  }
  runtime::Graph variant = original;
  ASSIGN_OR_RETURN(compression::QuantizeReport report, compression::Quantize(variant, options, calibration));
  std::cout << "quantized " << report.quantized.size() << " nodes to " << (profile == "bf16" ? "bf16" : "int8") << "\n";
  for (const std::string& kept : report.kept_fp32) std::cout << "  fp32: " << kept << "\n";
  RETURN_IF_ERROR(runtime::ExportOnnxFile(variant, args.Get("o")));
  std::cout << "wrote " << args.Get("o") << "\n";

  if (args.Has("eval")) {
    ASSIGN_OR_RETURN(compression::DataSet data, compression::LoadDataSet(args.Get("eval"), original));
    std::cerr << "evaluating on " << data.rows() << " rows of " << args.Get("eval") << "\n";
    ASSIGN_OR_RETURN(compression::Evaluation e,
                     compression::Evaluate(std::move(original), std::move(variant), data,
                                           {.num_threads = static_cast<int>(threads)}));
    if (e.original_top1 >= 0) {
      std::cout << absl::StrFormat("top-1: original %.2f %%, %s %.2f %% (%+.2f points)\n", e.original_top1, profile,
                                   e.variant_top1, e.variant_top1 - e.original_top1);
    }
    std::cout << absl::StrFormat("top-1 agreement %.2f %%, output SQNR %.1f dB, cosine %.5f (%d rows)\n", e.agreement,
                                 e.sqnr_db, e.cosine, e.rows);
  }
  return absl::OkStatus();
}

}  // namespace

int CompressCommand(int argc, char** argv) {
  auto args = Args::Parse(argc, argv, {"help", "offline"}, {"profile", "data", "samples", "calibration", "percentile", "eval", "threads", "o"},
                          {"keep-fp32"});
  if (!args.ok()) return Fail(args.status());
  if (args->Has("help")) {
    std::cout << kCompressUsage;
    return 0;
  }
  const absl::Status status = Compress(*args);
  return status.ok() ? 0 : Fail(status);
}

}  // namespace slimserve::cli
