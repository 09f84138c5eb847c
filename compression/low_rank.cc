#include "compression/low_rank.h"

#include <algorithm>
#include <cstdint>
#include <map>

#include <oneapi/dnnl/dnnl.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "compression/evaluate.h"
#include "compression/linalg.h"
#include "compression/probe.h"
#include "runtime/passes/graph_util.h"
#include "runtime/passes/passes.h"
#include "runtime/status_macros.h"

namespace slimserve::compression {
namespace {

using runtime::DataType;
using runtime::Graph;
using runtime::Node;
using runtime::Tensor;

constexpr int64_t kMaxSide = 1024;    // the eigenproblem's size (Jacobi: ~10 s at 1024)
constexpr int64_t kMaxInputs = 4096;  // the input covariance's size

// A layer y = x W + b, W of in x out, as the weights it multiplies by.
struct Layer {
  std::vector<size_t> nodes;  // that share these weights
  int64_t in = 0, out = 0;
  std::vector<double> w;  // [in][out]
};

// Whether `node`'s weights are stored [out][in] (Conv, Gemm with transB).
bool StoredOutputsFirst(const Node& node) {
  return node.op_type == "Conv" || (node.op_type == "Gemm" && node.GetInt("transB", 0) != 0);
}

// `node` as a layer, when it is one this can factorize: its sizes, with
// nodes = {index} and w still empty (Load fills it).
bool AsLayer(const Graph& graph, size_t index, Layer& layer) {
  const Node& node = graph.nodes[index];
  if (node.op_type != "MatMul" && node.op_type != "Gemm" && node.op_type != "Conv") return false;
  const Tensor* w = node.inputs.size() >= 2 ? runtime::FindConstant(graph, node.inputs[1]) : nullptr;
  if (w == nullptr || w->dtype() != DataType::kFloat32 || runtime::FindConstant(graph, node.inputs[0]) != nullptr) {
    return false;
  }
  if (node.op_type == "Conv") {
    if (w->rank() != 4 || w->shape()[2] != 1 || w->shape()[3] != 1 || node.GetInt("group", 1) != 1) return false;
  } else if (w->rank() != 2 || node.GetInt("transA", 0) != 0) {
    return false;
  }
  const bool transposed = StoredOutputsFirst(node);
  layer.nodes = {index};
  layer.in = transposed ? w->shape()[1] : w->shape()[0];
  layer.out = transposed ? w->shape()[0] : w->shape()[1];
  return true;
}

// Fills layer.w from the weights of its first node.
void Load(const Graph& graph, Layer& layer) {
  const Node& node = graph.nodes[layer.nodes[0]];
  const float* v = runtime::FindConstant(graph, node.inputs[1])->data<float>();
  const bool transposed = StoredOutputsFirst(node);
  layer.w.resize(layer.in * layer.out);
  for (int64_t i = 0; i < layer.in; ++i) {
    for (int64_t o = 0; o < layer.out; ++o) layer.w[i * layer.out + o] = transposed ? v[o * layer.in + i] : v[i * layer.out + o];
  }
}

// The largest rank (a multiple of 8) at which two factors cost less than one.
int64_t RankLimit(const Layer& l) { return (l.in * l.out / (l.in + l.out) - 1) / 8 * 8; }

// X^T X of a layer input's rows (features along dimension 1 of a Conv's
// NCHW input, along the last one otherwise), summed over batches.
class Covariance {
 public:
  explicit Covariance(int64_t features) : features_(features), sum_(features * features, 0.0) {}

  void Add(const Tensor& x, bool channels_first) {
    const int64_t f = features_;
    std::vector<float> g(f * f);
    if (channels_first) {  // per image, X_n [f][hw]: X_n X_n^T
      const int64_t hw = x.num_elements() / (x.shape()[0] * f);
      for (int64_t n = 0; n < x.shape()[0]; ++n) {
        dnnl_sgemm('N', 'T', f, f, hw, 1.0f, x.data<float>() + n * f * hw, hw, x.data<float>() + n * f * hw, hw,
                   n == 0 ? 0.0f : 1.0f, g.data(), f);
      }
    } else {
      const int64_t rows = x.num_elements() / f;
      dnnl_sgemm('T', 'N', f, f, rows, 1.0f, x.data<float>(), f, x.data<float>(), f, 0.0f, g.data(), f);
    }
    for (int64_t i = 0; i < f * f; ++i) sum_[i] += g[i];
  }

