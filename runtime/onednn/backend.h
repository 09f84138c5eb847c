// The oneDNN backend: x86 kernels for the heavy ops (convolution, matmul,
// pooling, normalization, elementwise) with activations kept in oneDNN's
// blocked layouts between its own kernels.
//
// Thread-safe: Compile may run on several threads; kernels run concurrently.
//
//   ASSIGN_OR_RETURN(auto backend, OnednnBackend::Create({}));
//   executor_options.backends = {backend.get()};
#ifndef SLIMSERVE_RUNTIME_ONEDNN_BACKEND_H_
#define SLIMSERVE_RUNTIME_ONEDNN_BACKEND_H_

#include <memory>

#include "absl/status/statusor.h"
#include "runtime/kernel.h"

namespace slimserve::runtime::onednn {

struct OnednnOptions {
  // Consider Winograd for 3x3 stride-1 convolutions; kept only where it
  // measures faster than direct convolution and matches it numerically.
  bool winograd = true;
};

// The backend's plan variants (CompileRequest::variant); the executor times
// each whole plan and keeps the fastest.
enum OnednnVariant : int {
  // Direct convolution, memory formats as oneDNN prefers per layer.
  kDirect = 0,
  // Per layer, the faster of direct and Winograd, measured in isolation.
  kMeasuredPerLayer = 1,
  // Winograd wherever it applies, and every other convolution in the same
  // channel-blocked format (nChw16c), so no reorders separate them.
  kWinogradBlocked = 2,
};

class OnednnBackend : public Backend {
 public:
  static absl::StatusOr<std::unique_ptr<OnednnBackend>> Create(const OnednnOptions& options);
  absl::string_view name() const override { return "onednn"; }
  int num_variants() const override;
};

// Primitives created so far in this process (tests check a warm run makes none).
int64_t PrimitivesCreatedForTesting();
// Kernels timed against others so far (tests check each choice is timed once per plan build).
int64_t KernelsTimedForTesting();

}  // namespace slimserve::runtime::onednn

#endif  // SLIMSERVE_RUNTIME_ONEDNN_BACKEND_H_
