#include "runtime/onednn/common.h"

#include <chrono>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "runtime/status_macros.h"

namespace slimserve::runtime::onednn {
namespace {

std::atomic<int64_t> primitives_created{0};
std::atomic<int64_t> kernels_timed{0};

constexpr int64_t kAlignment = 64;

}  // namespace

std::string OnednnLayout::name() const {
  // Dims in memory order with the inner blocks, e.g. "onednn:blocked(b16)".
  const dnnl_blocking_desc_t& blocking = md_.data.format_desc.blocking;
  std::string blocks;
  for (int i = 0; i < blocking.inner_nblks; ++i) {
    absl::StrAppend(&blocks, std::string(1, static_cast<char>('a' + blocking.inner_idxs[i])),
                    blocking.inner_blks[i]);
  }
  return absl::StrCat("onednn:blocked(", blocks.empty() ? "strided" : blocks, ")");
}

dnnl::memory::dims ToDims(const Shape& shape) {
  if (shape.empty()) return {1};
  return dnnl::memory::dims(shape.begin(), shape.end());
}

dnnl::memory::data_type DnnlType(DataType dtype) {
  using T = dnnl::memory::data_type;
  switch (dtype) {
    case DataType::kUint8: return T::u8;
    case DataType::kInt8: return T::s8;
    case DataType::kInt32: return T::s32;
    case DataType::kBFloat16: return T::bf16;
    default: return T::f32;
  }
}

dnnl::memory::desc RowMajorDesc(const Shape& shape, dnnl::memory::data_type type) {
  const dnnl::memory::dims dims = ToDims(shape);
  dnnl::memory::dims strides(dims.size(), 1);
  for (int i = static_cast<int>(dims.size()) - 2; i >= 0; --i) {
    strides[i] = strides[i + 1] * std::max<int64_t>(dims[i + 1], 1);
  }
  return dnnl::memory::desc(dims, type, strides);
}

dnnl::memory::desc WithType(const dnnl::memory::desc& md, dnnl::memory::data_type type) {
  dnnl::memory::desc result = md;
  result.data.data_type = static_cast<dnnl_data_type_t>(type);
  result.data.extra = dnnl_memory_extra_desc_t{};  // compensation belongs to the old type
  return result;
}

dnnl::memory::desc ActualDesc(const TensorDesc& value) {
  if (auto* layout = dynamic_cast<const OnednnLayout*>(value.layout.get())) return layout->md();
  return RowMajorDesc(value.shape, DnnlType(value.dtype));
}

std::shared_ptr<const Layout> LayoutFor(Backend* owner, const dnnl::memory::desc& md,
                                        const Shape& shape) {
  if (md == RowMajorDesc(shape, md.data_type())) return nullptr;
  return std::make_shared<OnednnLayout>(owner, md);
}

bool IsReferenceImpl(const dnnl::primitive_desc_base& pd) {
  return absl::StartsWith(pd.impl_info_str(), "ref");
}

int64_t PrimitivesCreated() { return primitives_created.load(); }
void CountPrimitive() { ++primitives_created; }
int64_t KernelsTimed() { return kernels_timed.load(); }

dnnl::stream& ThreadStream(const dnnl::engine& engine) {
  thread_local dnnl_engine_t key = nullptr;
  thread_local dnnl::stream stream;
  if (key != engine.get()) {
    stream = dnnl::stream(engine);
    key = engine.get();
  }
  return stream;
}

absl::Status DnnlError(const dnnl::error& e, const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": oneDNN error ", e.status, ": ", e.what()));
}

dnnl::primitive_attr ScratchpadAttr(const dnnl::post_ops& post_ops) {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  attr.set_post_ops(post_ops);
  return attr;
}

dnnl::memory PackConstant(const dnnl::engine& engine, const Tensor& value,
                          const dnnl::memory::desc& plain, const dnnl::memory::desc& md) {
  dnnl::memory src(plain, engine, const_cast<void*>(value.raw_data()));
  dnnl::memory dst(md, engine);
  dnnl::stream& stream = ThreadStream(engine);
  dnnl::reorder(src, dst).execute(stream, src, dst);
  stream.wait();
  return dst;
}

