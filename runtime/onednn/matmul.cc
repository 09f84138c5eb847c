// Matrix products on oneDNN: MatMul (batched, broadcast) and Gemm, plus their
// fused forms (FusedMatMul with an optional bias, FusedGemm) whose activation
// becomes a post-op. Constant weights are packed once, at compile time.
#include "runtime/activation.h"
#include "runtime/onednn/common.h"
#include "runtime/onednn/ops.h"

namespace slimserve::runtime::onednn {
namespace {

using dnnl::memory;

// `shape` with leading ones up to `rank`.
memory::dims Padded(const Shape& shape, size_t rank) {
  memory::dims dims(rank - shape.size(), 1);
  dims.insert(dims.end(), shape.begin(), shape.end());
  return dims;
}

memory::desc Strided(const memory::dims& dims, const memory::dims& strides) {
  return memory::desc(dims, memory::data_type::f32, strides);
}

memory::desc RowMajor(const memory::dims& dims) {
  return RowMajorDesc(Shape(dims.begin(), dims.end()));
}

// A constant scaled by `factor`, as a new tensor (or the same one for 1).
Tensor Scaled(const Tensor& t, float factor) {
  if (factor == 1.0f) return t;
  Tensor out = t.Clone();
  for (int64_t i = 0; i < out.num_elements(); ++i) out.data<float>()[i] *= factor;
  return out;
}

struct MatMulSpec {
  memory::desc src;         // how input 0 is read
  memory::desc weights;     // how the weights are read (plain; packed if constant)
  const Tensor* weights_constant = nullptr;
  int weights_input = 1;
  memory::desc dst;
  memory::desc bias;        // zero desc when absent
  Tensor bias_value;
};

KernelOr Build(const OpContext& c, const MatMulSpec& spec) {
  dnnl::post_ops post_ops;
  if (c.node().domain == kFusedDomain && !AppendActivation(c.node(), post_ops)) return nullptr;
  const bool has_bias = spec.bias_value.defined();
  const memory::desc weights_md =
      spec.weights_constant != nullptr
          ? memory::desc(spec.weights.dims(), memory::data_type::f32, memory::format_tag::any)
          : spec.weights;
  const dnnl::matmul::desc desc = has_bias
                                      ? dnnl::matmul::desc(spec.src, weights_md, spec.bias, spec.dst)
                                      : dnnl::matmul::desc(spec.src, weights_md, spec.dst);
  dnnl::matmul::primitive_desc pd(desc, ScratchpadAttr(post_ops), c.engine);
  auto kernel = std::make_unique<PrimitiveKernel>(c.engine, MakePrimitive<dnnl::matmul>(pd));
  const TensorDesc& a = c.input(0);
  kernel->BindInput(DNNL_ARG_SRC, 0, a.layout ? ActualDesc(a) : spec.src, pd.src_desc());
  if (spec.weights_constant != nullptr) {
    kernel->BindOwned(DNNL_ARG_WEIGHTS,
                      PackConstant(c.engine, *spec.weights_constant, spec.weights, pd.weights_desc()));
  } else {
    const TensorDesc& b = c.input(spec.weights_input);
    kernel->BindInput(DNNL_ARG_WEIGHTS, spec.weights_input, b.layout ? ActualDesc(b) : spec.weights,
                      pd.weights_desc());
  }
  if (has_bias) {
    kernel->BindOwned(DNNL_ARG_BIAS, PackConstant(c.engine, spec.bias_value, spec.bias, pd.bias_desc()));
  }
  kernel->BindOutput(DNNL_ARG_DST, 0, pd.dst_desc());
  kernel->SetScratchpad(pd.scratchpad_desc());
  // spec.dst is row-major, perhaps with merged leading dimensions.
  c.SetOutputFormat(0, RowMajorDesc(c.output(0).shape));
  return kernel;
}

}  // namespace

KernelOr CompileMatMul(const OpContext& c) {
  const TensorDesc& a = c.input(0);
  const TensorDesc& b = c.input(1);
  const Shape& y = c.output(0).shape;
  if (a.shape.size() < 2 || b.shape.size() < 2 || y.size() > 6) return nullptr;
  // Inputs in a oneDNN layout must already have the output's rank.
  if ((a.layout && a.shape.size() != y.size()) || (b.layout && b.shape.size() != y.size())) {
    return nullptr;
  }
  const TensorDesc* bias = nullptr;
  if (c.node().domain == kFusedDomain && c.has_input(2)) {
    bias = &c.input(2);
    if (bias->constant == nullptr) return nullptr;
  }
  const int64_t n = y.back();
  // A constant 2-D weight meets every row of A alike: as one [rows, K] x [K, N]
  // product oneDNN packs it for its blocked kernels, which a batched product
  // reads unpacked (the transformer's projections ran 1.5x slower that way).
  const bool flatten = b.constant != nullptr && b.shape.size() == 2 && a.shape.size() > 2 &&
                       !a.layout && (bias == nullptr || bias->constant->num_elements() == n);
  MatMulSpec spec;
  spec.weights_constant = b.constant;
  size_t rank = y.size();
  if (flatten) {
    const int64_t k = a.shape.back(), rows = NumElementsUnchecked(a.shape) / std::max<int64_t>(k, 1);
    rank = 2;
    spec.src = RowMajor({rows, k});
    spec.weights = RowMajor({k, n});
    spec.dst = RowMajor({rows, n});
  } else {
    spec.src = RowMajor(Padded(a.shape, rank));
    spec.weights = RowMajor(Padded(b.shape, rank));
    spec.dst = RowMajor(ToDims(y));
  }
  if (bias != nullptr) {
    if (flatten) {
      spec.bias = RowMajor({1, n});
    } else if (bias->shape.size() <= rank) {
      spec.bias = RowMajor(Padded(bias->shape, rank));
    } else {
      return nullptr;
    }
    spec.bias_value = *bias->constant;
  }
  return Build(c, spec);
}

KernelOr CompileGemm(const OpContext& c) {
  const Node& node = c.node();
  const TensorDesc& a = c.input(0);
  const TensorDesc& b = c.input(1);
  if (a.shape.size() != 2 || b.shape.size() != 2) return nullptr;
  const bool trans_a = node.GetInt("transA", 0) != 0;
  const bool trans_b = node.GetInt("transB", 0) != 0;
  const float alpha = node.GetFloat("alpha", 1.0f);
  const float beta = node.GetFloat("beta", 1.0f);
  if (alpha != 1.0f && b.constant == nullptr) return nullptr;
  // A transposed read of a blocked layout has no oneDNN form.
  if ((a.layout && trans_a) || (b.layout && trans_b)) return nullptr;
  const int64_t m = c.output(0).shape[0], n = c.output(0).shape[1];
  const int64_t k = trans_a ? a.shape[0] : a.shape[1];
  MatMulSpec spec;
  spec.src = trans_a ? Strided({m, k}, {1, m}) : Strided({m, k}, {k, 1});
  spec.weights = trans_b ? Strided({k, n}, {1, k}) : Strided({k, n}, {n, 1});
  Tensor scaled_b;
  if (b.constant != nullptr) {
    scaled_b = Scaled(*b.constant, alpha);
    spec.weights_constant = &scaled_b;
  }
  spec.dst = RowMajor({m, n});
  if (c.has_input(2) && beta != 0.0f) {
    const TensorDesc& bias = c.input(2);
    if (bias.constant == nullptr || bias.shape.size() > 2) return nullptr;
    spec.bias = RowMajor(Padded(bias.shape, 2));
    spec.bias_value = Scaled(*bias.constant, beta);
  }
  return Build(c, spec);
}

}  // namespace slimserve::runtime::onednn
