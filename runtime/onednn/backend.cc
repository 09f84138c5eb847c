#include "runtime/onednn/backend.h"

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "runtime/activation.h"
#include "runtime/onednn/common.h"
#include "runtime/onednn/ops.h"

namespace slimserve::runtime::onednn {
namespace {

using Factory = KernelOr (*)(const OpContext&);

const absl::flat_hash_map<std::string, Factory>& Factories() {
  static const auto* factories = new absl::flat_hash_map<std::string, Factory>{
      {"Conv", CompileConv},
      {"FusedConv", CompileConv},
      {"ConvTranspose", CompileConvTranspose},
      {"Resize", CompileResize},
      {"MatMul", CompileMatMul},
      {"FusedMatMul", CompileMatMul},
      {"Gemm", CompileGemm},
      {"FusedGemm", CompileGemm},
      {"MaxPool", CompilePool},
      {"AveragePool", CompilePool},
      {"GlobalAveragePool", CompilePool},
      {"GlobalMaxPool", CompilePool},
      {"Relu", CompileEltwise},
      {"LeakyRelu", CompileEltwise},
      {"Clip", CompileEltwise},
      {"HardSwish", CompileEltwise},
      {"Sigmoid", CompileEltwise},
      {"Tanh", CompileEltwise},
      {"Add", CompileBinary},
      {"Sub", CompileBinary},
      {"Mul", CompileBinary},
      {"Div", CompileBinary},
      {"Max", CompileBinary},
      {"Min", CompileBinary},
      {"Softmax", CompileSoftmax},
      {"LogSoftmax", CompileSoftmax},
      {"Concat", CompileConcat},
      {"LayerNormalization", CompileLayerNorm},
      {"BatchNormalization", CompileBatchNorm},
      {"Transpose", CompileTranspose},
      {"ReduceMean", CompileReduce},
      {"ReduceSum", CompileReduce},
      {"ReduceMax", CompileReduce},
      {"ReduceMin", CompileReduce},
      {"QFusedConv", CompileQuantizedConv},
      {"QFusedGemm", CompileQuantizedMatMul},
      {"QFusedMatMul", CompileQuantizedMatMul},
      {"QuantizeLinear", CompileQuantize},
      {"DequantizeLinear", CompileDequantize},
  };
  return *factories;
}

bool IsInt8(DataType t) { return t == DataType::kUint8 || t == DataType::kInt8; }

// Ops whose oneDNN kernels read or write 8-bit integers (int8 fused ops,
// quantize and dequantize, max pooling, which commutes with quantization).
bool TakesInt8(const Node& node) {
  static const auto* ops = new absl::flat_hash_set<std::string>{
      "QFusedConv", "QFusedGemm", "QFusedMatMul", "QuantizeLinear", "DequantizeLinear", "MaxPool"};
  return ops->contains(node.op_type);
}

// The element types the backend's kernels take: float32 everywhere, 8-bit
// integers where TakesInt8. Constant int64 parameters (axes) are fine.
bool SupportedTypes(const CompileRequest& request) {
  const bool int8 = TakesInt8(request.node);
  for (const TensorDesc& d : request.inputs) {
    const bool parameter = d.constant != nullptr && d.dtype == DataType::kInt64;
    if (d.defined() && !parameter && d.dtype != DataType::kFloat32 && !(int8 && IsInt8(d.dtype))) {
      return false;
    }
  }
  for (const TensorDesc& d : request.outputs) {
    if (d.defined() && d.dtype != DataType::kFloat32 && !(int8 && IsInt8(d.dtype))) return false;
  }
  return true;
}

class OnednnBackendImpl final : public OnednnBackend {
 public:
  explicit OnednnBackendImpl(const OnednnOptions& options)
      : options_(options), engine_(dnnl::engine::kind::cpu, 0) {}

  absl::StatusOr<std::unique_ptr<Kernel>> Compile(const CompileRequest& request) override {
    const Node& node = request.node;
    if (!node.domain.empty() && node.domain != kFusedDomain) return nullptr;
    auto it = Factories().find(node.op_type);
    if (it == Factories().end()) return nullptr;
    if (!SupportedTypes(request)) return nullptr;
    try {
      return it->second(OpContext{this, engine_, options_, request});
    } catch (const dnnl::error& e) {
      // A configuration oneDNN has no implementation for: another backend runs it.
      return nullptr;
    }
  }

  bool winograd() const { return options_.winograd; }

  absl::StatusOr<std::unique_ptr<Kernel>> CompileToRowMajor(const TensorDesc& value) override {
    try {
      return CompileReorder(engine_, value);
    } catch (const dnnl::error& e) {
      return DnnlError(e, absl::StrCat("converting ", value.layout ? value.layout->name() : "", " to row-major"));
    }
  }