int64_t PrimitiveKernel::Reserve(int64_t bytes) {
  const int64_t offset = scratch_bytes_;
  scratch_bytes_ += (bytes + kAlignment - 1) / kAlignment * kAlignment;
  return offset;
}

void PrimitiveKernel::BindInput(int arg, int index, const dnnl::memory::desc& actual,
                                const dnnl::memory::desc& wanted) {
  Input in{arg, index, wanted};
  if (actual != wanted) {
    in.actual = actual;
    CountPrimitive();
    in.reorder = std::make_shared<dnnl::reorder>(
        dnnl::reorder::primitive_desc(engine_, actual, engine_, wanted));
    in.offset = Reserve(static_cast<int64_t>(wanted.get_size()));
  }
  inputs_.push_back(std::move(in));
}

void PrimitiveKernel::BindOutput(int arg, int index, const dnnl::memory::desc& md) {
  outputs_.push_back({arg, index, md});
}

void PrimitiveKernel::BindOwned(int arg, dnnl::memory memory) {
  owned_.emplace_back(arg, std::move(memory));
}

void PrimitiveKernel::SetScratchpad(const dnnl::memory::desc& md) {
  scratchpad_md_ = md;
  scratchpad_offset_ = Reserve(static_cast<int64_t>(md.get_size()));
}

void PrimitiveKernel::BindRuntimeScales(int arg, int scale_input, std::vector<float> factors) {
  const int64_t offset = Reserve(static_cast<int64_t>(factors.size() * sizeof(float)));
  runtime_values_.push_back({arg, scale_input, std::move(factors), offset});
}

void PrimitiveKernel::BindRuntimeZeroPoint(int arg, int zero_input) {
  runtime_values_.push_back({arg, zero_input, {}, Reserve(sizeof(int32_t))});
}

void PrimitiveKernel::CopyInputToOutputFirst(int index, const dnnl::memory::desc& from, int output,
                                             const dnnl::memory::desc& to) {
  CountPrimitive();
  auto reorder = std::make_shared<dnnl::reorder>(dnnl::reorder::primitive_desc(engine_, from, engine_, to));
  prefills_.push_back({index, from, output, to, std::move(reorder)});
}

absl::Status PrimitiveKernel::Run(const KernelArgs& args) const {
  try {
    dnnl::stream& stream = ThreadStream(engine_);
    char* scratch = static_cast<char*>(args.scratch);
    for (const Prefill& p : prefills_) {
      // In place, the destination already holds the addend.
      if (args.inputs[p.input].raw_data() == args.outputs[p.output].raw_data()) continue;
      dnnl::memory src(p.from, engine_, const_cast<void*>(args.inputs[p.input].raw_data()));
      dnnl::memory dst(p.to, engine_, args.outputs[p.output].raw_data());
      p.reorder->execute(stream, src, dst);
    }
    std::unordered_map<int, dnnl::memory> map;
    for (const Input& in : inputs_) {
      void* data = const_cast<void*>(args.inputs[in.index].raw_data());
      if (in.reorder != nullptr) {
        dnnl::memory src(in.actual, engine_, data);
        dnnl::memory dst(in.md, engine_, scratch + in.offset);
        in.reorder->execute(stream, src, dst);
        map.emplace(in.arg, dst);
      } else {
        map.emplace(in.arg, dnnl::memory(in.md, engine_, data));
      }
    }
    for (const Output& out : outputs_) {
      map.emplace(out.arg, dnnl::memory(out.md, engine_, args.outputs[out.index].raw_data()));
    }
    for (const auto& [arg, memory] : owned_) map.emplace(arg, memory);
    for (const RuntimeValue& v : runtime_values_) {
      const Tensor& in = args.inputs[v.input];
      void* data = scratch + v.offset;
      if (v.factors.empty()) {
        *static_cast<int32_t*>(data) = static_cast<int32_t>(in.GetInt(0));
        map.emplace(v.arg, dnnl::memory({{1}, dnnl::memory::data_type::s32, {1}}, engine_, data));
        continue;
      }
      const float scale = in.data<float>()[0];
      float* scales = static_cast<float*>(data);
      for (size_t k = 0; k < v.factors.size(); ++k) scales[k] = scale * v.factors[k];
      const auto n = static_cast<int64_t>(v.factors.size());
      map.emplace(v.arg, dnnl::memory({{n}, dnnl::memory::data_type::f32, {1}}, engine_, data));
    }
    if (scratchpad_offset_ >= 0) {
      map.emplace(DNNL_ARG_SCRATCHPAD,
                  dnnl::memory(scratchpad_md_, engine_, scratch + scratchpad_offset_));
    }
    primitive_.execute(stream, map);
  } catch (const dnnl::error& e) {
    return DnnlError(e, "running a oneDNN primitive");
  }
  return absl::OkStatus();
}

}  // namespace slimserve::runtime::onednn

