// QDQ patterns -> the runtime's int8 fused ops (QFusedConv, QFusedGemm,
// QFusedMatMul; their semantics are in reference/quantized_fused_ops.cc).
//
// ONNX int8 models in QDQ form compute every quantized op in float between
// DequantizeLinear and QuantizeLinear nodes. These passes find
//
//   DequantizeLinear(x_q) ----+
//   DequantizeLinear(w_q) -> Conv | Gemm | MatMul [-> bias, residual Add,
//                                                  activation] [-> QuantizeLinear]
//
// and turn it into one node that int8 kernels run without the float detour.
// Anything else is left as it is and runs in float, exactly as before.
#include <string>

#include "runtime/activation.h"
#include "runtime/passes/graph_util.h"
#include "runtime/passes/passes.h"

namespace slimserve::runtime {
namespace {

bool Is(const Node& node, const char* op) { return node.domain.empty() && node.op_type == op; }

const Node* ProducerIf(const Graph& graph, const GraphIndex& index, const std::string& value,
                       const char* op) {
  const int p = value.empty() ? -1 : index.Producer(value);
  return p >= 0 && Is(graph.nodes[p], op) ? &graph.nodes[p] : nullptr;
}

int64_t Axis(const Node& node, int64_t rank) {
  const int64_t axis = node.GetInt("axis", 1);
  return axis < 0 ? axis + rank : axis;
}

bool IsInt8(DataType t) { return t == DataType::kUint8 || t == DataType::kInt8; }

bool AllZero(const Tensor& t) {
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    if (t.GetInt(i) != 0) return false;
  }
  return true;
}

// For a DequantizeLinear of an activation: true when its input is 8-bit with
// a per-tensor scale and zero point (constant or computed per request).
bool IsActivationDequantize(const Graph& graph, const GraphIndex& index, const Node& dq) {
  if (dq.inputs.size() < 2) return false;
  const Tensor* scale = index.Constant(dq.inputs[1]);
  const Tensor* zero = dq.HasInput(2) ? index.Constant(dq.inputs[2]) : nullptr;
  const Node* dynamic = ProducerIf(graph, index, dq.inputs[0], "DynamicQuantizeLinear");
  if (dynamic != nullptr) return dynamic->outputs.size() == 3 && dq.inputs[1] == dynamic->outputs[1];
  if (scale == nullptr || scale->num_elements() != 1 || scale->dtype() != DataType::kFloat32) return false;
  if (zero != nullptr) return zero->num_elements() == 1 && IsInt8(zero->dtype());
  if (dq.HasInput(2)) return false;  // a zero point computed at run time
  // Without a zero point the input's type must show otherwise: a QuantizeLinear.
  const Node* q = ProducerIf(graph, index, dq.inputs[0], "QuantizeLinear");
  return q != nullptr && !q->HasInput(2);
}

// For a DequantizeLinear of constant weights: true when they are int8 with a
// zero-point-free scale per tensor or per channel along `axis`.
bool IsWeightDequantize(const GraphIndex& index, const Node& dq, int64_t axis) {
  if (dq.inputs.size() < 2) return false;
  const Tensor* w = index.Constant(dq.inputs[0]);
  const Tensor* scale = index.Constant(dq.inputs[1]);
  if (w == nullptr || scale == nullptr || w->dtype() != DataType::kInt8) return false;
  if (scale->dtype() != DataType::kFloat32 || axis >= w->rank()) return false;
  if (dq.HasInput(2)) {
    const Tensor* zero = index.Constant(dq.inputs[2]);
    if (zero == nullptr || !AllZero(*zero)) return false;
  }
  if (scale->num_elements() == 1) return true;
  return scale->rank() == 1 && Axis(dq, w->rank()) == axis && scale->dim(0) == w->dim(axis);
}

Attribute IntAttribute(int64_t value) {
  Attribute a;
  a.type = Attribute::Type::kInt;
  a.i = value;
  return a;
}

Attribute FloatAttribute(float value) {
  Attribute a;
  a.type = Attribute::Type::kFloat;
  a.f = value;
  return a;
}

// The weights' output-channel axis for a Conv, Gemm or MatMul, or -1 when
// the node is not one this pass quantizes.
int64_t WeightAxis(const Node& node) {
  if (Is(node, "Conv")) return 0;
  if (Is(node, "MatMul")) return 1;
  if (Is(node, "Gemm") && node.GetInt("transA", 0) == 0) return node.GetInt("transB", 0) != 0 ? 0 : 1;
  return -1;
}

bool IsQuantizedFused(const Node& node) {
  return node.domain == kFusedDomain &&
         (node.op_type == "QFusedConv" || node.op_type == "QFusedGemm" || node.op_type == "QFusedMatMul");
}

// For a QFusedConv whose Sum addend (input 6) is DequantizeLinear(a) with a
// constant per-tensor scale and zero point, `a` of type `type`: reads `a`
// instead, its scale and zero point in attributes sum_scale and
// sum_zero_point. False (and no change) otherwise.
bool TakeInt8Addend(const Graph& graph, const GraphIndex& index, DataType type, Node& conv) {
  const Node* dq = ProducerIf(graph, index, conv.inputs[6], "DequantizeLinear");
  if (dq == nullptr || !dq->HasInput(2)) return false;
  const Tensor* scale = index.Constant(dq->inputs[1]);
  const Tensor* zero = index.Constant(dq->inputs[2]);
  if (scale == nullptr || zero == nullptr || scale->num_elements() != 1 || zero->num_elements() != 1)
    return false;
  if (scale->dtype() != DataType::kFloat32 || zero->dtype() != type) return false;
  conv.attributes["sum_scale"] = FloatAttribute(scale->data<float>()[0]);
  conv.attributes["sum_zero_point"] = IntAttribute(zero->GetInt(0));
  conv.inputs[6] = dq->inputs[0];
  return true;
}

}  // namespace

