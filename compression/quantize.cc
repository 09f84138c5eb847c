#include "compression/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "compression/probe.h"
#include "runtime/passes/graph_util.h"
#include "runtime/status_macros.h"

namespace slimserve::compression {
namespace {

using runtime::DataType;
using runtime::Graph;
using runtime::Node;
using runtime::Tensor;

// A node to quantize: its activation input 0 and constant weights at
// `weight_input`, whose output channels lie along `weight_axis`.
struct Target {
  size_t node;
  int weight_input;
  int weight_axis;
};

// Why `node` cannot be quantized, or "" when it can (filling `target`).
std::string Check(const Graph& graph, size_t index, const QuantizeOptions& options, Target& target) {
  const Node& node = graph.nodes[index];
  target = Target{index, 1, 0};
  if (node.op_type == "Conv") {
    target.weight_axis = 0;
  } else if (node.op_type == "Gemm") {
    if (node.GetInt("transA", 0) != 0) return "transA";
    target.weight_axis = node.GetInt("transB", 0) != 0 ? 0 : 1;
  } else if (node.op_type == "MatMul") {
    target.weight_axis = 1;
  } else {
    return "-";  // not a kind of node this quantizes
  }
  if (!node.domain.empty()) return "-";
  const Tensor* w = node.inputs.size() > 1 ? runtime::FindConstant(graph, node.inputs[1]) : nullptr;
  // A depthwise conv has one input channel per group: weights [C, 1, kh, kw].
  const bool depthwise = node.op_type == "Conv" && node.GetInt("group", 1) > 1 && w != nullptr && w->rank() == 4 &&
                         w->shape()[1] == 1;
  for (const std::string& keep : options.keep_fp32) {
    if (keep == node.name || keep == node.op_type || (keep == "depthwise" && depthwise)) {
      return "kept in fp32 as asked";
    }
  }
  if (w == nullptr) return "weights are not constant";
  if (w->dtype() != DataType::kFloat32) return "weights are not float";
  if (node.op_type != "Conv" && w->rank() != 2) return "weights are not 2-D";
  return "";
}

// Symmetric int8 per output channel: scale = max |w| / 127.
struct QuantizedWeights {
  Tensor values, scales, zero_points;
};

absl::StatusOr<QuantizedWeights> QuantizeWeights(const Tensor& w, int axis) {
  const int64_t channels = w.shape()[axis];
  int64_t inner = 1;
  for (int64_t d = axis + 1; d < w.rank(); ++d) inner *= w.shape()[d];
  const float* v = w.data<float>();
  const int64_t n = w.num_elements();
  std::vector<float> max_abs(channels, 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    float& m = max_abs[(i / inner) % channels];
    m = std::max(m, std::fabs(v[i]));
  }
  QuantizedWeights q;
  ASSIGN_OR_RETURN(q.values, Tensor::Allocate(DataType::kInt8, w.shape()));
  ASSIGN_OR_RETURN(q.scales, Tensor::Allocate(DataType::kFloat32, {channels}));
  ASSIGN_OR_RETURN(q.zero_points, Tensor::Allocate(DataType::kInt8, {channels}));
  for (int64_t c = 0; c < channels; ++c) {
    q.scales.data<float>()[c] = max_abs[c] > 0 ? max_abs[c] / 127.0f : 1.0f;
    q.zero_points.data<int8_t>()[c] = 0;
  }
  for (int64_t i = 0; i < n; ++i) {
    const float s = q.scales.data<float>()[(i / inner) % channels];
    q.values.data<int8_t>()[i] = static_cast<int8_t>(std::clamp(std::nearbyint(v[i] / s), -127.0f, 127.0f));
  }
  return q;
}

struct Range {
  float lo = 0, hi = 0;  // always includes 0
  void Add(const Tensor& t) {
    const float* v = t.data<float>();
    for (int64_t i = 0; i < t.num_elements(); ++i) {
      lo = std::min(lo, v[i]);
      hi = std::max(hi, v[i]);
    }
  }
};

// Counts of values in kBins equal bins over a Range.
struct Histogram {
  static constexpr int kBins = 4096;
  Range range;
  std::vector<int64_t> counts = std::vector<int64_t>(kBins, 0);
  void Add(const Tensor& t) {
    const float* v = t.data<float>();
    const float width = (range.hi - range.lo) / kBins;
    if (width <= 0) return;
    for (int64_t i = 0; i < t.num_elements(); ++i) {
      ++counts[std::clamp(static_cast<int>((v[i] - range.lo) / width), 0, kBins - 1)];
    }
  }
  // The range without the (100 - percentile) % of values in each tail.
  Range Clipped(double percentile) const {
    int64_t total = 0;
    for (int64_t c : counts) total += c;
    const auto tail = static_cast<int64_t>(total * (100.0 - percentile) / 100.0);
    const float width = (range.hi - range.lo) / kBins;
    int low = 0, high = kBins - 1;
    for (int64_t seen = counts[low]; seen <= tail && low < kBins - 1; seen += counts[++low]) {}
    for (int64_t seen = counts[high]; seen <= tail && high > 0; seen += counts[--high]) {}
    return Range{std::min(0.0f, range.lo + low * width), std::max(0.0f, range.lo + (high + 1) * width)};
  }
  // Of the ranges [lo, hi] * k / kSteps, the one whose uint8 quantization
  // keeps the most information: the least KL divergence between P, the
  // values clipped to it (outliers counted in the edge bins), and Q, the
  // values inside it rounded to 255 levels, which knows nothing of the
  // outliers (TensorRT's entropy calibration, both tails at once, with the
  // bin of 0 kept exact).
  Range LeastDivergence() const {
    constexpr int kSteps = 128, kLevels = 255;
    const float width = (range.hi - range.lo) / kBins;
    if (width <= 0) return range;
    Range best = range;
    double best_divergence = std::numeric_limits<double>::infinity();
    for (int k = kSteps / 8; k <= kSteps; ++k) {
      const Range r{range.lo * k / kSteps, range.hi * k / kSteps};
      const int first = std::clamp(static_cast<int>((r.lo - range.lo) / width), 0, kBins - 1);
      const int last = std::clamp(static_cast<int>(std::ceil((r.hi - range.lo) / width)) - 1, first, kBins - 1);
      const int n = last - first + 1;
      const std::vector<double> inside(counts.begin() + first, counts.begin() + last + 1);
      std::vector<double> p = inside, q(n, 0.0);
      for (int b = 0; b < first; ++b) p.front() += counts[b];
      for (int b = last + 1; b < kBins; ++b) p.back() += counts[b];
      // 0 is exact in uint8 (the zero point): its bin (ReLU's spike) keeps its count.
      const int zero = static_cast<int>(-range.lo / width) - first;
      for (int g = 0; g < kLevels; ++g) {
        const int begin = static_cast<int>(int64_t{g} * n / kLevels), end = static_cast<int>(int64_t{g + 1} * n / kLevels);
        double sum = 0;
        int nonzero = 0;
        for (int i = begin; i < end; ++i) {
          if (i == zero) continue;
          sum += inside[i];
          nonzero += p[i] > 0;
        }
        for (int i = begin; i < end; ++i) q[i] = i == zero ? inside[i] : p[i] > 0 ? sum / nonzero : 0;
      }
      double p_total = 0, q_total = 0, divergence = 0;
      for (int i = 0; i < n; ++i) {
        p_total += p[i];
        q_total += q[i];
      }
      for (int i = 0; i < n && p_total > 0 && q_total > 0; ++i) {
        // An outlier bin that Q left empty: smoothed, as TensorRT does.
        if (p[i] > 0) divergence += p[i] / p_total * std::log((p[i] / p_total) / std::max(q[i] / q_total, 1e-12));
      }
      if (divergence < best_divergence) {
        best_divergence = divergence;
        best = r;
      }
    }
    return best;
  }

