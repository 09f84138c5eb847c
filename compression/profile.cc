#include "compression/profile.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "runtime/status_macros.h"

namespace slimserve::compression {
namespace {

constexpr std::pair<ProfileKind, const char*> kKinds[] = {{ProfileKind::kFp32, "fp32"},
                                                          {ProfileKind::kBf16, "bf16"},
                                                          {ProfileKind::kInt8Dynamic, "int8-dynamic"},
                                                          {ProfileKind::kInt8Static, "int8-static"},
                                                          {ProfileKind::kPruned, "pruned"},
                                                          {ProfileKind::kLowRank, "low-rank"}};
constexpr std::pair<Calibration, const char*> kCalibrations[] = {{Calibration::kMinMax, "minmax"},
                                                                 {Calibration::kPercentile, "percentile"},
                                                                 {Calibration::kEntropy, "entropy"},
                                                                 {Calibration::kMse, "mse"}};
constexpr std::pair<PruneStructure, const char*> kStructures[] = {{PruneStructure::kFilter, "filter"},
                                                                  {PruneStructure::kWeight, "weight"},
                                                                  {PruneStructure::kVector, "vector"},
                                                                  {PruneStructure::kKernel, "kernel"}};
constexpr std::pair<PruneCriterion, const char*> kCriteria[] = {
    {PruneCriterion::kL1, "l1"}, {PruneCriterion::kL2, "l2"}, {PruneCriterion::kBnGamma, "bn-gamma"}};

// The text of `value` in `table`, or "?".
template <typename T, size_t N>
std::string TextOf(const std::pair<T, const char*> (&table)[N], T value) {
  for (const auto& [v, text] : table) {
    if (v == value) return text;
  }
  return "?";
}

// Sets `value` to the entry of `table` named `text`; false when none is.
template <typename T, size_t N>
bool Lookup(const std::pair<T, const char*> (&table)[N], absl::string_view text, T& value) {
  for (const auto& [v, name] : table) {
    if (text == name) {
      value = v;
      return true;
    }
  }
  return false;
}

// "a, b, c": the names of a table.
template <typename T, size_t N>
std::string Names(const std::pair<T, const char*> (&table)[N]) {
  std::vector<std::string> names;
  for (const auto& entry : table) names.push_back(entry.second);
  return absl::StrJoin(names, ", ");
}

}  // namespace

std::string KindText(ProfileKind kind) { return TextOf(kKinds, kind); }

bool UsesCalibration(const Profile& profile) {
  return profile.kind == ProfileKind::kInt8Static || Restructures(profile.kind) ||
         std::any_of(profile.then.begin(), profile.then.end(), UsesCalibration);
}

bool Quantizes(ProfileKind kind) {
  return kind == ProfileKind::kBf16 || kind == ProfileKind::kInt8Dynamic || kind == ProfileKind::kInt8Static;
}

bool Restructures(ProfileKind kind) { return kind == ProfileKind::kPruned || kind == ProfileKind::kLowRank; }

std::string DefaultVariantName(const Profile& profile) {
  std::string name = KindText(profile.kind);
  for (const Profile& step : profile.then) absl::StrAppend(&name, "_", KindText(step.kind));
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

std::string CalibrationText(Calibration calibration) { return TextOf(kCalibrations, calibration); }

namespace {

absl::StatusOr<Profile> ParseStep(absl::string_view text) {
  std::vector<std::string> parts = absl::StrSplit(absl::StripAsciiWhitespace(text), ',');
  Profile p;
  if (!Lookup(kKinds, parts[0], p.kind)) {
    return absl::InvalidArgumentError(absl::StrCat("unknown profile '", parts[0], "'; profiles: ", Names(kKinds)));
  }
  for (size_t i = 1; i < parts.size(); ++i) {
    const std::pair<std::string, std::string> kv = absl::StrSplit(parts[i], absl::MaxSplits('=', 1));
    const auto& [key, value] = kv;
    const bool static_only = key == "calibration" || key == "percentile" || key == "activations";
    if (static_only && p.kind != ProfileKind::kInt8Static) {
      return absl::InvalidArgumentError(absl::StrCat("profile option '", key, "' applies to int8-static only"));
    }
    if ((key == "samples" || key == "data") && !UsesCalibration(p)) {
      return absl::InvalidArgumentError(absl::StrCat("profile option '", key, "' applies to int8-static, pruned and low-rank only"));
    }
    const bool pruned_only = key == "structure" || key == "sparsity" || key == "criterion" || key == "context";
    if (pruned_only != (p.kind == ProfileKind::kPruned) && (pruned_only || key == "keep")) {
      return absl::InvalidArgumentError(absl::StrCat("profile option '", key, "' applies to ",
                                                     pruned_only ? "pruned only" : "bf16 and int8 only"));
    }
    if ((key == "ratio" || key == "energy") && p.kind != ProfileKind::kLowRank) {
      return absl::InvalidArgumentError(absl::StrCat("profile option '", key, "' applies to low-rank only"));
    }
    if (key == "calibration") {
      if (!Lookup(kCalibrations, value, p.calibration)) {
        return absl::InvalidArgumentError(
            absl::StrCat("unknown calibration '", value, "'; known: ", Names(kCalibrations)));
      }
    } else if (key == "structure") {
      if (!Lookup(kStructures, value, p.prune.structure)) {
        return absl::InvalidArgumentError(absl::StrCat("unknown structure '", value, "'; known: ", Names(kStructures)));
      }
    } else if (key == "criterion") {
      if (!Lookup(kCriteria, value, p.prune.criterion)) {
        return absl::InvalidArgumentError(absl::StrCat("unknown criterion '", value, "'; known: ", Names(kCriteria)));
      }
    } else if (key == "context") {
      if (value != "local" && value != "global" && value != "sensitivity") {
        return absl::InvalidArgumentError(absl::StrCat("context is local, global or sensitivity, not '", value, "'"));
      }
      p.prune.global = value == "global";
      p.prune.sensitivity = value == "sensitivity";
    } else if (key == "sparsity") {
      if (!absl::SimpleAtod(value, &p.prune.sparsity) || !(p.prune.sparsity >= 0 && p.prune.sparsity < 1)) {
        return absl::InvalidArgumentError(absl::StrCat("sparsity must be a number in [0, 1), not '", value, "'"));
      }
    } else if (key == "ratio") {
      if (!absl::SimpleAtod(value, &p.low_rank.ratio) || !(p.low_rank.ratio > 0 && p.low_rank.ratio < 1)) {
        return absl::InvalidArgumentError(absl::StrCat("ratio must be a number in (0, 1), not '", value, "'"));
      }
    } else if (key == "energy") {
      if (!absl::SimpleAtod(value, &p.low_rank.energy) || !(p.low_rank.energy > 0 && p.low_rank.energy <= 1)) {
        return absl::InvalidArgumentError(absl::StrCat("energy must be a number in (0, 1], not '", value, "'"));
      }
    } else if (key == "percentile") {
      if (!absl::SimpleAtod(value, &p.percentile) || !(p.percentile > 50 && p.percentile <= 100)) {
        return absl::InvalidArgumentError(absl::StrCat("percentile must be a number in (50, 100], not '", value, "'"));
      }
    } else if (key == "samples") {
      if (!absl::SimpleAtoi(value, &p.samples) || p.samples < 1) {
        return absl::InvalidArgumentError(absl::StrCat("samples must be a positive number, not '", value, "'"));
      }
    } else if (key == "data") {
      p.data = value;
    } else if (key == "activations") {
      if (value != "u8" && value != "s8") {
        return absl::InvalidArgumentError(absl::StrCat("activations are u8 or s8, not '", value, "'"));
      }
      p.s8_activations = value == "s8";
    } else if (key == "keep") {
      if (value.empty()) return absl::InvalidArgumentError("keep= needs a node name or an op type");
      p.keep_fp32.push_back(value);
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown profile option '", parts[i],
          "'; options: calibration, percentile, samples, data, activations, keep; for pruned: structure, sparsity, "
          "criterion, context, samples, data; for low-rank: ratio, energy, samples, data"));
    }
  }
  if (p.prune.sensitivity && p.prune.structure == PruneStructure::kFilter) {
    return absl::InvalidArgumentError("context=sensitivity applies to structure=weight, vector or kernel");
  }
  return p;
}

}  // namespace