 private:
  const OnednnOptions options_;
  dnnl::engine engine_;
};

}  // namespace

int OnednnBackend::num_variants() const {
  return static_cast<const OnednnBackendImpl*>(this)->winograd() ? 3 : 1;
}

absl::StatusOr<std::unique_ptr<OnednnBackend>> OnednnBackend::Create(const OnednnOptions& options) {
  try {
    return std::unique_ptr<OnednnBackend>(new OnednnBackendImpl(options));
  } catch (const dnnl::error& e) {
    return DnnlError(e, "creating the oneDNN CPU engine");
  }
}

int64_t PrimitivesCreatedForTesting() { return PrimitivesCreated(); }
int64_t KernelsTimedForTesting() { return KernelsTimed(); }

const TensorDesc& OpContext::input(size_t i) const {
  static const TensorDesc undefined;
  return i < request.inputs.size() ? request.inputs[i] : undefined;
}

void OpContext::SetOutputFormat(size_t i, const dnnl::memory::desc& md) const {
  TensorDesc& out = request.outputs[i];
  out.layout = LayoutFor(backend, md, out.shape);
  out.bytes = static_cast<int64_t>(md.get_size());
}

namespace {

struct EltwiseStep {
  dnnl::algorithm algorithm;
  float alpha;
  float beta;
};

// oneDNN eltwise steps computing `a`; empty if oneDNN lacks it.
std::vector<EltwiseStep> EltwiseSteps(const Activation& a) {
  using K = Activation::Kind;
  using A = dnnl::algorithm;
  switch (a.kind) {
    case K::kNone: return {};
    case K::kRelu: return {{A::eltwise_relu, 0, 0}};
    case K::kLeakyRelu: return {{A::eltwise_relu, a.alpha, 0}};
    case K::kClip: return {{A::eltwise_clip, a.alpha, a.beta}};
    case K::kHardSwish: return {{A::eltwise_hardswish, 0, 0}};
    case K::kHardSigmoid: return {{A::eltwise_linear, a.alpha, a.beta}, {A::eltwise_clip, 0, 1}};
    case K::kSigmoid: return {{A::eltwise_logistic, 0, 0}};
    case K::kTanh: return {{A::eltwise_tanh, 0, 0}};
  }
  return {};
}

}  // namespace

bool AppendActivation(const Node& node, dnnl::post_ops& post_ops, float scale, float shift) {
  const Activation a = FusedActivation(node);
  const std::vector<EltwiseStep> steps = EltwiseSteps(a);
  if (a.kind != Activation::Kind::kNone && steps.empty()) return false;
  for (const EltwiseStep& s : steps) post_ops.append_eltwise(1.0f, s.algorithm, s.alpha, s.beta);
  // One linear step for the activation's affine and the caller's: oneDNN's
  // int8 convolutions computed two in a row wrongly (PP-OCR's detector).
  const float k = a.scale * scale, t = a.shift * scale + shift;
  if (k != 1 || t != 0) post_ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_linear, k, t);
  return true;
}

KernelOr CompileEltwise(const OpContext& c) {
  const std::optional<Activation> a = ActivationOf(
      c.node(), c.request.opset, [&](size_t i) { return c.input(i).constant; });
  if (!a.has_value()) return nullptr;
  const std::vector<EltwiseStep> steps = EltwiseSteps(*a);
  if (steps.size() != 1) return nullptr;
  const dnnl::memory::desc src = ActualDesc(c.input(0));
  dnnl::eltwise_forward::primitive_desc pd(
      dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_inference, steps[0].algorithm, src,
                                  steps[0].alpha, steps[0].beta),
      ScratchpadAttr(), c.engine);
  auto kernel = std::make_unique<PrimitiveKernel>(c.engine, MakePrimitive<dnnl::eltwise_forward>(pd));
  kernel->BindInput(DNNL_ARG_SRC, 0, src, pd.src_desc());
  kernel->BindOutput(DNNL_ARG_DST, 0, pd.dst_desc());
  kernel->SetScratchpad(pd.scratchpad_desc());
  c.SetOutputFormat(0, pd.dst_desc());
  return kernel;
}

KernelOr CompileReorder(const dnnl::engine& engine, const TensorDesc& value) {
  const dnnl::memory::desc from = ActualDesc(value);
  const dnnl::memory::desc to = RowMajorDesc(value.shape, from.data_type());
  dnnl::reorder::primitive_desc pd(engine, from, engine, to, ScratchpadAttr());
  auto kernel = std::make_unique<PrimitiveKernel>(engine, MakePrimitive<dnnl::reorder>(pd));
  kernel->BindInput(DNNL_ARG_FROM, 0, from, from);
  kernel->BindOutput(DNNL_ARG_TO, 0, to);
  kernel->SetScratchpad(pd.scratchpad_desc());
  return kernel;
}

}  // namespace slimserve::runtime::onednn