  // Of the ranges [lo * i / kSteps, hi * j / kSteps], the one whose uint8
  // quantization has the least squared error over the histogram: values
  // outside are clipped, values inside are off by a uniform rounding error.
  Range LeastSquareError() const {
    constexpr int kSteps = 64;
    const float width = (range.hi - range.lo) / kBins;
    Range best = range;
    double best_error = std::numeric_limits<double>::infinity();
    for (int i = range.lo < 0 ? 1 : kSteps; i <= kSteps; ++i) {
      for (int j = range.hi > 0 ? 1 : kSteps; j <= kSteps; ++j) {
        const Range r{range.lo * i / kSteps, range.hi * j / kSteps};
        const double step = (r.hi - r.lo) / 255.0;
        double error = 0;
        for (int b = 0; b < kBins; ++b) {
          if (counts[b] == 0) continue;
          const double v = range.lo + (b + 0.5) * width;
          const double off = v < r.lo ? r.lo - v : v > r.hi ? v - r.hi : 0;
          error += counts[b] * (off > 0 ? off * off : step * step / 12);
        }
        if (error < best_error) {
          best_error = error;
          best = r;
        }
      }
    }
    return best;
  }
};

// The range of each of `values` over the calibration batches (a second
// pass for clipped ranges: the first finds the span of the histograms).
absl::StatusOr<std::map<std::string, Range>> Calibrate(const Graph& graph, const std::vector<std::string>& values,
                                                       absl::Span<const std::vector<Tensor>> batches,
                                                       const QuantizeOptions& options, int64_t& rows) {
  const double passes = options.calibration == Calibration::kMinMax ? 1 : 2;
  auto share = [&](int pass) { return Part(options.progress, pass / passes, (pass + 1) / passes); };
  std::map<std::string, Range> ranges;
  RETURN_IF_ERROR(VisitValues(
      graph, values, batches, options.num_threads, [&](size_t i, const Tensor& t) { ranges[values[i]].Add(t); },
      share(0)));
  for (const std::vector<Tensor>& batch : batches) {
    if (!batch.empty() && batch[0].rank() > 0) rows += batch[0].shape()[0];
  }
  if (options.calibration != Calibration::kMinMax) {
    std::map<std::string, Histogram> histograms;
    for (const auto& [v, r] : ranges) histograms[v].range = r;
    RETURN_IF_ERROR(VisitValues(
        graph, values, batches, options.num_threads, [&](size_t i, const Tensor& t) { histograms[values[i]].Add(t); },
        share(1)));
    for (auto& [v, r] : ranges) {
      const Histogram& h = histograms[v];
      switch (options.calibration) {
        case Calibration::kPercentile: r = h.Clipped(options.percentile); break;
        case Calibration::kMse: r = h.LeastSquareError(); break;
        case Calibration::kEntropy: r = h.LeastDivergence(); break;
        case Calibration::kMinMax: break;
      }
    }
  }
  return ranges;
}

// Adds an initializer under a name not yet taken, and returns that name.
std::string AddConstant(Graph& graph, const std::string& base, Tensor value) {
  std::string name = base;
  for (int k = 1; graph.initializers.count(name); ++k) name = absl::StrCat(base, "_", k);
  graph.initializers[name] = std::move(value);
  return name;
}

Node MakeNode(const std::string& op, const std::string& name, std::vector<std::string> inputs,
              std::vector<std::string> outputs) {
  Node n;
  n.op_type = op;
  n.name = name;
  n.inputs = std::move(inputs);
  n.outputs = std::move(outputs);
  return n;
}

Node CastNode(const std::string& in, const std::string& out, DataType to) {
  Node n = MakeNode("Cast", out + "_cast", {in}, {out});
  n.attributes["to"].i = static_cast<int64_t>(to);
  return n;
}

// Round to nearest even; the values stay finite (weights are).
Tensor ToBf16(const Tensor& w) {
  Tensor out = *Tensor::Allocate(DataType::kBFloat16, w.shape());
  for (int64_t i = 0; i < w.num_elements(); ++i) {
    uint32_t bits;
    std::memcpy(&bits, w.data<float>() + i, 4);
    out.data<uint16_t>()[i] = static_cast<uint16_t>((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
  }
  return out;
}

// The residual Adds of ResNet-style blocks: Add(y, r) where y is the output
// of a quantized Conv that nothing else reads and r another activation. For
// each, by node index, the input index of r. Its addend r gets a Q/DQ pair
// too (as ONNX Runtime's QDQ quantizer puts on Add inputs), shared with the
// convolutions that read r: int8 kernels then take the whole block in int8,
// the residual sum included, instead of leaving the skip path in float.
std::map<size_t, int> ResidualAddends(const Graph& graph, const std::vector<Target>& targets) {
  std::map<std::string, size_t> conv_outputs;  // output of a quantized Conv -> its node
  for (const Target& t : targets) {
    const Node& n = graph.nodes[t.node];
    if (n.op_type == "Conv" && !n.outputs.empty()) conv_outputs[n.outputs[0]] = t.node;
  }
  const auto uses = graph.UseCounts();
  std::map<size_t, int> residuals;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& add = graph.nodes[i];
    if (add.op_type != "Add" || !add.domain.empty() || add.inputs.size() != 2) continue;
    if (runtime::FindConstant(graph, add.inputs[0]) != nullptr || runtime::FindConstant(graph, add.inputs[1]) != nullptr) continue;
    if (add.inputs[0] == add.inputs[1]) continue;
    // As the runtime's residual fusion picks it: the first input that is a
    // single-use Conv output is the convolution's own; the other is the addend.
    for (int k = 0; k < 2; ++k) {
      const std::string& y = add.inputs[k];
      if (conv_outputs.count(y) && uses.at(y) == 1) {
        residuals[i] = 1 - k;
        break;
      }
    }
  }
  return residuals;
}

}  // namespace

absl::StatusOr<QuantizeReport> Quantize(Graph& graph, const QuantizeOptions& options,
                                        absl::Span<const std::vector<Tensor>> calibration) {
  QuantizeReport report;
  std::vector<Target> targets;
  std::vector<std::string> activations;  // distinct activation inputs of the targets
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Target target;
    const std::string why = Check(graph, i, options, target);
    if (why == "-") continue;
    if (!why.empty()) {
      report.kept_fp32.push_back(absl::StrCat(graph.nodes[i].Describe(), ": ", why));
      continue;
    }
    targets.push_back(target);
    const std::string& x = graph.nodes[i].inputs[0];
    if (std::find(activations.begin(), activations.end(), x) == activations.end()) activations.push_back(x);
  }
  if (targets.empty()) {
    return absl::FailedPreconditionError(
        "the model has no Conv, Gemm or MatMul with constant float weights to quantize");
  }
  const std::map<size_t, int> residuals =
      options.precision == Precision::kInt8Static ? ResidualAddends(graph, targets) : std::map<size_t, int>{};
  for (const auto& [add, k] : residuals) {
    const std::string& x = graph.nodes[add].inputs[k];
    if (std::find(activations.begin(), activations.end(), x) == activations.end()) activations.push_back(x);
  }
  std::map<std::string, Range> ranges;
  if (options.precision == Precision::kInt8Static) {
    if (calibration.empty()) return absl::InvalidArgumentError("static quantization needs calibration data");
    ASSIGN_OR_RETURN(ranges, Calibrate(graph, activations, calibration, options, report.calibration_rows));
  }

