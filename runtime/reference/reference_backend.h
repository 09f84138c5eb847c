// The reference backend: runs any node the op registry knows, with plain C++.
// Thread-safe; kernels borrow the Node, which must outlive them.
#ifndef SLIMSERVE_RUNTIME_REFERENCE_REFERENCE_BACKEND_H_
#define SLIMSERVE_RUNTIME_REFERENCE_REFERENCE_BACKEND_H_

#include "runtime/kernel.h"

namespace slimserve::runtime::reference {

class ReferenceBackend final : public Backend {
 public:
  absl::string_view name() const override { return "reference"; }
  absl::StatusOr<std::unique_ptr<Kernel>> Compile(const CompileRequest& request) override;
};

}  // namespace slimserve::runtime::reference

#endif  // SLIMSERVE_RUNTIME_REFERENCE_REFERENCE_BACKEND_H_
