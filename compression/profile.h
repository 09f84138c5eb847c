// A compression profile: what variant to build from a model, as a value with
// a short text form for command lines and a canonical text that identifies
// it (the same profile always prints the same text, so it can key a cache).
//
//   ASSIGN_OR_RETURN(Profile p, ParseProfile("int8-static,calibration=percentile,percentile=99.9"));
//   ProfileText(p) == "int8-static,calibration=percentile,percentile=99.9,samples=512"
#ifndef SLIMSERVE_COMPRESSION_PROFILE_H_
#define SLIMSERVE_COMPRESSION_PROFILE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "compression/low_rank.h"
#include "compression/prune.h"
#include "compression/quantize.h"

namespace slimserve::compression {

enum class ProfileKind { kFp32, kBf16, kInt8Dynamic, kInt8Static, kPruned, kLowRank };

struct Profile {
  ProfileKind kind = ProfileKind::kInt8Static;
  // int8-static only:
  Calibration calibration = Calibration::kMinMax;
  double percentile = 99.99;  // with kPercentile
  bool s8_activations = false;  // int8 activations instead of uint8
  // int8-static, pruned (its recovery) and low-rank (its fit):
  int64_t samples = 512;      // calibration rows
  std::string data;           // calibration data: a data set name or "traffic"; empty: the caller's default
  // pruned only:
  PruneOptions prune;
  // low-rank only:
  LowRankOptions low_rank;
  // A chain: profiles applied after this one, in order, on its result
  // ("pruned,sparsity=0.5 -> int8-static"). bf16 and int8 come last.
  std::vector<Profile> then;
  // Node names or op types left in fp32 (bf16 and int8).
  std::vector<std::string> keep_fp32;
};

// "KIND[,key=value...]": KIND is fp32, bf16, int8-dynamic, int8-static,
// pruned or low-rank; keys calibration (minmax|percentile|entropy|mse), percentile,
// samples, data, activations (u8|s8), keep (repeatable: a node name, an op
// type or "depthwise"); for pruned structure (filter|weight|vector|kernel),
// sparsity, criterion (l1|l2|bn-gamma), context (local|global|sensitivity), samples,
// data; for low-rank ratio or energy, samples, data. Profiles joined by "->" make a chain, calibrated on one data set.
// Errors name the part that is wrong.
absl::StatusOr<Profile> ParseProfile(absl::string_view text);
// The canonical text: only the options that apply to the kind, keep sorted;
// a chain's steps joined by " -> ".
std::string ProfileText(const Profile& profile);
// Whether the profile (a step of it) needs calibration data (int8-static,
// pruned, low-rank).
bool UsesCalibration(const Profile& profile);
// Whether it quantizes (bf16, int8).
bool Quantizes(ProfileKind kind);
// Whether it changes the model's structure (pruned, low-rank).
bool Restructures(ProfileKind kind);
// "int8-static", "bf16", ...
std::string KindText(ProfileKind kind);
// The name a variant of this profile is served under by default:
// "int8_static"; a chain's: "pruned_int8_static".
std::string DefaultVariantName(const Profile& profile);
// "minmax", "percentile", "entropy", "mse".
std::string CalibrationText(Calibration calibration);

}  // namespace slimserve::compression

#endif  // SLIMSERVE_COMPRESSION_PROFILE_H_
