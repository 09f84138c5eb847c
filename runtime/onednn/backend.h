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

class OnednnBackend : public Backend {
 public:
  static absl::StatusOr<std::unique_ptr<OnednnBackend>> Create(const OnednnOptions& options);
  absl::string_view name() const override { return "onednn"; }
};

// Primitives created so far in this process (tests check a warm run makes none).
int64_t PrimitivesCreatedForTesting();

}  // namespace slimserve::runtime::onednn

#endif  // SLIMSERVE_RUNTIME_ONEDNN_BACKEND_H_
