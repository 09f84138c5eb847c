// Function multi-versioning for the reference kernels' inner loops.
#ifndef SLIMSERVE_RUNTIME_REFERENCE_MULTIVERSION_H_
#define SLIMSERVE_RUNTIME_REFERENCE_MULTIVERSION_H_

// GCC on x86-64 Linux: one copy of the function per ISA level, picked by an
// ifunc resolver at load time, so loops vectorize for AVX2 + FMA and AVX-512
// while the build itself targets baseline x86-64. ISA levels, not CPU names:
// a clone for "arch=skylake-avx512" is chosen by CPU model, so never on AMD.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define SLIMSERVE_MULTIVERSION \
  __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define SLIMSERVE_MULTIVERSION
#endif

#endif  // SLIMSERVE_RUNTIME_REFERENCE_MULTIVERSION_H_
