// The neural-network kernels (conv.cc, pool.cc, gemm.cc, nn_ops.cc,
// reduce_ops.cc) against naive loops written straight from the ONNX
// definitions, over geometries the conformance suite does not reach: GEMM
// tiles with ragged edges, groups with channel multipliers, dilations with
// asymmetric pads, several threads. Plus invalid nodes, which must fail
// cleanly. Float results agree to 1e-4 relative (float accumulation order).
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/reference/gemm.h"
#include "runtime/reference/op_registry.h"

namespace slimserve::runtime::reference {
namespace {

using ::testing::HasSubstr;

Tensor Random(Shape shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  Tensor t = Tensor::Allocate(DataType::kFloat32, std::move(shape)).value();
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = dist(rng);
  return t;
}

// Runs `node` on `inputs` with `threads` intra-op threads; returns its outputs.
absl::StatusOr<std::vector<Tensor>> RunNode(Node node, const std::vector<Tensor>& inputs,
                                            int threads = 1, int64_t opset = 17) {
  node.inputs.clear();
  for (size_t i = 0; i < inputs.size(); ++i) {
    node.inputs.push_back(inputs[i].defined() ? absl::StrCat("x", i) : "");
  }
  if (node.outputs.empty()) node.outputs = {"y"};
  if (threads == 1) return Evaluate(node, opset, inputs, int64_t{1} << 30);
  // Evaluate runs one thread: infer and compute by hand for more.
  const OpDef* op = FindOp(node);
  if (op == nullptr) return absl::UnimplementedError(node.op_type);
  std::vector<TensorDesc> in_descs;
  for (const Tensor& t : inputs) in_descs.push_back({t.dtype(), t.shape(), &t});
  std::vector<TensorDesc> out_descs(node.outputs.size());
  InferContext infer{node, opset, in_descs, out_descs};
  if (absl::Status s = op->infer(infer); !s.ok()) return s;
  std::vector<Tensor> outputs;
  for (const TensorDesc& d : out_descs)
    outputs.push_back(Tensor::Allocate(d.dtype, d.shape).value());
  ComputeContext compute{node, opset, inputs, absl::MakeSpan(outputs), threads};
  if (absl::Status s = op->compute(compute); !s.ok()) return s;
  return outputs;
}

Node MakeNode(std::string op) {
  Node node;
  node.op_type = std::move(op);
  return node;
}

void SetInts(Node& node, const std::string& name, std::vector<int64_t> v) {
  node.attributes[name].type = Attribute::Type::kInts;
  node.attributes[name].ints = std::move(v);
}

void SetInt(Node& node, const std::string& name, int64_t v) {
  node.attributes[name].type = Attribute::Type::kInt;
  node.attributes[name].i = v;
}

void ExpectNear(const Tensor& got, const std::vector<double>& want, const Shape& shape) {
  ASSERT_EQ(got.shape(), shape);
  ASSERT_EQ(got.num_elements(), static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_NEAR(got.data<float>()[i], want[i], 1e-4 * (1 + std::fabs(want[i]))) << "element " << i;
  }
}

// Row-major index helpers over small shapes.
std::vector<int64_t> Unravel(int64_t i, const Shape& shape) {
  std::vector<int64_t> idx(shape.size());
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    idx[d] = i % shape[d];
    i /= shape[d];
  }
  return idx;
}

int64_t Ravel(const std::vector<int64_t>& idx, const Shape& shape) {
  int64_t i = 0;
  for (size_t d = 0; d < shape.size(); ++d) i = i * shape[d] + idx[d];
  return i;
}

// ---- GEMM -------------------------------------------------------------------

TEST(GemmTest, MatchesNaiveOnRaggedTilesTransposesAndThreads) {
  for (const auto& [m, n, k] : std::vector<std::array<int64_t, 3>>{
           {1, 1, 1}, {7, 33, 5}, {97, 385, 257}, {200, 70, 600}, {1, 1000, 300}}) {
    for (bool trans_a : {false, true}) {
      for (bool trans_b : {false, true}) {
        const Tensor a = Random({m, k}, 1), b = Random({k, n}, 2);
        const float* ad = a.data<float>();
        const float* bd = b.data<float>();
        // The same values seen through transposed strides.
        std::vector<float> at(m * k), bt(k * n);
        for (int64_t i = 0; i < m; ++i)
          for (int64_t p = 0; p < k; ++p) at[p * m + i] = ad[i * k + p];
        for (int64_t p = 0; p < k; ++p)
          for (int64_t j = 0; j < n; ++j) bt[j * k + p] = bd[p * n + j];
        const MatrixView<float> av =
            trans_a ? MatrixView<float>{at.data(), 1, m} : MatrixView<float>{ad, k, 1};
        const MatrixView<float> bv =
            trans_b ? MatrixView<float>{bt.data(), 1, k} : MatrixView<float>{bd, n, 1};
        for (int threads : {1, 2}) {
          std::vector<float> c(m * n, 1.0f);
          GemmAccumulate<float>(m, n, k, 0.5f, av, bv, c.data(), n, threads);
          for (int64_t i = 0; i < m; ++i) {
            for (int64_t j = 0; j < n; ++j) {
              double want = 1.0;
              for (int64_t p = 0; p < k; ++p) want += 0.5 * ad[i * k + p] * bd[p * n + j];
              ASSERT_NEAR(c[i * n + j], want, 1e-4 * (1 + std::fabs(want)))
                  << m << "x" << n << "x" << k << " at " << i << "," << j;
            }
          }
        }
      }
    }
  }
}

TEST(GemmTest, IntegersAreExact) {
  const int64_t m = 13, n = 40, k = 300;
  std::vector<int64_t> a(m * k), b(k * n), c(m * n, 0);
  for (int64_t i = 0; i < m * k; ++i) a[i] = i % 7 - 3;
  for (int64_t i = 0; i < k * n; ++i) b[i] = i % 5 - 2;
  GemmAccumulate<int64_t>(m, n, k, 1, {a.data(), k, 1}, MatrixView<int64_t>{b.data(), n, 1},
                          c.data(), n, 2);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      int64_t want = 0;
      for (int64_t p = 0; p < k; ++p) want += a[i * k + p] * b[p * n + j];
      ASSERT_EQ(c[i * n + j], want);
    }
  }
}