namespace slimserve::runtime::onednn {

absl::StatusOr<double> TimeKernel(const dnnl::engine& engine, const Kernel& kernel,
                                  absl::Span<const TensorDesc> inputs,
                                  absl::Span<const TensorDesc> outputs, int reps,
                                  std::vector<float>* first_output) {
  auto bytes_of = [](const TensorDesc& d) {
    return d.bytes > 0 ? d.bytes
                       : NumElementsUnchecked(d.shape) * static_cast<int64_t>(DataTypeSize(d.dtype));
  };
  // Buffers as flat float arrays large enough for each value's layout.
  auto buffer = [&](const TensorDesc& d) -> absl::StatusOr<Tensor> {
    ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(DataType::kFloat32, {(bytes_of(d) + 3) / 4}));
    uint32_t state = 12345;
    for (int64_t i = 0; i < t.num_elements(); ++i) {
      state = state * 1664525u + 1013904223u;
      t.data<float>()[i] = static_cast<float>(state >> 8) / 16777216.0f - 0.5f;
    }
    return t;
  };
  std::vector<Tensor> storage, in, out;
  for (const TensorDesc& d : inputs) {
    if (!d.defined()) {
      in.emplace_back();
    } else if (d.constant != nullptr) {
      in.push_back(*d.constant);
    } else {
      ASSIGN_OR_RETURN(Tensor t, buffer(d));
      storage.push_back(t);
      in.push_back(Tensor::View(d.dtype, d.shape, t.raw_data()));
    }
  }
  for (const TensorDesc& d : outputs) {
    ASSIGN_OR_RETURN(Tensor t, buffer(d));
    storage.push_back(t);
    out.push_back(Tensor::View(d.dtype, d.shape, t.raw_data()));
  }
  ASSIGN_OR_RETURN(Tensor scratch,
                   Tensor::Allocate(DataType::kUint8, {static_cast<int64_t>(kernel.scratch_bytes()) + 64}));
  KernelArgs args{in, absl::MakeSpan(out), scratch.raw_data()};
  ++kernels_timed;
  double best = 1e30;
  for (int r = 0; r <= reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    RETURN_IF_ERROR(kernel.Run(args));
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (r > 0) best = std::min(best, ms);
  }
  if (first_output != nullptr) {
    const TensorDesc& d = outputs[0];
    first_output->assign(NumElementsUnchecked(d.shape), 0.0f);
    try {
      dnnl::memory src(ActualDesc(d), engine, out[0].raw_data());
      dnnl::memory dst(RowMajorDesc(d.shape), engine, first_output->data());
      dnnl::stream& stream = ThreadStream(engine);
      dnnl::reorder(src, dst).execute(stream, src, dst);
      stream.wait();
    } catch (const dnnl::error& e) {
      return DnnlError(e, "reading a measured output");
    }
  }
  return best;
}

}  // namespace slimserve::runtime::onednn
