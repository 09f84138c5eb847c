// Folds inference BatchNormalization into the Conv or Gemm that feeds it:
// y = (x - mean) * scale / sqrt(var + eps) + bias is linear per channel, so
// it becomes a per-output-channel rescale of the weights and a new bias.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "runtime/passes/graph_util.h"
#include "runtime/passes/passes.h"

namespace slimserve::runtime {
namespace {

bool IsFloatConstant(const Tensor* t, int64_t n) {
  return t != nullptr && t->dtype() == DataType::kFloat32 && t->num_elements() == n;
}

// Rescales channel `o` of `weights` by `factor[o]`: the channel is the first
// axis for Conv (O, I, k...) and for Gemm with transB (N, K).
Tensor ScaleRows(const Tensor& weights, const std::vector<float>& factor) {
  Tensor out = weights.Clone();
  const int64_t rows = out.dim(0);
  const int64_t per_row = out.num_elements() / rows;
  for (int64_t o = 0; o < rows; ++o) {
    for (int64_t j = 0; j < per_row; ++j) out.data<float>()[o * per_row + j] *= factor[o];
  }
  return out;
}

}  // namespace

absl::Status FoldBatchNorm(Graph& graph) {
  std::vector<bool> dead(graph.nodes.size(), false);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& bn = graph.nodes[i];
    if (bn.op_type != "BatchNormalization" || !bn.domain.empty() || graph.opset < 7) continue;
    if (bn.inputs.size() != 5 || bn.GetInt("training_mode", 0) != 0) continue;
    if (bn.outputs.size() > 1 && !bn.outputs[1].empty()) continue;
    GraphIndex index(graph);
    const int p = index.Producer(bn.inputs[0]);
    if (p < 0 || !index.SingleUse(bn.inputs[0])) continue;
    Node& producer = graph.nodes[p];
    const bool conv = producer.op_type == "Conv" && producer.domain.empty();
    const bool gemm = producer.op_type == "Gemm" && producer.domain.empty() &&
                      producer.GetInt("transB", 0) == 1 && producer.GetInt("transA", 0) == 0 &&
                      producer.GetFloat("alpha", 1) == 1 && producer.GetFloat("beta", 1) == 1;
    if (!conv && !gemm) continue;
    const Tensor* w = index.Constant(producer.inputs[1]);
    if (w == nullptr || w->dtype() != DataType::kFloat32 || w->rank() < 2) continue;
    const int64_t channels = w->dim(0);
    const Tensor* b = producer.HasInput(2) ? index.Constant(producer.inputs[2]) : nullptr;
    if (producer.HasInput(2) && !IsFloatConstant(b, channels)) continue;
    const Tensor* scale = index.Constant(bn.inputs[1]);
    const Tensor* shift = index.Constant(bn.inputs[2]);
    const Tensor* mean = index.Constant(bn.inputs[3]);
    const Tensor* var = index.Constant(bn.inputs[4]);
    if (!IsFloatConstant(scale, channels) || !IsFloatConstant(shift, channels) ||
        !IsFloatConstant(mean, channels) || !IsFloatConstant(var, channels)) {
      continue;
    }
    const float eps = bn.GetFloat("epsilon", 1e-5f);
    std::vector<float> factor(channels);
    Tensor bias = Tensor::Allocate(DataType::kFloat32, {channels}).value();
    for (int64_t o = 0; o < channels; ++o) {
      factor[o] = scale->data<float>()[o] / std::sqrt(var->data<float>()[o] + eps);
      const float b0 = b != nullptr ? b->data<float>()[o] : 0.0f;
      bias.data<float>()[o] = (b0 - mean->data<float>()[o]) * factor[o] + shift->data<float>()[o];
    }
    const std::string base = producer.name.empty() ? bn.outputs[0] : producer.name;
    const std::string w_name = UniqueName(graph, absl::StrCat(base, "_bn_weight"));
    graph.initializers[w_name] = ScaleRows(*w, factor);
    const std::string b_name = UniqueName(graph, absl::StrCat(base, "_bn_bias"));
    graph.initializers[b_name] = std::move(bias);
    producer.inputs.resize(3);
    producer.inputs[1] = w_name;
    producer.inputs[2] = b_name;
    producer.outputs[0] = bn.outputs[0];
    dead[i] = true;
  }
  RemoveNodes(graph, dead);
  return absl::OkStatus();
}

}  // namespace slimserve::runtime