// ---- Conv, ConvTranspose --------------------------------------------------------

struct ConvCase {
  Shape x, w;  // X [N, C, spatial...], W as the op reads it
  int64_t group;
  std::vector<int64_t> strides, dilations, pads;  // pads: begins then ends
  bool bias;
};

// Conv straight from the definition: every output element sums its taps.
std::vector<double> NaiveConv(const ConvCase& cc, const Tensor& x, const Tensor& w, const Tensor* b,
                              Shape* out_shape) {
  const size_t rank = cc.x.size() - 2;
  const int64_t m_total = cc.w[0], cg = cc.w[1], mg = m_total / cc.group;
  *out_shape = {cc.x[0], m_total};
  for (size_t d = 0; d < rank; ++d) {
    const int64_t extent = (cc.w[2 + d] - 1) * cc.dilations[d] + 1;
    out_shape->push_back((cc.x[2 + d] + cc.pads[d] + cc.pads[rank + d] - extent) / cc.strides[d] +
                         1);
  }
  const Shape kernel(cc.w.begin() + 2, cc.w.end());
  std::vector<double> y(NumElementsUnchecked(*out_shape));
  for (size_t o = 0; o < y.size(); ++o) {
    const std::vector<int64_t> oi = Unravel(o, *out_shape);
    const int64_t n = oi[0], m = oi[1], g = m / mg;
    double sum = b != nullptr ? b->data<float>()[m] : 0.0;
    for (int64_t c = 0; c < cg; ++c) {
      for (int64_t t = 0; t < NumElementsUnchecked(kernel); ++t) {
        const std::vector<int64_t> k = Unravel(t, kernel);
        std::vector<int64_t> xi = {n, g * cg + c};
        bool inside = true;
        for (size_t d = 0; d < rank; ++d) {
          const int64_t pos = oi[2 + d] * cc.strides[d] - cc.pads[d] + k[d] * cc.dilations[d];
          inside = inside && pos >= 0 && pos < cc.x[2 + d];
          xi.push_back(pos);
        }
        if (!inside) continue;
        std::vector<int64_t> wi = {m, c};
        wi.insert(wi.end(), k.begin(), k.end());
        sum += double{x.data<float>()[Ravel(xi, cc.x)]} * w.data<float>()[Ravel(wi, cc.w)];
      }
    }
    y[o] = sum;
  }
  return y;
}

Node ConvNode(const std::string& op, const ConvCase& cc) {
  Node node = MakeNode(op);
  SetInt(node, "group", cc.group);
  SetInts(node, "strides", cc.strides);
  SetInts(node, "dilations", cc.dilations);
  SetInts(node, "pads", cc.pads);
  return node;
}

