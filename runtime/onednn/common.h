// Shared pieces of the oneDNN backend: its layout type, memory-descriptor
// helpers, per-thread streams and the generic primitive kernel. Only files in
// runtime/onednn include dnnl.hpp.
#ifndef SLIMSERVE_RUNTIME_ONEDNN_COMMON_H_
#define SLIMSERVE_RUNTIME_ONEDNN_COMMON_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "dnnl.hpp"
#include "runtime/kernel.h"

namespace slimserve::runtime::onednn {

// A oneDNN memory format (e.g. nChw16c) for a value produced by this backend.
class OnednnLayout final : public Layout {
 public:
  OnednnLayout(Backend* owner, dnnl::memory::desc md) : owner_(owner), md_(md) {}
  Backend* owner() const override { return owner_; }
  std::string name() const override;
  const dnnl::memory::desc& md() const { return md_; }

 private:
  Backend* owner_;
  dnnl::memory::desc md_;
};

dnnl::memory::dims ToDims(const Shape& shape);
// oneDNN's element type for `dtype` (f32 for types oneDNN lacks).
dnnl::memory::data_type DnnlType(DataType dtype);
// Row-major descriptor (rank 0 becomes {1}).
dnnl::memory::desc RowMajorDesc(const Shape& shape,
                                dnnl::memory::data_type type = dnnl::memory::data_type::f32);
// `md` with elements of another type, in the same format.
dnnl::memory::desc WithType(const dnnl::memory::desc& md, dnnl::memory::data_type type);
// The descriptor of a value as it sits in memory: its layout's, or row-major.
dnnl::memory::desc ActualDesc(const TensorDesc& value);
// `md` as the layout of an output: null when it is plain row-major.
std::shared_ptr<const Layout> LayoutFor(Backend* owner, const dnnl::memory::desc& md,
                                        const Shape& shape);

// Counts primitives created by this process, so tests can check that a warm
// run creates none.
int64_t PrimitivesCreated();
void CountPrimitive();
int64_t KernelsTimed();  // calls of TimeKernel so far

// One stream per thread: a CPU stream is not meant to be shared by threads
// that execute concurrently.
dnnl::stream& ThreadStream(const dnnl::engine& engine);

absl::Status DnnlError(const dnnl::error& e, const std::string& what);

// Runs one primitive. Arguments come from the kernel's inputs and outputs,
// from memory the kernel owns (packed weights, bias), and from the scratch
// area (the primitive's scratchpad and inputs reordered to the format the
// primitive wants). Immutable after construction: Run is thread-safe.
class PrimitiveKernel final : public Kernel {
 public:
  PrimitiveKernel(const dnnl::engine& engine, dnnl::primitive primitive)
      : engine_(engine), primitive_(std::move(primitive)) {}

  // Binds DNNL argument `arg` to input `index`, whose actual format is
  // `actual`; if the primitive wants `wanted`, a reorder runs first.
  void BindInput(int arg, int index, const dnnl::memory::desc& actual,
                 const dnnl::memory::desc& wanted);
  void BindOutput(int arg, int index, const dnnl::memory::desc& md);
  void BindOwned(int arg, dnnl::memory memory);
  void SetScratchpad(const dnnl::memory::desc& md);
  // Values known only per run (dynamic quantization), bound to `arg` in
  // scratch: input `scale_input`'s one float times each of `factors` (output
  // scales), or input `zero_input`'s one 8-bit integer as s32 (a zero point).
  void BindRuntimeScales(int arg, int scale_input, std::vector<float> factors);
  void BindRuntimeZeroPoint(int arg, int zero_input);
  // Runs `reorder`-style work before the primitive: copy input `index` into
  // output `output` (for sum post-ops that accumulate into the destination).
  void CopyInputToOutputFirst(int index, const dnnl::memory::desc& from, int output,
                              const dnnl::memory::desc& to);

  absl::Status Run(const KernelArgs& args) const override;
  size_t scratch_bytes() const override { return scratch_bytes_; }
  int inplace_input() const override { return inplace_input_; }
  void set_inplace_input(int index) { inplace_input_ = index; }

 private:
  struct Input {
    int arg;
    int index;
    dnnl::memory::desc md;  // what the primitive reads
    // Set when the input must be reordered first, into scratch at `offset`.
    std::shared_ptr<dnnl::reorder> reorder;
    dnnl::memory::desc actual;
    int64_t offset = 0;
  };
  struct Output {
    int arg;
    int index;
    dnnl::memory::desc md;
  };
  struct RuntimeValue {
    int arg;
    int input;
    std::vector<float> factors;  // empty for a zero point
    int64_t offset;
  };
  struct Prefill {
    int input;
    dnnl::memory::desc from;
    int output;
    dnnl::memory::desc to;
    std::shared_ptr<dnnl::reorder> reorder;
  };

  int64_t Reserve(int64_t bytes);

  dnnl::engine engine_;
  dnnl::primitive primitive_;
  std::vector<Input> inputs_;
  std::vector<Output> outputs_;
  std::vector<std::pair<int, dnnl::memory>> owned_;
  std::vector<Prefill> prefills_;
  std::vector<RuntimeValue> runtime_values_;
  dnnl::memory::desc scratchpad_md_;
  int64_t scratchpad_offset_ = -1;
  int64_t scratch_bytes_ = 0;
  int inplace_input_ = -1;
};

// Makes a primitive from a primitive descriptor, counting it.
template <typename Primitive, typename PrimitiveDesc>
Primitive MakePrimitive(const PrimitiveDesc& pd) {
  CountPrimitive();
  return Primitive(pd);
}

// An attribute with a user-managed scratchpad (so concurrent runs never share
// one) and, optionally, post-ops.
dnnl::primitive_attr ScratchpadAttr(const dnnl::post_ops& post_ops = dnnl::post_ops());

// Whether oneDNN picked its portable reference implementation ("ref:any"),
// which is slower than slimserve's own reference kernels (a ReduceMean over
// 128x256 took 0.34 ms): such ops are better left to them.
bool IsReferenceImpl(const dnnl::primitive_desc_base& pd);

// Copies a row-major constant into owned memory of format `md`.
dnnl::memory PackConstant(const dnnl::engine& engine, const Tensor& value,
                          const dnnl::memory::desc& plain, const dnnl::memory::desc& md);

}  // namespace slimserve::runtime::onednn


namespace slimserve::runtime::onednn {

// Runs `kernel` on deterministic random inputs (constants bound to their
// values) and returns its best time in milliseconds over `reps` runs after one
// warm-up. When `first_output` is set it receives output 0 in row-major form,
// so that two algorithms' results can be compared.
absl::StatusOr<double> TimeKernel(const dnnl::engine& engine, const Kernel& kernel,
                                  absl::Span<const TensorDesc> inputs,
                                  absl::Span<const TensorDesc> outputs, int reps,
                                  std::vector<float>* first_output);

}  // namespace slimserve::runtime::onednn

#endif  // SLIMSERVE_RUNTIME_ONEDNN_COMMON_H_
