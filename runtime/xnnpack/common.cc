#include "runtime/xnnpack/common.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "runtime/status_macros.h"

namespace slimserve::runtime::xnnpack {
namespace {

constexpr int64_t kAlignment = 64;

int64_t AlignUp(int64_t n) { return (n + kAlignment - 1) / kAlignment * kAlignment; }

const char* StatusName(xnn_status status) {
  switch (status) {
    case xnn_status_success:
      return "success";
    case xnn_status_uninitialized:
      return "XNNPACK is not initialized";
    case xnn_status_invalid_parameter:
      return "invalid parameter";
    case xnn_status_invalid_state:
      return "invalid state";
    case xnn_status_unsupported_parameter:
      return "unsupported parameter";
    case xnn_status_unsupported_hardware:
      return "unsupported hardware";
    case xnn_status_out_of_memory:
      return "out of memory";
  }
  return "unknown status";
}

// dst[b][c][r] = src[b][r][c] for a batch of rows x cols matrices.
struct TransposeTask {
  const float* src;
  float* dst;
  size_t rows;
  size_t cols;
};

void TransposeTile(void* context, size_t b, size_t r0, size_t c0, size_t nr, size_t nc) {
  const auto* t = static_cast<const TransposeTask*>(context);
  const float* src = t->src + b * t->rows * t->cols;
  float* dst = t->dst + b * t->rows * t->cols;
  for (size_t c = c0; c < c0 + nc; ++c) {
    for (size_t r = r0; r < r0 + nr; ++r) dst[c * t->rows + r] = src[r * t->cols + c];
  }
}

// Copies channels-last input 0 to row-major output 0.
class ToRowMajorKernel final : public Kernel {
 public:
  ToRowMajorKernel(BackendState& state, Shape shape) : state_(state), shape_(std::move(shape)) {}

  absl::Status Run(const KernelArgs& args) const override {
    ReorderChannels(Reorder::kToRowMajor, shape_, args.inputs[0].data<float>(),
                    args.outputs[0].data<float>(), state_.threadpool);
    return absl::OkStatus();
  }

 private:
  BackendState& state_;
  const Shape shape_;
};

}  // namespace

absl::Status XnnStatus(xnn_status status, absl::string_view action, absl::string_view what) {
  if (status == xnn_status_success) return absl::OkStatus();
  const std::string message = absl::StrCat("XNNPACK ", action, " ", what, ": ", StatusName(status));
  switch (status) {
    case xnn_status_invalid_parameter:
      return absl::InvalidArgumentError(message);
    case xnn_status_unsupported_parameter:
    case xnn_status_unsupported_hardware:
      return absl::UnimplementedError(message);
    case xnn_status_out_of_memory:
      return absl::ResourceExhaustedError(message);
    default:
      return absl::InternalError(message);
  }
}

bool IsChannelsLast(const TensorDesc& value) {
  return dynamic_cast<const XnnpackLayout*>(value.layout.get()) != nullptr;
}

bool LayoutsCoincide(const Shape& shape) {
  return shape.size() < 3 || shape[1] == 1 ||
         NumElementsUnchecked(absl::MakeConstSpan(shape).subspan(2)) == 1;
}

Shape ChannelsLastShape(const Shape& shape) {
  Shape out = {shape[0]};
  out.insert(out.end(), shape.begin() + 2, shape.end());
  out.push_back(shape[1]);
  return out;
}

void ReorderChannels(Reorder reorder, const Shape& shape, const float* src, float* dst,
                     pthreadpool_t threadpool) {
  const size_t batch = static_cast<size_t>(shape[0]);
  const size_t channels = static_cast<size_t>(shape[1]);
  const size_t pixels =
      static_cast<size_t>(NumElementsUnchecked(absl::MakeConstSpan(shape).subspan(2)));
  const bool to_last = reorder == Reorder::kToChannelsLast;
  TransposeTask task{src, dst, to_last ? channels : pixels, to_last ? pixels : channels};
  // 32x32 tiles keep both the rows read and the rows written in L1.
  pthreadpool_parallelize_3d_tile_2d(threadpool, TransposeTile, &task, batch, task.rows, task.cols,
                                     32, 32, 0);
}

std::optional<Padding> SpatialPadding(const std::string& auto_pad, int64_t in, int64_t out,
                                      int64_t kernel, int64_t stride, int64_t dilation,
                                      int64_t pad_begin) {
  if (kernel <= 0 || stride <= 0 || dilation <= 0 || out <= 0) return std::nullopt;
  const int64_t window = (kernel - 1) * dilation + 1;
  const int64_t reach = (out - 1) * stride + window;  // input extent the windows span
  Padding p;
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    const int64_t total = std::max<int64_t>(0, reach - in);
    p.begin = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
  } else if (auto_pad == "NOTSET" || auto_pad.empty()) {
    p.begin = pad_begin;
  } else if (auto_pad != "VALID") {
    return std::nullopt;
  }
  p.end = std::max<int64_t>(0, reach - in - p.begin);
  if (p.begin < 0 || (p.begin + in + p.end - window) / stride + 1 != out) return std::nullopt;
  return p;
}