  // The identity when no data was added.
  std::vector<double> Get() const {
    std::vector<double> c = sum_;
    if (std::all_of(c.begin(), c.end(), [](double v) { return v == 0; })) {
      for (int64_t i = 0; i < features_; ++i) c[i * features_ + i] = 1;
    }
    return c;
  }

 private:
  int64_t features_;
  std::vector<double> sum_;
};

// a (m x k) times b (k x n), row-major; a transposed when `ta` (stored k x m).
std::vector<double> Product(const std::vector<double>& a, const std::vector<double>& b, int64_t m, int64_t k, int64_t n,
                            bool ta = false) {
  std::vector<double> c(m * n, 0.0);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t p = 0; p < k; ++p) {
      const double x = ta ? a[p * m + i] : a[i * k + p];
      if (x == 0) continue;
      for (int64_t j = 0; j < n; ++j) c[i * n + j] += x * b[p * n + j];
    }
  }
  return c;
}

struct Factors {
  std::vector<double> a, b;  // in x r, r x out
  int64_t rank = 0;
  double energy = 0;  // share of the output energy kept
};

// The factors of `layer` given its input covariance `c`, at `rank` or, with
// options.energy, at the rank that keeps that share. rank 0: none worth it
// (or inputs whose covariance is not positive definite).
Factors Fit(const Layer& l, std::vector<double> c, const LowRankOptions& options, int64_t rank) {
  const bool by_outputs = l.out <= l.in;  // the Gram matrix on the smaller side
  const int64_t n = by_outputs ? l.out : l.in;
  std::vector<double> gram, lower, m;
  if (by_outputs) {  // W^T C W
    gram = Product(l.w, Product(c, l.w, l.in, l.in, l.out), l.out, l.in, l.out, /*ta=*/true);
  } else {  // M = L^T W, M M^T
    double trace = 0;
    for (int64_t i = 0; i < l.in; ++i) trace += c[i * l.in + i];
    for (int64_t i = 0; i < l.in; ++i) c[i * l.in + i] += 1e-6 * trace / l.in;  // inputs that never vary
    if (!CholeskyFactor(c, l.in)) return {};
    for (int64_t i = 0; i < l.in; ++i) {
      for (int64_t j = i + 1; j < l.in; ++j) c[i * l.in + j] = 0;
    }
    lower = std::move(c);
    m = Product(lower, l.w, l.in, l.in, l.out, /*ta=*/true);
    gram.assign(n * n, 0.0);
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j <= i; ++j) {
        double s = 0;
        for (int64_t k = 0; k < l.out; ++k) s += m[i * l.out + k] * m[j * l.out + k];
        gram[i * n + j] = gram[j * n + i] = s;
      }
    }
  }
  std::vector<double> vectors;
  const std::vector<double> values = SymmetricEigen(gram, n, vectors);
  double total = 0;
  for (double v : values) total += std::max(0.0, v);
  Factors f;
  if (options.energy > 0) {
    double kept = 0;
    int64_t r = 0;
    while (r < n && kept < options.energy * total) kept += std::max(0.0, values[r++]);
    rank = std::min(RankLimit(l), (r + 7) / 8 * 8);
    if (r > rank) return {};  // two factors would cost more
  }
  f.rank = rank;
  for (int64_t i = 0; i < rank; ++i) f.energy += std::max(0.0, values[i]) / std::max(total, 1e-300);
  f.a.assign(l.in * rank, 0.0);
  f.b.assign(rank * l.out, 0.0);
  if (by_outputs) {  // A = W V_r, B = V_r^T
    std::vector<double> v(l.out * rank);
    for (int64_t o = 0; o < l.out; ++o) {
      for (int64_t j = 0; j < rank; ++j) v[o * rank + j] = f.b[j * l.out + o] = vectors[o * n + j];
    }
    f.a = Product(l.w, v, l.in, l.out, rank);
  } else {  // A = L^-T U_r, B = U_r^T M
    for (int64_t j = 0; j < rank; ++j) {
      std::vector<double> u(l.in);
      for (int64_t i = 0; i < l.in; ++i) u[i] = vectors[i * n + j];
      for (int64_t o = 0; o < l.out; ++o) {
        double s = 0;
        for (int64_t i = 0; i < l.in; ++i) s += u[i] * m[i * l.out + o];
        f.b[j * l.out + o] = s;
      }
      SolveUpperTransposed(lower, u, l.in);
      for (int64_t i = 0; i < l.in; ++i) f.a[i * rank + j] = u[i];
    }
  }
  return f;
}

