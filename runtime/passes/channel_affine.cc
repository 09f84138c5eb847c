// Folds per-channel linear ops into the Conv, ConvTranspose or Gemm that feeds
// them: inference BatchNormalization, y = (x - mean) * scale / sqrt(var + eps)
// + bias, and a Mul or Add by a per-channel (or single) constant are each
// y = factor[c] * x + shift[c], so they become a rescale of the weights'
// output channels and a new bias.
#include <cmath>
#include <optional>

#include "absl/strings/str_cat.h"
#include "runtime/passes/graph_util.h"
#include "runtime/passes/passes.h"

namespace slimserve::runtime {
namespace {

bool IsFloatConstant(const Tensor* t, int64_t n) {
  return t != nullptr && t->dtype() == DataType::kFloat32 && t->num_elements() == n;
}

// A Conv, ConvTranspose or Gemm whose output channels are one axis of a
// constant weight, with an optional constant bias.
struct Producer {
  Node* node = nullptr;
  const Tensor* weights = nullptr;
  const Tensor* bias = nullptr;  // null when absent
  int axis = 0;                  // output channels' axis in the weights
  int64_t channels = 0;
  int64_t output_rank = 0;
};

std::optional<Producer> FoldTarget(Graph& graph, const GraphIndex& index, const std::string& value) {
  const int p = index.Producer(value);
  if (p < 0 || !index.SingleUse(value)) return std::nullopt;
  Producer out;
  out.node = &graph.nodes[p];
  const Node& n = *out.node;
  if (!n.domain.empty()) return std::nullopt;
  if (n.op_type == "Gemm") {
    if (n.GetInt("transB", 0) != 1 || n.GetInt("transA", 0) != 0 || n.GetFloat("alpha", 1) != 1 ||
        n.GetFloat("beta", 1) != 1) {
      return std::nullopt;
    }
  } else if (n.op_type == "ConvTranspose") {
    if (n.GetInt("group", 1) != 1) return std::nullopt;  // [Cin, Cout/group, k...]
    out.axis = 1;
  } else if (n.op_type != "Conv") {
    return std::nullopt;
  }
  out.weights = index.Constant(n.inputs[1]);
  if (out.weights == nullptr || out.weights->dtype() != DataType::kFloat32 || out.weights->rank() < 2) {
    return std::nullopt;
  }
  out.channels = out.weights->dim(out.axis);
  out.output_rank = n.op_type == "Gemm" ? 2 : out.weights->rank();
  if (n.HasInput(2)) {
    out.bias = index.Constant(n.inputs[2]);
    if (!IsFloatConstant(out.bias, out.channels)) return std::nullopt;
  }
  return out;
}

// The values of `t` per output channel, when `t` broadcasts against the
// output only along the channel axis (axis 1), or is a single value.
std::optional<std::vector<float>> PerChannel(const Tensor* t, const Producer& p) {
  if (t == nullptr || t->dtype() != DataType::kFloat32) return std::nullopt;
  if (t->num_elements() == 1) return std::vector<float>(p.channels, t->data<float>()[0]);
  if (t->num_elements() != p.channels || t->rank() > p.output_rank) return std::nullopt;
  const int64_t offset = p.output_rank - t->rank();
  for (int64_t d = 0; d < t->rank(); ++d) {
    if (offset + d != 1 && t->dim(d) != 1) return std::nullopt;
  }
  return std::vector<float>(t->data<float>(), t->data<float>() + p.channels);
}

// Makes `p` compute factor[c] * y + shift[c] and write `output`.
void Fold(Graph& graph, const Producer& p, const std::vector<float>& factor,
          const std::vector<float>& shift, const std::string& output) {
  Tensor weights = p.weights->Clone();
  const int64_t outer = NumElementsUnchecked(Shape(weights.shape().begin(), weights.shape().begin() + p.axis));
  const int64_t inner = weights.num_elements() / (outer * p.channels);
  float* w = weights.data<float>();
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t c = 0; c < p.channels; ++c) {
      for (int64_t j = 0; j < inner; ++j) w[(o * p.channels + c) * inner + j] *= factor[c];
    }
  }
  Tensor bias = Tensor::Allocate(DataType::kFloat32, {p.channels}).value();
  for (int64_t c = 0; c < p.channels; ++c) {
    const float b0 = p.bias != nullptr ? p.bias->data<float>()[c] : 0.0f;
    bias.data<float>()[c] = b0 * factor[c] + shift[c];
  }
  Node& node = *p.node;
  const std::string base = node.name.empty() ? output : node.name;
  const std::string w_name = UniqueName(graph, absl::StrCat(base, "_folded_weight"));
  graph.initializers[w_name] = std::move(weights);
  const std::string b_name = UniqueName(graph, absl::StrCat(base, "_folded_bias"));
  graph.initializers[b_name] = std::move(bias);
  node.inputs.resize(3);
  node.inputs[1] = w_name;
  node.inputs[2] = b_name;
  node.outputs[0] = output;
}