std::optional<std::pair<float, float>> ClampRange(const Activation& activation) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  if (activation.HasAffine()) return std::nullopt;
  switch (activation.kind) {
    case Activation::Kind::kNone:
      return std::make_pair(-kInf, kInf);
    case Activation::Kind::kRelu:
      return std::make_pair(0.0f, kInf);
    case Activation::Kind::kClip:
      return std::make_pair(activation.alpha, activation.beta);
    default:
      return std::nullopt;
  }
}

Operand Operand::Owned(std::vector<float> values) {
  Operand operand;
  operand.owned = std::move(values);
  operand.owned.resize(operand.owned.size() + XNN_EXTRA_BYTES / sizeof(float), 0.0f);
  return operand;
}

OperatorKernel::OperatorKernel(BackendState& state, std::string what, CreateFn create,
                               SetupFn setup, std::vector<Operand> operands)
    : state_(state),
      what_(std::move(what)),
      create_(std::move(create)),
      setup_(std::move(setup)),
      operands_(std::move(operands)) {
  int64_t bytes = 0;
  for (const Operand& operand : operands_) {
    scratch_offsets_.push_back(operand.reorder == Reorder::kNone ? -1 : bytes);
    if (operand.reorder != Reorder::kNone) {
      bytes += AlignUp(NumElementsUnchecked(operand.shape) * static_cast<int64_t>(sizeof(float)) +
                       XNN_EXTRA_BYTES);
    }
  }
  // XNNPACK may read XNN_EXTRA_BYTES past an input; asking for scratch
  // (which the executor places after all values) keeps the last value in the
  // arena readable that far.
  scratch_bytes_ = static_cast<size_t>(bytes + kAlignment);
}

absl::StatusOr<std::unique_ptr<Kernel>> OperatorKernel::Create(BackendState& state,
                                                               std::string what, CreateFn create,
                                                               SetupFn setup,
                                                               std::vector<Operand> operands) {
  if (operands.size() > kMaxOperands) return absl::InternalError("too many XNNPACK operands");
  std::unique_ptr<OperatorKernel> kernel(new OperatorKernel(
      state, std::move(what), std::move(create), std::move(setup), std::move(operands)));
  absl::StatusOr<Operator> first = kernel->NewInstance();
  if (!first.ok()) {
    // A configuration XNNPACK has no operator for: another backend runs it.
    if (absl::IsInvalidArgument(first.status()) || absl::IsUnimplemented(first.status())) {
      return nullptr;
    }
    return first.status();
  }
  kernel->Release(*std::move(first));
  return kernel;
}

absl::StatusOr<Operator> OperatorKernel::NewInstance() const {
  xnn_operator_t op = nullptr;
  const xnn_status status = create_(&op);
  Operator owned(op);
  RETURN_IF_ERROR(XnnStatus(status, "creating", what_));
  ++state_.operators_created;
  return owned;
}

absl::StatusOr<Operator> OperatorKernel::Acquire() const {
  {
    absl::MutexLock lock(&mu_);
    if (!idle_.empty()) {
      Operator op = std::move(idle_.back());
      idle_.pop_back();
      return op;
    }
  }
  return NewInstance();  // runs overlap: one more instance, kept afterwards
}

void OperatorKernel::Release(Operator op) const {
  absl::MutexLock lock(&mu_);
  idle_.push_back(std::move(op));
}

absl::Status OperatorKernel::Run(const KernelArgs& args) const {
  std::array<const float*, kMaxOperands> pointers{};
  char* scratch = static_cast<char*>(args.scratch);
  for (size_t i = 0; i < operands_.size(); ++i) {
    const Operand& operand = operands_[i];
    if (!operand.owned.empty()) {
      pointers[i] = operand.owned.data();
      continue;
    }
    const float* data = args.inputs[operand.input].data<float>();
    if (operand.reorder != Reorder::kNone) {
      float* staged = reinterpret_cast<float*>(scratch + scratch_offsets_[i]);
      ReorderChannels(operand.reorder, operand.shape, data, staged, state_.threadpool);
      data = staged;
    }
    pointers[i] = data;
  }
  ASSIGN_OR_RETURN(Operator op, Acquire());
  xnn_status status = setup_(op.get(), pointers, args.outputs[0].data<float>(), state_.threadpool);
  absl::Status result = XnnStatus(status, "setting up", what_);
  if (result.ok()) {
    result = XnnStatus(xnn_run_operator(op.get(), state_.threadpool), "running", what_);
  }
  Release(std::move(op));
  return result;
}

std::unique_ptr<Kernel> MakeToRowMajorKernel(BackendState& state, const TensorDesc& value) {
  return std::make_unique<ToRowMajorKernel>(state, value.shape);
}

}  // namespace slimserve::runtime::xnnpack
