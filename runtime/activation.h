// Activations that can be fused into a preceding Conv, Gemm or MatMul as a
// post-op, described once here for the fusion pass, the reference fused
// kernels and the backends.
#ifndef SLIMSERVE_RUNTIME_ACTIVATION_H_
#define SLIMSERVE_RUNTIME_ACTIVATION_H_

#include <cmath>
#include <functional>
#include <optional>
#include <string>

#include "runtime/graph.h"

namespace slimserve::runtime {

// Domain of the runtime's own fused operators (FusedConv, FusedGemm, FusedMatMul).
inline constexpr char kFusedDomain[] = "slimserve";

struct Activation {
  enum class Kind { kNone, kRelu, kLeakyRelu, kClip, kHardSwish, kHardSigmoid, kSigmoid, kTanh };
  Kind kind = Kind::kNone;
  float alpha = 0;  // LeakyRelu slope, Clip min, HardSigmoid alpha
  float beta = 0;   // Clip max, HardSigmoid beta
  // Then scale * f(x) + shift: the per-tensor affine some models put after
  // every activation (PaddleOCR's "learnable affine blocks").
  float scale = 1;
  float shift = 0;

  bool HasAffine() const { return scale != 1 || shift != 0; }

  float Apply(float x) const { return scale * Function(x) + shift; }

  float Function(float x) const {
    switch (kind) {
      case Kind::kNone: return x;
      case Kind::kRelu: return x > 0 ? x : 0;
      case Kind::kLeakyRelu: return x >= 0 ? x : alpha * x;
      case Kind::kClip: return x < alpha ? alpha : (x > beta ? beta : x);
      case Kind::kHardSwish: return x * std::fmax(0.0f, std::fmin(1.0f, x / 6.0f + 0.5f));
      case Kind::kHardSigmoid: return std::fmax(0.0f, std::fmin(1.0f, alpha * x + beta));
      case Kind::kSigmoid: return 1.0f / (1.0f + std::exp(-x));
      case Kind::kTanh: return std::tanh(x);
    }
    return x;
  }
};

// The activation a node computes, if it is one of the fusable kinds and its
// parameters are known. `constant(i)` returns input i's value or null.
std::optional<Activation> ActivationOf(const Node& node, int64_t opset,
                                       const std::function<const Tensor*(size_t)>& constant);

// Writes `activation` into a fused node's attributes, and reads it back.
void SetFusedActivation(const Activation& activation, Node& fused);
Activation FusedActivation(const Node& fused);

}  // namespace slimserve::runtime

#endif  // SLIMSERVE_RUNTIME_ACTIVATION_H_