const std::vector<ConvCase>& ConvCases() {
  static const auto* cases = new std::vector<ConvCase>{
      {{2, 5, 23}, {7, 5, 4}, 1, {2}, {3}, {1, 4}, true},                         // 1-D
      {{1, 6, 11, 13}, {8, 3, 3, 2}, 2, {1, 2}, {2, 1}, {0, 1, 2, 0}, true},      // groups
      {{2, 4, 9, 10}, {8, 1, 3, 3}, 4, {2, 1}, {1, 2}, {1, 2, 1, 0}, false},      // depthwise x2
      {{1, 3, 12, 13}, {130, 3, 3, 3}, 1, {1, 1}, {1, 1}, {1, 1, 1, 1}, true},    // M > one tile
      {{1, 300, 6, 7}, {20, 300, 1, 1}, 1, {1, 1}, {1, 1}, {0, 0, 0, 0}, false},  // pointwise, deep
      {{1, 4, 5, 6, 7}, {6, 2, 2, 3, 2}, 2, {1, 2, 1}, {1, 1, 2}, {1, 0, 1, 0, 1, 1}, true},  // 3-D
  };
  return *cases;
}

TEST(ConvTest, MatchesNaiveConvolution) {
  for (size_t i = 0; i < ConvCases().size(); ++i) {
    const ConvCase& cc = ConvCases()[i];
    const Tensor x = Random(cc.x, 10 + i), w = Random(cc.w, 20 + i), b = Random({cc.w[0]}, 30 + i);
    Shape shape;
    const std::vector<double> want = NaiveConv(cc, x, w, cc.bias ? &b : nullptr, &shape);
    for (int threads : {1, 2}) {
      absl::StatusOr<std::vector<Tensor>> y =
          RunNode(ConvNode("Conv", cc), {x, w, cc.bias ? b : Tensor()}, threads);
      ASSERT_TRUE(y.ok()) << y.status();
      SCOPED_TRACE(absl::StrCat("case ", i, ", ", threads, " threads"));
      ExpectNear((*y)[0], want, shape);
    }
  }
}

TEST(ConvTest, SamePaddingPutsTheOddUnitAtTheEndForUpper) {
  // in 10, kernel 4, stride 3: out 4, total padding (4-1)*3+4-10 = 3.
  for (const auto& [mode, begin] : {std::pair{"SAME_UPPER", 1}, std::pair{"SAME_LOWER", 2}}) {
    ConvCase cc{{1, 2, 10}, {3, 2, 4}, 1, {3}, {1}, {begin, 3 - begin}, false};
    const Tensor x = Random(cc.x, 1), w = Random(cc.w, 2);
    Shape shape;
    const std::vector<double> want = NaiveConv(cc, x, w, nullptr, &shape);
    Node node = MakeNode("Conv");
    SetInts(node, "strides", {3});
    node.attributes["auto_pad"].type = Attribute::Type::kString;
    node.attributes["auto_pad"].s = mode;
    absl::StatusOr<std::vector<Tensor>> y = RunNode(node, {x, w});
    ASSERT_TRUE(y.ok()) << y.status();
    ExpectNear((*y)[0], want, shape);
  }
}

