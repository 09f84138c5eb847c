#include "runtime/openmp_env.h"

#include <unistd.h>

#include <cstdlib>

namespace slimserve {

// libgomp counts about 100 000 spins per millisecond: 2000 is ~20 us, the gap
// between consecutive kernels of a run.
constexpr char kSpinCount[] = "2000";

void UseShortOpenMpSpins(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr) {
    return;
  }
  setenv("GOMP_SPINCOUNT", kSpinCount, 1);
  execv("/proc/self/exe", argv);  // returns only on failure: carry on as we are
}

}  // namespace slimserve
