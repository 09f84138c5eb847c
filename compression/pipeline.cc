#include "compression/pipeline.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/passes/passes.h"
#include "runtime/status_macros.h"

namespace slimserve::compression {

namespace {

// One step of a profile (its `then` ignored), on `original`.
absl::StatusOr<BuiltVariant> BuildStep(runtime::Graph original, const Profile& profile, const DataSet* calibration,
                                       const BuildOptions& options) {
  const std::vector<std::vector<runtime::Tensor>> batches =
      UsesCalibration(profile) ? calibration->Batches(0, profile.samples, options.batch)
                               : std::vector<std::vector<runtime::Tensor>>{};
  runtime::OptimizeOptions fold;
  fold.fuse = false;  // fused ops are slimserve's own: the result must stay standard ONNX
  if (profile.kind == ProfileKind::kPruned) {
    BuiltVariant built{original, {}, {}};
    PruneOptions prune = profile.prune;
    Progress recovery = options.progress;
    std::vector<LayerSensitivity> sensitivity;
    if (prune.sensitivity) {  // on the first two batches, for the first half of the progress
      const auto few = absl::MakeConstSpan(batches).subspan(0, std::min<size_t>(2, batches.size()));
      ASSIGN_OR_RETURN(sensitivity,
                       SensitivityAnalysis(original, prune, few, options.num_threads, Part(options.progress, 0, 0.5)));
      prune.layer_sparsity = AllocateSparsity(sensitivity, prune.sparsity);
      recovery = Part(options.progress, 0.5, 1);
    }
    ASSIGN_OR_RETURN(built.pruning, Prune(built.graph, prune));
    std::string levels;
    for (double level : kSensitivityLevels) absl::StrAppend(&levels, levels.empty() ? "" : "/", 100 * level);
    for (const LayerSensitivity& l : sensitivity) {
      std::string sqnr;
      for (double db : l.sqnr_db) absl::StrAppend(&sqnr, sqnr.empty() ? "" : "/", absl::StrFormat("%.1f", db));
      built.pruning.layers.push_back(
          absl::StrFormat("sensitivity of '%s' (%d weights): output SQNR %s dB with it alone at %s %%; given %.0f %%",
                          l.node, l.weights, sqnr, levels, 100 * prune.layer_sparsity[l.node]));
    }
    RETURN_IF_ERROR(runtime::Optimize(original, fold));
    RETURN_IF_ERROR(runtime::Optimize(built.graph, fold));
    RETURN_IF_ERROR(Recover(original, built.graph, built.pruning, batches, {options.num_threads, recovery}));
    return built;
  }
  RETURN_IF_ERROR(runtime::Optimize(original, fold));
  BuiltVariant built{std::move(original), {}, {}};
  if (profile.kind == ProfileKind::kFp32) return built;
  if (profile.kind == ProfileKind::kLowRank) {
    ASSIGN_OR_RETURN(built.pruning,
                     Factorize(built.graph, profile.low_rank, batches, options.num_threads, options.progress));
    return built;
  }
  // Per-channel DequantizeLinear and Cast to bfloat16 are opset-13 ops.
  RETURN_IF_ERROR(runtime::UpgradeOpset(built.graph, 13));

  QuantizeOptions q;
  q.precision = profile.kind == ProfileKind::kBf16         ? Precision::kBf16
                : profile.kind == ProfileKind::kInt8Dynamic ? Precision::kInt8Dynamic
                                                            : Precision::kInt8Static;
  q.calibration = profile.calibration;
  q.percentile = profile.percentile;
  q.s8_activations = profile.s8_activations;
  q.keep_fp32 = profile.keep_fp32;
  q.num_threads = options.num_threads;
  q.progress = options.progress;
  ASSIGN_OR_RETURN(built.report, Quantize(built.graph, q, batches));
  return built;
}

}  // namespace

absl::StatusOr<BuiltVariant> BuildVariant(runtime::Graph original, const Profile& profile,
                                          const DataSet* calibration, const BuildOptions& options) {
  if (UsesCalibration(profile) && (calibration == nullptr || calibration->rows() == 0)) {
    return absl::InvalidArgumentError(absl::StrCat(ProfileText(profile), " needs calibration data"));
  }
  std::vector<const Profile*> steps = {&profile};
  for (const Profile& step : profile.then) steps.push_back(&step);
  BuiltVariant built{std::move(original), {}, {}};
  for (size_t i = 0; i < steps.size(); ++i) {
    if (options.starting) options.starting(*steps[i]);
    BuildOptions step_options = options;  // step i of n covers [i / n, (i + 1) / n]
    step_options.progress = Part(options.progress, static_cast<double>(i) / steps.size(),
                                 static_cast<double>(i + 1) / steps.size());
    ASSIGN_OR_RETURN(BuiltVariant step, BuildStep(std::move(built.graph), *steps[i], calibration, step_options));
    built.graph = std::move(step.graph);
    if (Restructures(steps[i]->kind)) {  // the steps' layers, from the first one's parameters
      if (!built.pruning.layers.empty()) {
        step.pruning.parameters_before = built.pruning.parameters_before;
        step.pruning.layers.insert(step.pruning.layers.begin(), built.pruning.layers.begin(), built.pruning.layers.end());
      }
      built.pruning = std::move(step.pruning);
    } else {
      built.report = std::move(step.report);
    }
  }
  return built;
}

}  // namespace slimserve::compression
