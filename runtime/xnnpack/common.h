// Shared pieces of the XNNPACK backend: its channels-last layout, status
// mapping, channel reorders and the pooled-operator kernel that every op
// family builds on. Only files in runtime/xnnpack include xnnpack.h.
#ifndef SLIMSERVE_RUNTIME_XNNPACK_COMMON_H_
#define SLIMSERVE_RUNTIME_XNNPACK_COMMON_H_

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "pthreadpool.h"
#include "runtime/activation.h"
#include "runtime/kernel.h"
#include "xnnpack.h"

namespace slimserve::runtime::xnnpack {

// Channels-last order of a value shaped [N, C, spatial...] (NHWC for a 4-D
// NCHW tensor): what XNNPACK's convolution and pooling read and write. Same
// size as row-major.
class XnnpackLayout final : public Layout {
 public:
  explicit XnnpackLayout(Backend* owner) : owner_(owner) {}
  Backend* owner() const override { return owner_; }
  std::string name() const override { return "xnnpack:channels-last"; }

 private:
  Backend* owner_;
};

// What the backend lends its kernels; lives as long as the backend.
struct BackendState {
  pthreadpool_t threadpool = nullptr;
  std::shared_ptr<const Layout> channels_last;
  std::atomic<int64_t> operators_created{0};
};

// OK for success; otherwise an error naming the action and the operator,
// e.g. "XNNPACK setting up max_pooling2d_nhwc_f32: invalid parameter".
absl::Status XnnStatus(xnn_status status, absl::string_view action, absl::string_view what);

bool IsChannelsLast(const TensorDesc& value);
// True when a [N, C, spatial...] shape has the same memory order both ways
// (one channel, or one pixel): such values never need a reorder.
bool LayoutsCoincide(const Shape& shape);
// `shape` ([N, C, spatial...]) in channels-last order: [N, spatial..., C].
Shape ChannelsLastShape(const Shape& shape);

enum class Reorder { kNone, kToChannelsLast, kToRowMajor };
// Moves a [N, C, spatial...] value between row-major and channels-last order,
// in parallel on `threadpool` (null: on the calling thread).
void ReorderChannels(Reorder reorder, const Shape& shape, const float* src, float* dst,
                     pthreadpool_t threadpool);

// The padding of one spatial dimension as XNNPACK takes it.
struct Padding {
  int64_t begin = 0;
  int64_t end = 0;
};

// Padding for one spatial dimension (from ONNX `pads` begin or `auto_pad`)
// with which XNNPACK's output size, (begin + in + end - window) / stride + 1,
// is `out`, the size shape inference gave. The end is what the last window
// reaches: ceil_mode's partial windows get padding, padding no window reaches
// is dropped. nullopt when no padding yields `out`.
std::optional<Padding> SpatialPadding(const std::string& auto_pad, int64_t in, int64_t out,
                                      int64_t kernel, int64_t stride, int64_t dilation,
                                      int64_t pad_begin);

// XNNPACK's output clamp for a fused activation; nullopt for activations the
// clamp cannot express.
std::optional<std::pair<float, float>> ClampRange(const Activation& activation);

// A deleter, so that operators live in unique_ptrs.
struct OperatorDeleter {
  void operator()(xnn_operator_t op) const { xnn_delete_operator(op); }
};
using Operator = std::unique_ptr<xnn_operator, OperatorDeleter>;

// One operand of an XNNPACK operator as the kernel finds it on each run.
struct Operand {
  int input = 0;                     // the node input it comes from
  Reorder reorder = Reorder::kNone;  // done into scratch before the operator runs
  Shape shape;                       // the input's [N, C, spatial...] shape, for reorders
  // When not empty: compile-time data used instead of the input (a constant
  // already in the order the operator reads). Padded past its end, since
  // XNNPACK may read XNN_EXTRA_BYTES beyond an array.
  std::vector<float> owned;

  // Compile-time data; `values` in the operator's order.
  static Operand Owned(std::vector<float> values);
};

// Runs one XNNPACK operator on the backend's thread pool. An operator binds
// its input and output pointers in setup, so overlapping runs cannot share
// one: the kernel keeps a pool of instances, created at compile time (one)
// and on demand when runs overlap; nothing else is created per run.
// Thread-safe: Run may be called concurrently.
class OperatorKernel final : public Kernel {
 public:
  static constexpr size_t kMaxOperands = 2;
  // Creates one instance (packing the weights again each time).
  using CreateFn = std::function<xnn_status(xnn_operator_t*)>;
  // Binds operand and output pointers to an instance (an xnn_setup_* call).
  using SetupFn = std::function<xnn_status(
      xnn_operator_t, const std::array<const float*, kMaxOperands>&, float* output, pthreadpool_t)>;

  // A kernel with one instance created, or nullptr when XNNPACK rejects the
  // configuration (another backend then runs the node). `what` names the
  // operator in errors, e.g. "convolution2d_nhwc_f32".
  static absl::StatusOr<std::unique_ptr<Kernel>> Create(BackendState& state, std::string what,
                                                        CreateFn create, SetupFn setup,
                                                        std::vector<Operand> operands);

  absl::Status Run(const KernelArgs& args) const override;
  size_t scratch_bytes() const override { return scratch_bytes_; }

 private:
  OperatorKernel(BackendState& state, std::string what, CreateFn create, SetupFn setup,
                 std::vector<Operand> operands);
  absl::StatusOr<Operator> NewInstance() const;
  absl::StatusOr<Operator> Acquire() const;
  void Release(Operator op) const;

  BackendState& state_;
  const std::string what_;
  const CreateFn create_;
  const SetupFn setup_;
  const std::vector<Operand> operands_;
  std::vector<int64_t> scratch_offsets_;  // per operand; -1 when not reordered
  size_t scratch_bytes_ = 0;

  mutable absl::Mutex mu_;
  mutable std::vector<Operator> idle_ ABSL_GUARDED_BY(mu_);
};

// Copies a channels-last value to row-major (the executor's hand-over to
// other backends and to the caller).
std::unique_ptr<Kernel> MakeToRowMajorKernel(BackendState& state, const TensorDesc& value);

}  // namespace slimserve::runtime::xnnpack

#endif  // SLIMSERVE_RUNTIME_XNNPACK_COMMON_H_
