// slimctl compress --offline: the compression pipeline on a file, no server.
#include <iostream>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/args.h"
#include "cli/common.h"
#include "cli/offline.h"
#include "cli/variants.h"
#include "compression/dataset.h"
#include "compression/evaluate.h"
#include "compression/pipeline.h"
#include "compression/profile.h"
#include "runtime/onnx_export.h"
#include "runtime/onnx_import.h"
#include "runtime/status_macros.h"

namespace slimserve::cli {
namespace {

constexpr char kCompressUsage[] =
    "usage: slimctl compress MODEL --profile PROFILE [--data NAME|traffic] [--eval NAME] [--variant V] [options]\n"
    "       slimctl compress --offline MODEL.onnx --profile PROFILE -o OUT.onnx [options]\n"
    "On a server (--url, default localhost:8001): builds a compressed variant of the served MODEL in the\n"
    "background with a progress bar, evaluates it against the original and serves it as MODEL.V (V defaults\n"
    "to the profile: int8_static, int8_dynamic, bf16, fp32, pruned, low_rank). --data and --eval name uploaded data sets\n"
    "(slimctl datasets); without them the server uses a sample of the model's recent requests.\n"
    "  --no-wait          print the job and return (slimctl jobs, slimctl cancel JOB)\n"
    "Offline (--offline): the same pipeline in this process, written as ONNX: int8 in QDQ form\n"
    "(QuantizeLinear/DequantizeLinear around the original ops), which ONNX Runtime runs too.\n"
    "  --profile P        int8-static: activation ranges calibrated on --data;\n"
    "                     int8-dynamic: activation ranges computed per request;\n"
    "                     bf16: weights and activations rounded to bfloat16; fp32: BatchNorm folded;\n"
    "                     pruned: filters removed or weights zeroed by magnitude, then the layers solved\n"
    "                     again on --data to give the original's outputs;\n"
    "                     low-rank: MatMul, Gemm and 1x1 Conv weights W (in x out) replaced by two factors\n"
    "                     of rank r fitted to the layer's outputs on --data, where that lowers the FLOPs.\n"
    "                     Options may follow as KIND,key=value,... (the keys below, and keep=NAME);\n"
    "                     pruned takes structure=filter|weight|vector|kernel (default filter: whole\n"
    "                     output channels, removed; the others zero single weights, 1x4 vectors or kh x kw\n"
    "                     kernels), sparsity=S in [0, 1) (default 0.5), criterion=l1|l2|bn-gamma,\n"
    "                     context=local|global|sensitivity (the same share per layer, one threshold for\n"
    "                     all, or each layer's share from its measured effect on the output; not filters).\n"
    "                     low-rank takes ratio=R in (0, 1) (default 0.5: r (in + out) = R in out) or\n"
    "                     energy=E in (0, 1] (the least rank keeping that share of the outputs' energy).\n"
    "                     Profiles joined by -> are a chain, one variant: 'pruned,sparsity=0.5 -> int8-static'\n"
    "  --data FILE.npz    offline: calibration data (int8-static, pruned, low-rank), arrays named after the model's inputs\n"
    "  --samples N        calibration rows taken from --data (default 512)\n"
    "  --calibration C    minmax (default: the whole range of each activation), percentile, entropy\n"
    "                     (the clipped range whose histogram diverges least, KL), or mse (the clipped\n"
    "                     range with the least squared quantization error)\n"
    "  --percentile P     with --calibration percentile: clip each tail beyond the P-th (default 99.99)\n"
    "  --keep-fp32 NAME   a node name, an op type or `depthwise` (every depthwise Conv) to leave in fp32\n"
    "                     (repeatable)\n"
    "  --eval FILE.npz    offline: compare the variant with the original on this data set: top-1 against its\n"
    "                     `labels` array if present, top-1 agreement, SQNR and cosine of the outputs\n"
    "  --threads T        intra-op threads (default: all cores)\n"
    "Weights are int8 with one scale per output channel; activations uint8. BatchNorm is folded first.\n";

absl::Status Compress(const Args& args) {
  if (!args.Has("offline")) return CompressOnServer(args);
  if (args.positional().size() != 1 || args.Get("o").empty()) {
    return absl::InvalidArgumentError("give MODEL.onnx and -o OUT.onnx (see --help)");
  }
  // The options given as flags join the profile's text form.
  std::string text = args.Get("profile");
  for (const char* key : {"calibration", "percentile", "samples"}) {
    if (args.Has(key)) absl::StrAppend(&text, ",", key, "=", args.Get(key));
  }
  for (const std::string& keep : args.GetAll("keep-fp32")) absl::StrAppend(&text, ",keep=", keep);
  ASSIGN_OR_RETURN(compression::Profile profile, compression::ParseProfile(text));
  if (!profile.data.empty()) return absl::InvalidArgumentError("offline, calibration data comes from --data FILE.npz");
  ASSIGN_OR_RETURN(int64_t threads, args.GetInt("threads", 0));
  ASSIGN_OR_RETURN(runtime::Graph original, runtime::ImportOnnxFile(args.positional()[0], {}));

  compression::DataSet calibration;
  if (compression::UsesCalibration(profile)) {
    if (!args.Has("data")) {
      return absl::InvalidArgumentError(
          absl::StrCat(compression::KindText(profile.kind), " needs calibration data: --data FILE.npz"));
    }
    ASSIGN_OR_RETURN(calibration, compression::LoadDataSet(args.Get("data"), original));
    std::cerr << "calibrating on " << std::min(profile.samples, calibration.rows()) << " rows of " << args.Get("data")
              << "\n";
  }
  ASSIGN_OR_RETURN(compression::BuiltVariant built,
                   compression::BuildVariant(original, profile, &calibration, {.num_threads = static_cast<int>(threads)}));
  const compression::QuantizeReport& report = built.report;
  runtime::Graph& variant = built.graph;
  if (compression::Restructures(profile.kind)) {
    const compression::PruneReport& pruning = built.pruning;
    std::cout << absl::StrFormat("%s: parameters %d -> %d (%d not zero, %.1f %%)\n",
                                 compression::ProfileText(profile), pruning.parameters_before,
                                 pruning.parameters_after, pruning.nonzero_after,
                                 100.0 * pruning.nonzero_after / std::max<int64_t>(1, pruning.parameters_before));
    for (const std::string& layer : pruning.layers) std::cout << "  " << layer << "\n";
  } else {
    std::cout << compression::ProfileText(profile) << ": " << report.quantized.size() << " nodes quantized\n";
    for (const std::string& kept : report.kept_fp32) std::cout << "  fp32: " << kept << "\n";
  }
  RETURN_IF_ERROR(runtime::ExportOnnxFile(variant, args.Get("o")));
  std::cout << "wrote " << args.Get("o") << "\n";

  if (args.Has("eval")) {
    ASSIGN_OR_RETURN(compression::DataSet data, compression::LoadDataSet(args.Get("eval"), original));
    std::cerr << "evaluating on " << data.rows() << " rows of " << args.Get("eval") << "\n";
    ASSIGN_OR_RETURN(compression::Evaluation e,
                     compression::Evaluate(std::move(original), std::move(variant), data,
                                           {.num_threads = static_cast<int>(threads)}));
    if (e.original_top1 >= 0) {
      std::cout << absl::StrFormat("top-1: original %.2f %%, %s %.2f %% (%+.2f points)\n", e.original_top1,
                                   compression::KindText(profile.kind), e.variant_top1, e.variant_top1 - e.original_top1);
    }
    std::cout << absl::StrFormat("top-1 agreement %.2f %%, output SQNR %.1f dB, cosine %.5f (%d rows)\n", e.agreement,
                                 e.sqnr_db, e.cosine, e.rows);
  }
  return absl::OkStatus();
}

}  // namespace

int CompressCommand(int argc, char** argv) {
  auto args = Args::Parse(argc, argv, {"help", "offline", "no-wait"}, {"profile", "data", "samples", "calibration", "percentile", "eval", "threads", "o", "url", "variant"},
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