TEST(ConvTransposeTest, IsTheAdjointOfConv) {
  // ConvTranspose(y, W) scatters what Conv(x, W) gathers: its output is
  // sum over taps of W * input at o = i * stride - pad + k * dilation.
  for (size_t i = 0; i < ConvCases().size(); ++i) {
    const ConvCase& cc = ConvCases()[i];
    Shape conv_out;
    NaiveConv(cc, Random(cc.x, 0), Random(cc.w, 0), nullptr, &conv_out);
    // The same weights [M, C/group, k...] read as ConvTranspose's
    // [input channels, output channels / group, k...]; input shaped like
    // Conv's output, output like Conv's input.
    const int64_t in_per_group = cc.w[0] / cc.group, out_per_group = cc.w[1];
    const Shape& wt = cc.w;
    const Tensor x = Random(conv_out, 40 + i), w = Random(wt, 50 + i);
    const Tensor b = Random({out_per_group * cc.group}, 60 + i);
    // Expected: scatter every input element through every tap.
    const size_t rank = cc.x.size() - 2;
    Shape out = {conv_out[0], out_per_group * cc.group};
    for (size_t d = 0; d < rank; ++d) {
      out.push_back(cc.strides[d] * (conv_out[2 + d] - 1) + (cc.w[2 + d] - 1) * cc.dilations[d] +
                    1 - cc.pads[d] - cc.pads[rank + d]);
    }
    std::vector<double> want(NumElementsUnchecked(out));
    for (size_t o = 0; o < want.size(); ++o) {
      want[o] = cc.bias ? b.data<float>()[Unravel(o, out)[1]] : 0.0;
    }
    const Shape kernel(cc.w.begin() + 2, cc.w.end());
    for (int64_t e = 0; e < x.num_elements(); ++e) {
      const std::vector<int64_t> xi = Unravel(e, conv_out);
      const int64_t g = xi[1] / in_per_group;
      for (int64_t m = 0; m < out_per_group; ++m) {
        for (int64_t t = 0; t < NumElementsUnchecked(kernel); ++t) {
          const std::vector<int64_t> k = Unravel(t, kernel);
          std::vector<int64_t> oi = {xi[0], g * out_per_group + m};
          bool inside = true;
          for (size_t d = 0; d < rank; ++d) {
            const int64_t pos = xi[2 + d] * cc.strides[d] - cc.pads[d] + k[d] * cc.dilations[d];
            inside = inside && pos >= 0 && pos < out[2 + d];
            oi.push_back(pos);
          }
          if (!inside) continue;
          std::vector<int64_t> wi = {xi[1], m};
          wi.insert(wi.end(), k.begin(), k.end());
          want[Ravel(oi, out)] += double{x.data<float>()[e]} * w.data<float>()[Ravel(wi, wt)];
        }
      }
    }
    absl::StatusOr<std::vector<Tensor>> y =
        RunNode(ConvNode("ConvTranspose", cc), {x, w, cc.bias ? b : Tensor()}, 2);
    ASSERT_TRUE(y.ok()) << y.status();
    SCOPED_TRACE(absl::StrCat("case ", i));
    ExpectNear((*y)[0], want, out);
  }
}

TEST(ConvTest, InvalidNodesFailCleanly) {
  const Tensor x = Random({1, 4, 8, 8}, 1), w = Random({6, 4, 3, 3}, 2);
  auto error = [&](Node node, std::vector<Tensor> inputs) {
    absl::StatusOr<std::vector<Tensor>> y = RunNode(std::move(node), inputs);
    return y.ok() ? std::string("ok") : std::string(y.status().message());
  };
  Node group = MakeNode("Conv");
  SetInt(group, "group", 3);
  EXPECT_THAT(error(group, {x, w}), HasSubstr("group 3 does not divide 4 input channels"));
  Node pads = MakeNode("Conv");
  SetInts(pads, "pads", {1, 1});
  EXPECT_THAT(error(pads, {x, w}), HasSubstr("pads has 2 values, expected 4"));
  Node strides = MakeNode("Conv");
  SetInts(strides, "strides", {0, int64_t{1} << 40});
  EXPECT_THAT(error(strides, {x, w}), HasSubstr("out of range"));
  EXPECT_THAT(error(MakeNode("Conv"), {x, Random({6, 4, 9, 9}, 3)}), HasSubstr("does not fit"));
  EXPECT_THAT(error(MakeNode("Conv"), {x, w, Random({5}, 4)}), HasSubstr("bias of shape [5]"));
  Node output_shape = MakeNode("ConvTranspose");
  SetInts(output_shape, "output_shape", {1, 2, 3});
  EXPECT_THAT(error(output_shape, {x, Random({4, 2, 3, 3}, 5)}), HasSubstr("output_shape"));
}

// ---- Pooling ------------------------------------------------------------------------

