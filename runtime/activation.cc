#include "runtime/activation.h"

#include <limits>

namespace slimserve::runtime {
namespace {

struct Named {
  const char* name;
  Activation::Kind kind;
};
constexpr Named kNames[] = {
    {"Relu", Activation::Kind::kRelu},           {"LeakyRelu", Activation::Kind::kLeakyRelu},
    {"Clip", Activation::Kind::kClip},           {"HardSwish", Activation::Kind::kHardSwish},
    {"HardSigmoid", Activation::Kind::kHardSigmoid}, {"Sigmoid", Activation::Kind::kSigmoid},
    {"Tanh", Activation::Kind::kTanh},
};

}  // namespace

std::optional<Activation> ActivationOf(const Node& node, int64_t opset,
                                       const std::function<const Tensor*(size_t)>& constant) {
  if (!node.domain.empty() || node.outputs.size() != 1) return std::nullopt;
  Activation a;
  for (const Named& n : kNames) {
    if (node.op_type == n.name) a.kind = n.kind;
  }
  switch (a.kind) {
    case Activation::Kind::kNone:
      return std::nullopt;
    case Activation::Kind::kLeakyRelu:
      a.alpha = node.GetFloat("alpha", 0.01f);
      break;
    case Activation::Kind::kHardSigmoid:
      a.alpha = node.GetFloat("alpha", 0.2f);
      a.beta = node.GetFloat("beta", 0.5f);
      break;
    case Activation::Kind::kClip:
      a.alpha = -std::numeric_limits<float>::infinity();
      a.beta = std::numeric_limits<float>::infinity();
      if (opset < 11) {
        a.alpha = node.GetFloat("min", a.alpha);
        a.beta = node.GetFloat("max", a.beta);
        break;
      }
      for (size_t i : {1, 2}) {
        if (!node.HasInput(i)) continue;
        const Tensor* t = constant(i);
        if (t == nullptr || t->dtype() != DataType::kFloat32 || t->num_elements() != 1) {
          return std::nullopt;
        }
        (i == 1 ? a.alpha : a.beta) = t->data<float>()[0];
      }
      break;
    default:
      break;
  }
  return a;
}

void SetFusedActivation(const Activation& activation, Node& fused) {
  for (const Named& n : kNames) {
    if (n.kind == activation.kind) fused.attributes["activation"].s = n.name;
  }
  fused.attributes["activation"].type = Attribute::Type::kString;
  fused.attributes["activation_alpha"].type = Attribute::Type::kFloat;
  fused.attributes["activation_alpha"].f = activation.alpha;
  fused.attributes["activation_beta"].type = Attribute::Type::kFloat;
  fused.attributes["activation_beta"].f = activation.beta;
  fused.attributes["activation_scale"].type = Attribute::Type::kFloat;
  fused.attributes["activation_scale"].f = activation.scale;
  fused.attributes["activation_shift"].type = Attribute::Type::kFloat;
  fused.attributes["activation_shift"].f = activation.shift;
}

Activation FusedActivation(const Node& fused) {
  Activation a;
  const std::string name = fused.GetString("activation", "");
  for (const Named& n : kNames) {
    if (name == n.name) a.kind = n.kind;
  }
  a.alpha = fused.GetFloat("activation_alpha", 0);
  a.beta = fused.GetFloat("activation_beta", 0);
  a.scale = fused.GetFloat("activation_scale", 1);
  a.shift = fused.GetFloat("activation_shift", 0);
  return a;
}

}  // namespace slimserve::runtime
