#include "compression/profile.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace slimserve::compression {
namespace {

constexpr std::pair<ProfileKind, const char*> kKinds[] = {{ProfileKind::kFp32, "fp32"},
                                                          {ProfileKind::kBf16, "bf16"},
                                                          {ProfileKind::kInt8Dynamic, "int8-dynamic"},
                                                          {ProfileKind::kInt8Static, "int8-static"}};
constexpr std::pair<Calibration, const char*> kCalibrations[] = {{Calibration::kMinMax, "minmax"},
                                                                 {Calibration::kPercentile, "percentile"},
                                                                 {Calibration::kEntropy, "entropy"},
                                                                 {Calibration::kMse, "mse"}};

}  // namespace

std::string KindText(ProfileKind kind) {
  for (const auto& [k, text] : kKinds) {
    if (k == kind) return text;
  }
  return "?";
}

std::string DefaultVariantName(ProfileKind kind) {
  std::string name = KindText(kind);
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

std::string CalibrationText(Calibration calibration) {
  for (const auto& [c, text] : kCalibrations) {
    if (c == calibration) return text;
  }
  return "?";
}

absl::StatusOr<Profile> ParseProfile(absl::string_view text) {
  std::vector<std::string> parts = absl::StrSplit(text, ',');
  Profile p;
  const auto kind = std::find_if(std::begin(kKinds), std::end(kKinds), [&](const auto& k) { return parts[0] == k.second; });
  if (kind == std::end(kKinds)) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown profile '", parts[0], "'; profiles: fp32, bf16, int8-dynamic, int8-static"));
  }
  p.kind = kind->first;
  for (size_t i = 1; i < parts.size(); ++i) {
    const std::pair<std::string, std::string> kv = absl::StrSplit(parts[i], absl::MaxSplits('=', 1));
    const auto& [key, value] = kv;
    const bool static_only =
        key == "calibration" || key == "percentile" || key == "samples" || key == "data" || key == "activations";
    if (static_only && p.kind != ProfileKind::kInt8Static) {
      return absl::InvalidArgumentError(absl::StrCat("profile option '", key, "' applies to int8-static only"));
    }
    if (key == "calibration") {
      const auto c = std::find_if(std::begin(kCalibrations), std::end(kCalibrations),
                                  [&](const auto& k) { return value == k.second; });
      if (c == std::end(kCalibrations)) {
        return absl::InvalidArgumentError(
            absl::StrCat("unknown calibration '", value, "'; known: minmax, percentile, entropy, mse"));
      }
      p.calibration = c->first;
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
          "unknown profile option '", parts[i], "'; options: calibration, percentile, samples, data, activations, keep"));
    }
  }
  return p;
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
  if (profile.kind != ProfileKind::kFp32) {
    std::vector<std::string> keep = profile.keep_fp32;
    std::sort(keep.begin(), keep.end());
    keep.erase(std::unique(keep.begin(), keep.end()), keep.end());
    for (const std::string& k : keep) absl::StrAppend(&text, ",keep=", k);
  }
  return text;
}

}  // namespace slimserve::compression