TEST(PoolTest, MatchesNaivePoolingWithCeilModeDilationsAndPadding) {
  const Shape xs = {2, 3, 11, 9};
  const Tensor x = Random(xs, 7);
  const std::vector<int64_t> kernel = {3, 2}, strides = {2, 3}, dilations = {2, 1},
                             pads = {1, 1, 2, 2};
  // Ceil mode: out = ceil((in + pads - extent) / stride) + 1, unless the last
  // window would start in the end padding.
  const Shape out = {2, 3, 6, 4};
  for (const std::string op : {"MaxPool", "AveragePool"}) {
    for (int64_t include_pad : {0, 1}) {
      Node node = MakeNode(op);
      SetInts(node, "kernel_shape", kernel);
      SetInts(node, "strides", strides);
      SetInts(node, "pads", pads);
      SetInt(node, "ceil_mode", 1);
      if (op == "MaxPool") SetInts(node, "dilations", dilations);
      if (op == "AveragePool") SetInt(node, "count_include_pad", include_pad);
      const std::vector<int64_t> dil = op == "MaxPool" ? dilations : std::vector<int64_t>{1, 1};
      std::vector<double> want(NumElementsUnchecked(out));
      for (size_t o = 0; o < want.size(); ++o) {
        const std::vector<int64_t> oi = Unravel(o, out);
        double max = -INFINITY, sum = 0;
        int64_t count = 0, padded = 0;
        for (int64_t ky = 0; ky < kernel[0]; ++ky) {
          for (int64_t kx = 0; kx < kernel[1]; ++kx) {
            const int64_t iy = oi[2] * strides[0] - pads[0] + ky * dil[0];
            const int64_t ix = oi[3] * strides[1] - pads[1] + kx * dil[1];
            padded += iy < xs[2] + pads[2] && ix < xs[3] + pads[3];
            if (iy < 0 || iy >= xs[2] || ix < 0 || ix >= xs[3]) continue;
            const double v = x.data<float>()[Ravel({oi[0], oi[1], iy, ix}, xs)];
            max = std::max(max, v);
            sum += v;
            ++count;
          }
        }
        want[o] = op == "MaxPool" ? max : sum / (include_pad ? padded : count);
      }
      absl::StatusOr<std::vector<Tensor>> y = RunNode(node, {x}, 2);
      ASSERT_TRUE(y.ok()) << y.status();
      SCOPED_TRACE(absl::StrCat(op, " count_include_pad ", include_pad));
      ExpectNear((*y)[0], want, out);
    }
  }
}

// ---- Reductions, softmax ----------------------------------------------------------------

TEST(ReduceTest, NonContiguousAxesMatchNaiveSums) {
  const Shape xs = {3, 4, 5, 2};
  const Tensor x = Random(xs, 9);
  Node node = MakeNode("ReduceSum");
  SetInts(node, "axes", {0, 2});
  SetInt(node, "keepdims", 0);
  std::vector<double> want(4 * 2, 0.0);
  for (int64_t e = 0; e < x.num_elements(); ++e) {
    const std::vector<int64_t> i = Unravel(e, xs);
    want[i[1] * 2 + i[3]] += x.data<float>()[e];
  }
  absl::StatusOr<std::vector<Tensor>> y = RunNode(node, {x}, 1, 11);
  ASSERT_TRUE(y.ok()) << y.status();
  ExpectNear((*y)[0], want, {4, 2});
}

TEST(ReduceTest, IntegerSumsWrapLikeTwosComplement) {
  Node node = MakeNode("ReduceSum");
  SetInt(node, "keepdims", 0);
  const Tensor x = Tensor::FromVector<int32_t>({2}, {INT32_MAX, 2});
  absl::StatusOr<std::vector<Tensor>> y = RunNode(node, {x}, 1, 11);
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ((*y)[0].data<int32_t>()[0], INT32_MIN + 1);
}

TEST(SoftmaxTest, OldOpsetsCoerceTo2DNewOnesUseOneAxis) {
  const Tensor x = Random({2, 3, 4}, 11);
  Node node = MakeNode("Softmax");
  SetInt(node, "axis", 1);
  for (int64_t opset : {11, 13}) {
    absl::StatusOr<std::vector<Tensor>> y = RunNode(node, {x}, 1, opset);
    ASSERT_TRUE(y.ok()) << y.status();
    // Opset 11 normalizes over the 12 elements of each image, 13 over axis 1.
    std::vector<double> want(x.num_elements());
    for (int64_t e = 0; e < x.num_elements(); ++e) {
      const std::vector<int64_t> i = Unravel(e, x.shape());
      double sum = 0;
      for (int64_t f = 0; f < x.num_elements(); ++f) {
        const std::vector<int64_t> j = Unravel(f, x.shape());
        if (j[0] == i[0] && (opset < 13 || j[2] == i[2])) sum += std::exp(x.data<float>()[f]);
      }
      want[e] = std::exp(x.data<float>()[e]) / sum;
    }
    SCOPED_TRACE(absl::StrCat("opset ", opset));
    ExpectNear((*y)[0], want, x.shape());
  }
}

}  // namespace
}  // namespace slimserve::runtime::reference
