// How long work in compression/ reports how far it got, and learns that it
// should stop.
#ifndef SLIMSERVE_COMPRESSION_PROGRESS_H_
#define SLIMSERVE_COMPRESSION_PROGRESS_H_

#include <functional>

#include "absl/status/status.h"

namespace slimserve::compression {

// Called with the share of the work done, in [0, 1]; returns false when the
// work should stop (it then fails with CANCELLED). An empty one is never called.
using Progress = std::function<bool(double done)>;

// The part [from, to] of `whole`'s range, for a piece of the work: its
// `done` in [0, 1] reaches `whole` as from + (to - from) x done. Empty when
// `whole` is.
inline Progress Part(const Progress& whole, double from, double to) {
  if (!whole) return {};
  return [whole, from, to](double done) { return whole(from + (to - from) * done); };
}

// Reports `done` to `progress`; CANCELLED if it asks to stop.
inline absl::Status Report(const Progress& progress, double done) {
  if (progress && !progress(done)) return absl::CancelledError("cancelled");
  return absl::OkStatus();
}

}  // namespace slimserve::compression

#endif  // SLIMSERVE_COMPRESSION_PROGRESS_H_