Tensor ToTensor(const std::vector<double>& v, runtime::Shape shape, bool transpose_2d) {
  Tensor t = Tensor::Allocate(DataType::kFloat32, shape).value();
  const int64_t rows = transpose_2d ? shape[1] : shape[0], cols = t.num_elements() / rows;
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) {
      t.data<float>()[transpose_2d ? j * rows + i : i * cols + j] = static_cast<float>(v[i * cols + j]);
    }
  }
  return t;
}

// Adds the factors of layer `l` to `graph`, named after its weights.
std::pair<std::string, std::string> AddFactors(Graph& graph, const Layer& l, const Factors& f) {
  const Node& node = graph.nodes[l.nodes[0]];
  const std::string a = runtime::UniqueName(graph, node.inputs[1] + "_a");
  const std::string b = runtime::UniqueName(graph, node.inputs[1] + "_b");
  if (node.op_type == "Conv") {  // A as r filters of in channels, B as out filters of r
    graph.initializers[a] = ToTensor(f.a, {f.rank, l.in, 1, 1}, /*transpose_2d=*/true);
    graph.initializers[b] = ToTensor(f.b, {l.out, f.rank, 1, 1}, true);
  } else {
    graph.initializers[a] = ToTensor(f.a, {l.in, f.rank}, false);
    graph.initializers[b] = ToTensor(f.b, {f.rank, l.out}, false);
  }
  return {a, b};
}

// Replaces node `index` of `graph` by x A (a new node before it) and
// (x A) B (the node itself, with its bias; a Conv's strides and pads go to
// the first).
void Replace(Graph& graph, size_t index, const std::pair<std::string, std::string>& factors) {
  Node& second = graph.nodes[index];
  Node first;
  first.name = runtime::UniqueName(graph, second.name + "_low_rank");
  first.op_type = second.op_type;
  first.inputs = {second.inputs[0], factors.first};
  first.outputs = {runtime::UniqueName(graph, second.outputs[0] + "_low_rank")};
  if (second.op_type == "Conv") {
    first.attributes = second.attributes;
    for (const char* attr : {"strides", "pads", "auto_pad", "dilations"}) second.attributes.erase(attr);
  } else {
    second.attributes.erase("transB");
  }
  second.inputs[0] = first.outputs[0];
  second.inputs[1] = factors.second;
  graph.nodes.insert(graph.nodes.begin() + static_cast<std::ptrdiff_t>(index), std::move(first));
}

}  // namespace

