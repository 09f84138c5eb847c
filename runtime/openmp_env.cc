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
  setenv("OMP_WAIT_POLICY", "active", 1);
  // The binary's own path, not /proc/self/exe, so the process keeps its name.
  char path[4096];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return;
  path[n] = '\0';
  execv(path, argv);  // returns only on failure: carry on as we are
}

}  // namespace slimserve
