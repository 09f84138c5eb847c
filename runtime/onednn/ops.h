// Kernel factories of the oneDNN backend, one per op family. Each returns
// nullptr when oneDNN does not run the node as described (the executor then
// asks the next backend) and may throw dnnl::error, which the backend catches.
#ifndef SLIMSERVE_RUNTIME_ONEDNN_OPS_H_
#define SLIMSERVE_RUNTIME_ONEDNN_OPS_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "dnnl.hpp"
#include "runtime/kernel.h"
#include "runtime/onednn/backend.h"

namespace slimserve::runtime::onednn {

struct OpContext {
  Backend* backend;  // owner of produced layouts
  const dnnl::engine& engine;
  const OnednnOptions& options;
  const CompileRequest& request;

  const Node& node() const { return request.node; }
  const TensorDesc& input(size_t i) const;
  bool has_input(size_t i) const { return i < request.inputs.size() && request.inputs[i].defined(); }
  TensorDesc& output(size_t i) const { return request.outputs[i]; }
  // Records `md` as output i's memory format.
  void SetOutputFormat(size_t i, const dnnl::memory::desc& md) const;
};

using KernelOr = absl::StatusOr<std::unique_ptr<Kernel>>;

KernelOr CompileConv(const OpContext& c);
KernelOr CompileConvTranspose(const OpContext& c);
KernelOr CompileResize(const OpContext& c);
KernelOr CompileMatMul(const OpContext& c);
KernelOr CompileGemm(const OpContext& c);
KernelOr CompilePool(const OpContext& c);
KernelOr CompileEltwise(const OpContext& c);
KernelOr CompileBinary(const OpContext& c);
KernelOr CompileSoftmax(const OpContext& c);
KernelOr CompileConcat(const OpContext& c);
KernelOr CompileLayerNorm(const OpContext& c);
KernelOr CompileBatchNorm(const OpContext& c);
KernelOr CompileTranspose(const OpContext& c);
KernelOr CompileReduce(const OpContext& c);
KernelOr CompileReorder(const dnnl::engine& engine, const TensorDesc& value);
// The int8 fused ops (reference/quantized_fused_ops.cc) and the QDQ ops.
KernelOr CompileQuantizedConv(const OpContext& c);
KernelOr CompileQuantizedMatMul(const OpContext& c);
KernelOr CompileQuantize(const OpContext& c);
KernelOr CompileDequantize(const OpContext& c);

// A convolution's geometry in oneDNN's terms.
struct ConvGeometry {
  dnnl::memory::dims strides, dilates, pad_l, pad_r;
};
// Pads as ONNX defines them (explicit, or from auto_pad), oneDNN dilations
// (which count the gaps, so ONNX's minus one).
absl::StatusOr<ConvGeometry> Geometry(const Node& node, const Shape& x, const Shape& w);
// Outputs with few channels stay row-major: a blocked layout would pad them
// to 16 channels, and every later op would do that much more work (the OCR
// detector's last layers, 1 and 24 channels at 640x640, ran 2-16x slower).
bool FewChannels(const Shape& y);

// Appends the activation of a fused node (attributes `activation` and
// `activation_params`) as eltwise post-ops, then y * scale + shift; false if
// oneDNN lacks it.
bool AppendActivation(const Node& node, dnnl::post_ops& post_ops, float scale = 1, float shift = 0);

// Inputs that one of the backend's own kernels reads in a layout of its
// choosing: each bound in another layout is reordered into the start of the
// kernel's scratch before it runs.
class ReorderedInputs {
 public:
  // Reads input `index` of `c` as `wanted`, after those bound before.
  void Bind(const OpContext& c, int index, const dnnl::memory::desc& wanted);
  // Scratch the reordered copies take, from offset 0 (a multiple of 64).
  int64_t scratch_bytes() const { return scratch_bytes_; }
  // Each bound input in its wanted layout (the argument, or its copy), in
  // the order bound.
  absl::StatusOr<std::vector<const void*>> Data(const KernelArgs& args) const;

 private:
  struct Input {
    int index;  // of the node's inputs
    dnnl::memory::desc actual, wanted;
    std::shared_ptr<dnnl::reorder> reorder;  // when actual is not wanted
    int64_t offset = 0;                      // in scratch
  };
  dnnl::engine engine_;
  std::vector<Input> inputs_;
  int64_t scratch_bytes_ = 0;
};

// The node's outputs with output 0 in format `md`, for timing a kernel
// that writes it there (TimeKernel).
std::vector<TensorDesc> OutputsIn(const OpContext& c, const dnnl::memory::desc& md);

// Where two kernels' outputs (TimeKernel's first_output) part: the largest
// |x - reference| and the largest |reference|, over the elements both have.
struct Disagreement {
  double worst = 0, largest = 0;
};
Disagreement Compare(const std::vector<float>& x, const std::vector<float>& reference);

}  // namespace slimserve::runtime::onednn

#endif  // SLIMSERVE_RUNTIME_ONEDNN_OPS_H_
