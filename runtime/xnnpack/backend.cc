#include "runtime/xnnpack/backend.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "runtime/activation.h"
#include "runtime/status_macros.h"
#include "runtime/xnnpack/common.h"
#include "runtime/xnnpack/ops.h"

namespace slimserve::runtime::xnnpack {
namespace {

using Factory = KernelOr (*)(const OpContext&);

const absl::flat_hash_map<std::string, Factory>& Factories() {
  static const auto* factories = new absl::flat_hash_map<std::string, Factory>{
      {"Conv", CompileConv},
      {"FusedConv", CompileConv},
      {"Gemm", CompileGemm},
      {"FusedGemm", CompileGemm},
      {"MatMul", CompileMatMul},
      {"FusedMatMul", CompileMatMul},
      {"MaxPool", CompilePool},
      {"AveragePool", CompilePool},
      {"GlobalAveragePool", CompileGlobalAveragePool},
      {"Add", CompileBinary},
      {"Sub", CompileBinary},
      {"Mul", CompileBinary},
      {"Div", CompileBinary},
      {"Max", CompileBinary},
      {"Min", CompileBinary},
      {"Relu", CompileUnary},
      {"Clip", CompileUnary},
      {"Sigmoid", CompileUnary},
      {"HardSwish", CompileUnary},
      {"LeakyRelu", CompileUnary},
      {"Softmax", CompileSoftmax},
  };
  return *factories;
}

// A dense fp32 value with at least one element (XNNPACK rejects empty
// dimensions), or an omitted optional input.
bool Accepted(const TensorDesc& d) {
  return !d.defined() || (d.dtype == DataType::kFloat32 && NumElementsUnchecked(d.shape) > 0);
}

struct ThreadPoolDeleter {
  void operator()(pthreadpool_t pool) const { pthreadpool_destroy(pool); }
};

class XnnpackBackendImpl final : public XnnpackBackend {
 public:
  explicit XnnpackBackendImpl(std::unique_ptr<pthreadpool, ThreadPoolDeleter> threadpool)
      : threadpool_(std::move(threadpool)) {
    state_.threadpool = threadpool_.get();
    state_.channels_last = std::make_shared<XnnpackLayout>(this);
  }

  absl::StatusOr<std::unique_ptr<Kernel>> Compile(const CompileRequest& request) override {
    const Node& node = request.node;
    if (!node.domain.empty() && node.domain != kFusedDomain) return nullptr;
    auto it = Factories().find(node.op_type);
    if (it == Factories().end()) return nullptr;
    for (const TensorDesc& d : request.inputs) {
      if (!Accepted(d)) return nullptr;
    }
    for (const TensorDesc& d : request.outputs) {
      if (!Accepted(d)) return nullptr;
    }
    return it->second(OpContext{state_, request});
  }

  absl::StatusOr<std::unique_ptr<Kernel>> CompileToRowMajor(const TensorDesc& value) override {
    return MakeToRowMajorKernel(state_, value);
  }

  // pthreadpool's workers spin for about a million iterations (milliseconds)
  // after each job unless the job says to yield: left spinning, a worker took
  // a core from the next run's OpenMP threads (a server alternating batch-1
  // XNNPACK plans with oneDNN ones lost a third of its throughput). An empty
  // job with PTHREADPOOL_FLAG_YIELD_WORKERS puts them to sleep at once.
  void Rest() override {
    pthreadpool_t pool = threadpool_.get();
    pthreadpool_parallelize_1d(
        pool, [](void*, size_t) {}, nullptr, pthreadpool_get_threads_count(pool), PTHREADPOOL_FLAG_YIELD_WORKERS);
  }

  int64_t operators_created() const override { return state_.operators_created.load(); }

 private:
  const std::unique_ptr<pthreadpool, ThreadPoolDeleter> threadpool_;
  BackendState state_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<XnnpackBackend>> XnnpackBackend::Create(
    const XnnpackOptions& options) {
  // Process-wide and idempotent; never undone, as other backends may still use it.
  RETURN_IF_ERROR(XnnStatus(xnn_initialize(/*allocator=*/nullptr), "initializing", "the library"));
  std::unique_ptr<pthreadpool, ThreadPoolDeleter> threadpool(
      pthreadpool_create(static_cast<size_t>(std::max(options.num_threads, 0))));
  if (threadpool == nullptr)
    return absl::ResourceExhaustedError("creating the XNNPACK thread pool");
  return std::unique_ptr<XnnpackBackend>(new XnnpackBackendImpl(std::move(threadpool)));
}

const TensorDesc& OpContext::input(size_t i) const {
  static const TensorDesc undefined;
  return i < request.inputs.size() ? request.inputs[i] : undefined;
}

void OpContext::SetChannelsLast(size_t i) const {
  TensorDesc& out = request.outputs[i];
  if (!LayoutsCoincide(out.shape)) out.layout = state.channels_last;
}

Operand OpContext::Read(size_t i, const Shape& shape, bool channels_last) const {
  const TensorDesc& in = input(i);
  Operand operand;
  operand.input = static_cast<int>(i);
  operand.shape = shape;
  if (IsChannelsLast(in) == channels_last || LayoutsCoincide(shape)) return operand;
  operand.reorder = channels_last ? Reorder::kToChannelsLast : Reorder::kToRowMajor;
  if (in.constant != nullptr) {
    // Reordered once, now, rather than on every run.
    std::vector<float> values(NumElementsUnchecked(shape));
    ReorderChannels(operand.reorder, shape, in.constant->data<float>(), values.data(), nullptr);
    return Operand::Owned(std::move(values));
  }
  return operand;
}

}  // namespace slimserve::runtime::xnnpack