  // Rebuild the node list with the Q/DQ nodes in front of their first reader.
  absl::flat_hash_map<std::string, std::string> dequantized;  // activation or weights -> DQ output
  std::vector<Node> nodes;
  size_t next = 0;
  // Puts the Q/DQ pair of activation x in front of its first reader.
  auto dequantize_activation = [&](const std::string& x) {
    if (dequantized.count(x)) return;
    const std::string q = x + "_quantized", dq = x + "_dequantized";
    if (options.precision == Precision::kBf16) {
      nodes.push_back(CastNode(x, q, DataType::kBFloat16));
      nodes.push_back(CastNode(q, dq, DataType::kFloat32));
    } else if (options.precision == Precision::kInt8Dynamic) {
      const std::string scale = x + "_scale", zero = x + "_zero_point";
      nodes.push_back(MakeNode("DynamicQuantizeLinear", x + "_quantize", {x}, {q, scale, zero}));
      nodes.push_back(MakeNode("DequantizeLinear", x + "_dequantize", {q, scale, zero}, {dq}));
    } else {
      // 256 levels over [lo, hi] (which includes 0, so 0 stays exact).
      const Range r = ranges[x];
      const float s = r.hi > r.lo ? (r.hi - r.lo) / 255.0f : 1.0f;
      const float lowest = options.s8_activations ? -128.0f : 0.0f;
      const float zero_point = std::clamp(std::nearbyint(lowest - r.lo / s), lowest, lowest + 255.0f);
      const std::string scale = AddConstant(graph, x + "_scale", Tensor::FromVector<float>({}, {s}));
      const std::string zero = AddConstant(
          graph, x + "_zero_point",
          options.s8_activations ? Tensor::FromVector<int8_t>({}, {static_cast<int8_t>(zero_point)})
                                 : Tensor::FromVector<uint8_t>({}, {static_cast<uint8_t>(zero_point)}));
      nodes.push_back(MakeNode("QuantizeLinear", x + "_quantize", {x, scale, zero}, {q}));
      nodes.push_back(MakeNode("DequantizeLinear", x + "_dequantize", {q, scale, zero}, {dq}));
    }
    dequantized[x] = dq;
  };
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node node = std::move(graph.nodes[i]);
    if (auto residual = residuals.find(i); residual != residuals.end()) {
      std::string& addend = node.inputs[residual->second];
      dequantize_activation(addend);
      addend = dequantized[addend];
    }
    if (next >= targets.size() || targets[next].node != i) {
      nodes.push_back(std::move(node));
      continue;
    }
    const Target& target = targets[next++];
    const std::string x = node.inputs[0];
    dequantize_activation(x);
    node.inputs[0] = dequantized[x];