// BatchNormalization as factor and shift per channel.
bool FoldBatchNormNode(Graph& graph, const GraphIndex& index, const Node& bn) {
  if (bn.inputs.size() != 5 || bn.GetInt("training_mode", 0) != 0 || graph.opset < 7) return false;
  if (bn.outputs.size() > 1 && !bn.outputs[1].empty()) return false;
  const std::optional<Producer> p = FoldTarget(graph, index, bn.inputs[0]);
  if (!p.has_value()) return false;
  const int64_t channels = p->channels;
  const Tensor* scale = index.Constant(bn.inputs[1]);
  const Tensor* shift = index.Constant(bn.inputs[2]);
  const Tensor* mean = index.Constant(bn.inputs[3]);
  const Tensor* var = index.Constant(bn.inputs[4]);
  if (!IsFloatConstant(scale, channels) || !IsFloatConstant(shift, channels) ||
      !IsFloatConstant(mean, channels) || !IsFloatConstant(var, channels)) {
    return false;
  }
  const float eps = bn.GetFloat("epsilon", 1e-5f);
  std::vector<float> factor(channels), offset(channels);
  for (int64_t c = 0; c < channels; ++c) {
    factor[c] = scale->data<float>()[c] / std::sqrt(var->data<float>()[c] + eps);
    offset[c] = shift->data<float>()[c] - mean->data<float>()[c] * factor[c];
  }
  Fold(graph, *p, factor, offset, bn.outputs[0]);
  return true;
}

// Mul or Add with a per-channel constant on either side.
bool FoldMulAddNode(Graph& graph, const GraphIndex& index, const Node& node) {
  if (node.inputs.size() != 2) return false;
  for (int k = 0; k < 2; ++k) {
    const std::optional<Producer> p = FoldTarget(graph, index, node.inputs[k]);
    if (!p.has_value()) continue;
    const std::optional<std::vector<float>> values = PerChannel(index.Constant(node.inputs[1 - k]), *p);
    if (!values.has_value()) continue;
    if (node.op_type == "Mul") {
      Fold(graph, *p, *values, std::vector<float>(p->channels, 0.0f), node.outputs[0]);
    } else {
      Fold(graph, *p, std::vector<float>(p->channels, 1.0f), *values, node.outputs[0]);
    }
    return true;
  }
  return false;
}

}  // namespace

absl::Status FoldChannelAffine(Graph& graph) {
  std::vector<bool> dead(graph.nodes.size(), false);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& node = graph.nodes[i];
    if (!node.domain.empty()) continue;
    GraphIndex index(graph);
    if (node.op_type == "BatchNormalization") {
      dead[i] = FoldBatchNormNode(graph, index, node);
    } else if (node.op_type == "Mul" || node.op_type == "Add") {
      dead[i] = FoldMulAddNode(graph, index, node);
    }
    // Its output is the producer's now: out of the index before the next lookup.
    if (dead[i]) graph.nodes[i].outputs.clear();
  }
  RemoveNodes(graph, dead);
  return absl::OkStatus();
}

}  // namespace slimserve::runtime
