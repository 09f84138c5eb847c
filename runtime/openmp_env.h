#ifndef SLIMSERVE_RUNTIME_OPENMP_ENV_H_
#define SLIMSERVE_RUNTIME_OPENMP_ENV_H_

namespace slimserve {

// Sets the GNU OpenMP wait behaviour slimserve's binaries run best with, by
// re-executing the process once with GOMP_SPINCOUNT=2000 and
// OMP_WAIT_POLICY=active: libgomp reads its environment when it loads, before
// main. Does nothing when the caller has set either. Call first thing in main.
//
// Why a short spin (bench/README.md has the numbers): threads that sleep at once
// pay a futex wake-up per kernel, which at batch 1 costs more than the kernels
// (MobileNetV2 5.4 ms sleeping vs 3.1 ms spinning ~20 us); threads that spin for
// milliseconds (libgomp's default) stall for ages on a shared machine while the
// thread they wait for is descheduled (ResNet-18 300 ms vs 20 ms). "active"
// only matters once OpenMP threads outnumber the cores (a server with several
// models, each with its own team): libgomp then spins 1000 times instead of
// 100 (ResNet-18 beside a second model: 12.0 vs 14.0 ms at batch 1).
void UseShortOpenMpSpins(char** argv);

}  // namespace slimserve

#endif  // SLIMSERVE_RUNTIME_OPENMP_ENV_H_
