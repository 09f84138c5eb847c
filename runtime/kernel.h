// The interface between the executor and the backends that run nodes.
//
// At load the executor describes each node's inputs and outputs (TensorDesc,
// shapes fully known) and asks backends, in order of preference, to compile a
// Kernel. On every request it binds memory and calls Kernel::Run. Backends do
// all expensive work (weight packing, primitive creation) in Compile.
#ifndef SLIMSERVE_RUNTIME_KERNEL_H_
#define SLIMSERVE_RUNTIME_KERNEL_H_

#include <memory>
#include <string>
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "runtime/graph.h"
#include "runtime/tensor.h"

namespace slimserve::runtime {

class Backend;
class Kernel;

// A memory layout other than dense row-major, chosen by a backend for the
// values its kernels produce (e.g. oneDNN's channel-blocked nChw16c). Only
// kernels of the owning backend read it; the executor asks the owner for a
// conversion to row-major wherever another backend or the caller reads it.
class Layout {
 public:
  virtual ~Layout() = default;
  virtual Backend* owner() const = 0;
  // For reports, e.g. "onednn:aBcd16b".
  virtual std::string name() const = 0;
};

// A value as seen at compile time.
struct TensorDesc {
  DataType dtype = DataType::kUndefined;  // kUndefined: an omitted optional input
  Shape shape;
  // Set when the value is known at compile time (initializer or folded constant).
  // Owned by the executor; valid while the kernel lives.
  const Tensor* constant = nullptr;
  // Null for row-major. Set by a backend's Compile on the outputs it produces.
  std::shared_ptr<const Layout> layout;
  // Bytes the value occupies in `layout`; 0 means the row-major size.
  int64_t bytes = 0;

  bool defined() const { return dtype != DataType::kUndefined; }
};

struct KernelArgs {
  absl::Span<const Tensor> inputs;  // an omitted optional input is an undefined Tensor
  absl::Span<Tensor> outputs;       // memory of the planned size, contents undefined
  void* scratch = nullptr;          // Kernel::scratch_bytes() bytes, 64-byte aligned
};

// A node compiled for fixed input shapes. Run may be called concurrently from
// several threads with different KernelArgs; it must not mutate the kernel.
class Kernel {
 public:
  virtual ~Kernel() = default;
  virtual absl::Status Run(const KernelArgs& args) const = 0;
  virtual size_t scratch_bytes() const { return 0; }
  // An input whose memory output 0 may take over when nothing reads that
  // input afterwards (e.g. a residual addend accumulated into by a sum
  // post-op); -1 for none. Run must then work whether or not the two alias.
  virtual int inplace_input() const { return -1; }
  // What runs, when a backend chose between ways (e.g. "sparse 1x1, 10.0 %
  // non-zero: 0.045 ms, dense 0.098 ms"), for reports; empty otherwise.
  const std::string& description() const { return description_; }
  void set_description(std::string text) { description_ = std::move(text); }

 private:
  std::string description_;
};

// A kernel a backend chose by timing it against another, kept for the other
// plans the executor builds from the same inputs (which differ in other
// nodes), so that each alternative is built and timed once.
struct KernelChoice {
  bool alternative = false;  // the timed alternative won over the backend's default kernel
  std::string description;   // what was measured, for Kernel::description
};
using KernelChoices = absl::flat_hash_map<std::string, KernelChoice>;  // by a key of the backend's

struct CompileRequest {
  const Node& node;
  int64_t opset;
  absl::Span<const TensorDesc> inputs;
  // Dtype and shape from shape inference; a backend may set layout and bytes.
  absl::Span<TensorDesc> outputs;
  int num_threads;
  // Which of the backend's plan variants to build, in [0, num_variants()).
  int variant = 0;
  // Whether the backend may time alternatives to choose a kernel.
  bool measure = true;
  // Choices made while building this plan's sibling variants; null for none.
  KernelChoices* choices = nullptr;
  // Set (when not null) by a backend whose kernel for this node would differ
  // in another of its variants; a plan none of whose nodes sets it is the
  // same in every variant, and the executor builds it once.
  bool* variant_sensitive = nullptr;
};

// A source of kernels. Backends are stateless after construction, or guard
// their own state: Compile may be called from several threads.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual absl::string_view name() const = 0;
  // Ways this backend can compile a whole graph (e.g. layout strategies),
  // between which the executor chooses by timing complete plans.
  virtual int num_variants() const { return 1; }
  // A kernel for the node, or nullptr when this backend does not run this node
  // at these types and shapes. An error means the node itself is invalid.
  virtual absl::StatusOr<std::unique_ptr<Kernel>> Compile(const CompileRequest& request) = 0;
  // A kernel copying `value`, in one of this backend's layouts, to a row-major
  // tensor of the same dtype and shape. Backends that set layouts override it.
  virtual absl::StatusOr<std::unique_ptr<Kernel>> CompileToRowMajor(const TensorDesc& value);
  // Called when the executor stops using this backend for now (the next run
  // uses others, or the caller pauses): worker threads that would spin
  // waiting for the next job should sleep instead, so as not to take cores
  // from other backends' threads or other work.
  virtual void Rest() {}
};

}  // namespace slimserve::runtime

#endif  // SLIMSERVE_RUNTIME_KERNEL_H_