absl::StatusOr<Profile> ParseProfile(absl::string_view text) {
  std::vector<Profile> steps;
  std::string data;  // the chain's one calibration data set
  for (absl::string_view part : absl::StrSplit(text, "->")) {
    ASSIGN_OR_RETURN(Profile step, ParseStep(part));
    if (!steps.empty() && (Quantizes(steps.back().kind) || step.kind == ProfileKind::kFp32)) {
      return absl::InvalidArgumentError(absl::StrCat("in a chain, ", KindText(step.kind), " cannot follow ",
                                                     KindText(steps.back().kind), ": prune first, quantize last"));
    }
    if (!step.data.empty() && !data.empty() && step.data != data) {
      return absl::InvalidArgumentError("a chain calibrates on one data set: name it once");
    }
    if (!step.data.empty()) data = step.data;
    steps.push_back(std::move(step));
  }
  for (Profile& step : steps) {
    if (UsesCalibration(step)) step.data = data;
  }
  Profile chain = std::move(steps[0]);
  chain.data = data;
  chain.then.assign(std::make_move_iterator(steps.begin() + 1), std::make_move_iterator(steps.end()));
  return chain;
}

std::string ProfileText(const Profile& profile) {
  std::string text = KindText(profile.kind);
  if (profile.kind == ProfileKind::kInt8Static) {
    absl::StrAppend(&text, ",calibration=", CalibrationText(profile.calibration));
    if (profile.calibration == Calibration::kPercentile) absl::StrAppend(&text, ",percentile=", profile.percentile);
    absl::StrAppend(&text, ",samples=", profile.samples);
    if (!profile.data.empty()) absl::StrAppend(&text, ",data=", profile.data);
    if (profile.s8_activations) absl::StrAppend(&text, ",activations=s8");
  }
  if (profile.kind == ProfileKind::kPruned) {
    const PruneOptions& o = profile.prune;
    absl::StrAppend(&text, ",structure=", TextOf(kStructures, o.structure), ",sparsity=", o.sparsity,
                    ",criterion=", TextOf(kCriteria, o.criterion), ",context=", o.sensitivity ? "sensitivity" : o.global ? "global" : "local");
  }
  if (profile.kind == ProfileKind::kLowRank) {
    if (profile.low_rank.energy > 0) {
      absl::StrAppend(&text, ",energy=", profile.low_rank.energy);
    } else {
      absl::StrAppend(&text, ",ratio=", profile.low_rank.ratio);
    }
  }
  if (Restructures(profile.kind)) {
    absl::StrAppend(&text, ",samples=", profile.samples);
    if (!profile.data.empty()) absl::StrAppend(&text, ",data=", profile.data);
  }
  if (profile.kind != ProfileKind::kFp32 && !Restructures(profile.kind)) {
    std::vector<std::string> keep = profile.keep_fp32;
    std::sort(keep.begin(), keep.end());
    keep.erase(std::unique(keep.begin(), keep.end()), keep.end());
    for (const std::string& k : keep) absl::StrAppend(&text, ",keep=", k);
  }
  for (const Profile& step : profile.then) absl::StrAppend(&text, " -> ", ProfileText(step));
  return text;
}

}  // namespace slimserve::compression
