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

// Reports `done` to `progress`; CANCELLED if it asks to stop.
inline absl::Status Report(const Progress& progress, double done) {
  if (progress && !progress(done)) return absl::CancelledError("cancelled");
  return absl::OkStatus();
}

}  // namespace slimserve::compression

#endif  // SLIMSERVE_COMPRESSION_PROGRESS_H_