void FuseQuantizedInputs(Graph& graph) {
  GraphIndex index(graph);
  for (Node& node : graph.nodes) {
    const int64_t axis = WeightAxis(node);
    if (axis < 0 || node.inputs.size() < 2) continue;
    const Node* x = ProducerIf(graph, index, node.inputs[0], "DequantizeLinear");
    const Node* w = ProducerIf(graph, index, node.inputs[1], "DequantizeLinear");
    if (x == nullptr || w == nullptr || !IsActivationDequantize(graph, index, *x)) continue;
    if (!IsWeightDequantize(index, *w, axis)) continue;
    // Scales computed per request: the int8 kernels take them for matrix
    // products only; convolutions keep today's float path.
    if (Is(node, "Conv") && index.Constant(x->inputs[1]) == nullptr) continue;
    const Tensor& weights = *index.Constant(w->inputs[0]);
    if (!Is(node, "Conv") && weights.rank() != 2) continue;
    Node q = node;
    q.op_type = "QFused" + node.op_type;
    q.domain = kFusedDomain;
    q.inputs = {x->inputs[0], x->inputs[1], x->HasInput(2) ? x->inputs[2] : "", w->inputs[0], w->inputs[1]};
    if (node.HasInput(2)) q.inputs.push_back(node.inputs[2]);  // bias: float, or a DequantizeLinear
    q.attributes["w_axis"] = IntAttribute(axis);
    node = std::move(q);
  }
  // The DequantizeLinear nodes nothing reads any more go with the dead nodes.
}

void FuseQuantizedOutputs(Graph& graph) {
  // QuantizeLinear(MaxPool(v)) = MaxPool(QuantizeLinear(v)): rounding is
  // monotonic. Quantizing first lets v's producer write int8 and the pooling
  // read a quarter of the bytes.
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    GraphIndex index(graph);
    Node& quantize = graph.nodes[i];
    if (!Is(quantize, "QuantizeLinear") || quantize.inputs.size() < 2) continue;
    const int p = index.Producer(quantize.inputs[0]);
    if (p < 0 || !Is(graph.nodes[p], "MaxPool") || !index.SingleUse(quantize.inputs[0])) continue;
    Node& pool = graph.nodes[p];
    if (pool.outputs.size() > 1 && !pool.outputs[1].empty()) continue;
    const Tensor* scale = index.Constant(quantize.inputs[1]);
    if (scale == nullptr || scale->num_elements() != 1) continue;
    if (quantize.HasInput(2) && index.Constant(quantize.inputs[2]) == nullptr) continue;
    // The pool takes the Q's place (after it in the order) and the Q the pool's.
    const std::string pooled = quantize.outputs[0];
    const std::string source = pool.inputs[0];
    const std::string quantized = UniqueName(graph, source + "_quantized");
    quantize.inputs[0] = source;
    quantize.outputs[0] = quantized;
    pool.inputs[0] = quantized;
    pool.outputs[0] = pooled;
    std::swap(quantize, pool);
  }
  std::vector<bool> dead(graph.nodes.size(), false);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& node = graph.nodes[i];
    if (!IsQuantizedFused(node) || node.Has("y_scale")) continue;
    GraphIndex index(graph);
    if (!index.SingleUse(node.outputs[0])) continue;
    int reader = -1;
    for (size_t k = i + 1; k < graph.nodes.size() && reader < 0; ++k) {
      for (const std::string& in : graph.nodes[k].inputs) {
        if (in == node.outputs[0]) reader = static_cast<int>(k);
      }
    }
    if (reader < 0) continue;
    const Node& q = graph.nodes[reader];
    if (!Is(q, "QuantizeLinear") || q.inputs[0] != node.outputs[0] || q.inputs.size() < 2) continue;
    const Tensor* scale = index.Constant(q.inputs[1]);
    const Tensor* zero = q.HasInput(2) ? index.Constant(q.inputs[2]) : nullptr;
    if (scale == nullptr || scale->num_elements() != 1 || scale->dtype() != DataType::kFloat32) continue;
    if (q.HasInput(2) && (zero == nullptr || zero->num_elements() != 1 || !IsInt8(zero->dtype()))) continue;
    if (!(scale->data<float>()[0] > 0)) continue;
    const DataType y_type = zero != nullptr ? zero->dtype() : DataType::kUint8;
    // A residual addend must come in as int8 of the output's type, from a
    // DequantizeLinear, for the requantized output to take it.
    if (node.op_type == "QFusedConv" && node.HasInput(6) && !TakeInt8Addend(graph, index, y_type, node))
      continue;
    node.attributes["y_scale"] = FloatAttribute(scale->data<float>()[0]);
    node.attributes["y_zero_point"] = IntAttribute(zero != nullptr ? zero->GetInt(0) : 0);
    node.attributes["y_type"] = IntAttribute(static_cast<int64_t>(y_type));
    // The fused node moves to the Q's place: its other inputs exist by then.
    Node fused = std::move(node);
    fused.outputs[0] = q.outputs[0];
    graph.nodes[reader] = std::move(fused);
    dead[i] = true;
  }
  RemoveNodes(graph, dead);
}

}  // namespace slimserve::runtime
