// The XNNPACK backend: portable fp32 kernels for convolution, pooling, fully
// connected layers and elementwise ops. Convolution and pooling work in
// channels-last (NHWC) form, so their outputs stay channels-last from one
// XNNPACK kernel to the next and are converted to row-major only where
// another backend or the caller reads them.
//
// Thread-safe: Compile may run on several threads and kernels run
// concurrently. All kernels share the backend's one thread pool; XNNPACK
// work submitted to it from several threads at once runs one piece at a time.
// The backend must outlive every kernel (and executor) made from it.
// XNNPACK may read up to 16 bytes past the end of an input (never write).
// Values in the executor's arena have that slack (kernels reserve scratch,
// which follows them); a graph input read directly should too, or it could
// fault when it ends exactly at a page boundary.
//
//   ASSIGN_OR_RETURN(auto backend, XnnpackBackend::Create({.num_threads = 2}));
//   executor_options.backends = {backend.get()};
#ifndef SLIMSERVE_RUNTIME_XNNPACK_BACKEND_H_
#define SLIMSERVE_RUNTIME_XNNPACK_BACKEND_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "runtime/kernel.h"

namespace slimserve::runtime::xnnpack {

struct XnnpackOptions {
  // Threads of the backend's pool, the calling thread included; 0 means one
  // per core.
  int num_threads = 0;
};

class XnnpackBackend : public Backend {
 public:
  // Initializes XNNPACK (once per process) and creates the thread pool.
  static absl::StatusOr<std::unique_ptr<XnnpackBackend>> Create(const XnnpackOptions& options);
  absl::string_view name() const override { return "xnnpack"; }

  // XNNPACK operators this backend's kernels have created so far: one per
  // kernel at compile time, more only when runs of one kernel overlap. Tests
  // check that a warm run creates none.
  virtual int64_t operators_created() const = 0;
};

}  // namespace slimserve::runtime::xnnpack

#endif  // SLIMSERVE_RUNTIME_XNNPACK_BACKEND_H_