    const std::string w = node.inputs[target.weight_input];
    if (!dequantized.count(w) && options.precision == Precision::kBf16) {
      const std::string rounded = AddConstant(graph, w + "_bf16", ToBf16(graph.initializers.at(w)));
      nodes.push_back(CastNode(rounded, w + "_dequantized", DataType::kFloat32));
      dequantized[w] = w + "_dequantized";
    }
    if (!dequantized.count(w)) {  // (weights may be shared)
      ASSIGN_OR_RETURN(QuantizedWeights qw, QuantizeWeights(graph.initializers.at(w), target.weight_axis));
      const std::string values = AddConstant(graph, w + "_quantized", std::move(qw.values));
      const std::string scales = AddConstant(graph, w + "_scale", std::move(qw.scales));
      const std::string zeros = AddConstant(graph, w + "_zero_point", std::move(qw.zero_points));
      Node dq = MakeNode("DequantizeLinear", w + "_dequantize", {values, scales, zeros}, {w + "_dequantized"});
      dq.attributes["axis"].i = target.weight_axis;
      nodes.push_back(std::move(dq));
      dequantized[w] = w + "_dequantized";
    }
    node.inputs[target.weight_input] = dequantized[w];
    report.quantized.push_back(node.Describe());
    nodes.push_back(std::move(node));
  }
  graph.nodes = std::move(nodes);
  // Float weights that only the quantized nodes read are gone now.
  const auto uses = graph.UseCounts();
  for (auto it = graph.initializers.begin(); it != graph.initializers.end();) {
    auto current = it++;
    if (!uses.contains(current->first)) graph.initializers.erase(current);
  }
  RETURN_IF_ERROR(graph.Validate());
  return report;
}

}  // namespace slimserve::compression