absl::StatusOr<PruneReport> Factorize(Graph& graph, const LowRankOptions& options,
                                      absl::Span<const std::vector<Tensor>> batches, int num_threads,
                                      const Progress& progress) {
  if (!(options.ratio > 0 && options.ratio < 1) || !(options.energy >= 0 && options.energy <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("low-rank ratio must be in (0, 1) and energy in (0, 1], not ", options.ratio, " and ", options.energy));
  }
  PruneReport report;
  report.parameters_before = CountParameters(graph).total;
  std::vector<Layer> layers;
  std::vector<int64_t> ranks;
  // Weight name and node kind -> index in `layers`, or kLeft for weights
  // whose layer is left (every node sharing them is left with it).
  constexpr size_t kLeft = SIZE_MAX;
  std::map<std::string, size_t> by_weight;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Layer l;
    if (!AsLayer(graph, i, l)) continue;
    const Node& node = graph.nodes[i];
    auto [shared, added] =
        by_weight.emplace(absl::StrCat(node.inputs[1], " ", node.op_type, node.GetInt("transB", 0)), kLeft);
    if (!added) {
      if (shared->second != kLeft) layers[shared->second].nodes.push_back(i);
      continue;
    }
    const int64_t rank = options.energy > 0 ? RankLimit(l)
                                            : static_cast<int64_t>(options.ratio * l.in * l.out / (l.in + l.out)) / 8 * 8;
    if (rank < 8 || rank > RankLimit(l)) continue;
    if (std::min(l.in, l.out) > kMaxSide || l.in > kMaxInputs) {
      report.layers.push_back(absl::StrFormat("%s: %dx%d left (too large to factorize)", node.Describe(), l.in, l.out));
      continue;
    }
    shared->second = layers.size();
    Load(graph, l);
    layers.push_back(std::move(l));
    ranks.push_back(rank);
  }
  if (layers.empty()) {
    return absl::FailedPreconditionError(
        "low-rank: no layer to factorize (MatMul, Gemm or 1x1 Conv with constant weights where a rank of 8 or more "
        "lowers the FLOPs)");
  }
  // Each layer's input covariance, over every node that shares its weights.
  std::vector<std::string> values;
  std::map<std::string, std::vector<size_t>> readers;  // value -> layers
  std::vector<Covariance> covariances;
  for (size_t k = 0; k < layers.size(); ++k) {
    covariances.emplace_back(layers[k].in);
    for (size_t i : layers[k].nodes) {
      std::vector<size_t>& r = readers[graph.nodes[i].inputs[0]];
      if (r.empty()) values.push_back(graph.nodes[i].inputs[0]);
      r.push_back(k);
    }
  }
  RETURN_IF_ERROR(VisitValues(
      graph, values, batches, num_threads,
      [&](size_t v, const Tensor& x) {
        for (size_t k : readers[values[v]]) covariances[k].Add(x, graph.nodes[layers[k].nodes[0]].op_type == "Conv");
      },
      Part(progress, 0, 0.5)));

  std::vector<std::pair<size_t, std::pair<std::string, std::string>>> replacements;  // node, factors
  for (size_t k = 0; k < layers.size(); ++k) {
    RETURN_IF_ERROR(Report(progress, 0.5 + 0.5 * k / layers.size()));
    const Layer& l = layers[k];
    const Factors f = Fit(l, covariances[k].Get(), options, ranks[k]);
    const std::string nodes = absl::StrCat(graph.nodes[l.nodes[0]].Describe(),
                                           l.nodes.size() > 1 ? absl::StrCat(" and ", l.nodes.size() - 1, " sharing its weights") : "");
    if (f.rank == 0) {
      report.layers.push_back(absl::StrFormat("%s: %dx%d left (no rank of that energy lowers its FLOPs)", nodes, l.in, l.out));
      continue;
    }
    report.layers.push_back(absl::StrFormat("%s: %dx%d -> rank %d (%.0f %% of its parameters, %.1f %% of the output energy)",
                                            nodes, l.in, l.out, f.rank, 100.0 * f.rank * (l.in + l.out) / (l.in * l.out),
                                            100 * f.energy));
    const auto names = AddFactors(graph, l, f);
    for (size_t i : l.nodes) replacements.push_back({i, names});
  }
  if (replacements.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("low-rank: no layer keeps ", 100 * options.energy,
                                                      " % of its output energy at a rank that lowers its FLOPs"));
  }
  std::sort(replacements.rbegin(), replacements.rend());  // last first: insertions move the later nodes
  for (const auto& [node, names] : replacements) Replace(graph, node, names);
  runtime::EliminateDeadNodes(graph);  // the replaced weights
  const Parameters after = CountParameters(graph);
  report.parameters_after = after.total;
  report.nonzero_after = after.total - after.zeros;
  return report;
}

}  // namespace slimserve::compression
