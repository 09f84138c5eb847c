// When the reference kernels use OpenMP threads.
#ifndef SLIMSERVE_RUNTIME_REFERENCE_PARALLEL_H_
#define SLIMSERVE_RUNTIME_REFERENCE_PARALLEL_H_

#include <cstdint>

namespace slimserve::runtime::reference {

// Whether a loop over `units` independent items that together cost `work`
// multiply-adds (or so) is worth a parallel region: forking and joining costs
// microseconds, far more on a busy machine, so small loops stay serial.
inline bool WorthThreads(int num_threads, int64_t units, double work) {
  return num_threads > 1 && units > 1 && work >= double{1 << 16};
}

}  // namespace slimserve::runtime::reference

#endif  // SLIMSERVE_RUNTIME_REFERENCE_PARALLEL_H_
