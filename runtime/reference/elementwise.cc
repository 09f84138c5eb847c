// Elementwise ONNX operators: unary math and activations, broadcasting binary
// and variadic ops, comparisons and logic, Where, Cast, Identity, Dropout.
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>

#include "runtime/reference/common.h"
#include "runtime/reference/op_registry.h"
#include "runtime/status_macros.h"

namespace slimserve::runtime::reference {
namespace {

// ---- Shape inference -------------------------------------------------------

absl::Status InferSameAsInput0(InferContext& c) {
  if (!c.input(0).defined()) return c.Error("missing input 0");
  c.SetOutput(0, c.input(0).dtype, c.input(0).shape);
  return absl::OkStatus();
}

absl::Status BroadcastAll(InferContext& c, Shape* out) {
  *out = {};
  for (size_t i = 0; i < c.num_inputs(); ++i) {
    if (!c.input(i).defined()) continue;
    absl::StatusOr<Shape> s = BroadcastShapes(*out, c.input(i).shape);
    if (!s.ok()) return c.Error(s.status().message());
    *out = *std::move(s);
  }
  return absl::OkStatus();
}

absl::Status CheckSameTypes(InferContext& c, size_t first, size_t last) {
  for (size_t i = first + 1; i < last && i < c.num_inputs(); ++i) {
    if (c.input(i).defined() && c.input(i).dtype != c.input(first).dtype) {
      return c.Error(absl::StrCat("input ", i, " has type ", DataTypeName(c.input(i).dtype),
                                  " but input ", first, " has ",
                                  DataTypeName(c.input(first).dtype)));
    }
  }
  return absl::OkStatus();
}

absl::Status InferBroadcast(InferContext& c) {
  RETURN_IF_ERROR(CheckSameTypes(c, 0, c.num_inputs()));
  Shape out;
  RETURN_IF_ERROR(BroadcastAll(c, &out));
  c.SetOutput(0, c.input(0).dtype, out);
  return absl::OkStatus();
}

absl::Status InferComparison(InferContext& c) {
  RETURN_IF_ERROR(CheckSameTypes(c, 0, 2));
  Shape out;
  RETURN_IF_ERROR(BroadcastAll(c, &out));
  c.SetOutput(0, DataType::kBool, out);
  return absl::OkStatus();
}

// Pow: the output has input 0's type and the broadcast shape.
absl::Status InferBroadcastAsInput0(InferContext& c) {
  Shape out;
  RETURN_IF_ERROR(BroadcastAll(c, &out));
  c.SetOutput(0, c.input(0).dtype, out);
  return absl::OkStatus();
}

// ---- Unary -----------------------------------------------------------------

template <typename T, typename F>
void MapUnary(const Tensor& in, Tensor& out, F f) {
  const T* x = in.data<T>();
  T* y = out.data<T>();
  const int64_t n = in.num_elements();
#pragma omp parallel for if (n > 65536) schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

// A float op given as a function of (x, node attributes).
template <typename Fn>
absl::Status FloatUnary(ComputeContext& c, Fn fn) {
  return VisitFloat(c.input(0).dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    MapUnary<T>(c.input(0), c.outputs[0], [&](T x) { return static_cast<T>(fn(double{x})); });
    return absl::OkStatus();
  });
}

#define FLOAT_UNARY(NAME, EXPR)                                        \
  absl::Status NAME(ComputeContext& c) {                               \
    return FloatUnary(c, [](double x) { return EXPR; });               \
  }

FLOAT_UNARY(Sigmoid, 1.0 / (1.0 + std::exp(-x)))
FLOAT_UNARY(Tanh, std::tanh(x))
FLOAT_UNARY(Exp, std::exp(x))
FLOAT_UNARY(Log, std::log(x))
FLOAT_UNARY(Sqrt, std::sqrt(x))
FLOAT_UNARY(Reciprocal, 1.0 / x)
FLOAT_UNARY(Floor, std::floor(x))
FLOAT_UNARY(Ceil, std::ceil(x))
FLOAT_UNARY(Round, std::nearbyint(x))
FLOAT_UNARY(Erf, std::erf(x))
FLOAT_UNARY(Softplus, x > 20 ? x : std::log1p(std::exp(x)))
FLOAT_UNARY(Softsign, x / (1.0 + std::fabs(x)))
FLOAT_UNARY(HardSwish, x * std::max(0.0, std::min(1.0, x / 6.0 + 0.5)))
FLOAT_UNARY(Sin, std::sin(x))
FLOAT_UNARY(Cos, std::cos(x))
FLOAT_UNARY(Tan, std::tan(x))
FLOAT_UNARY(Asin, std::asin(x))
FLOAT_UNARY(Acos, std::acos(x))
FLOAT_UNARY(Atan, std::atan(x))
FLOAT_UNARY(Sinh, std::sinh(x))
FLOAT_UNARY(Cosh, std::cosh(x))
FLOAT_UNARY(Asinh, std::asinh(x))
FLOAT_UNARY(Acosh, std::acosh(x))
FLOAT_UNARY(Atanh, std::atanh(x))
#undef FLOAT_UNARY

// Relu is hot in fallback paths: keep it a direct loop.
absl::Status Relu(ComputeContext& c) {
  return VisitNumeric(c.input(0).dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    MapUnary<T>(c.input(0), c.outputs[0], [](T x) { return x > T(0) ? x : T(0); });
    return absl::OkStatus();
  });
}

absl::Status Neg(ComputeContext& c) {
  return VisitNumeric(c.input(0).dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    MapUnary<T>(c.input(0), c.outputs[0], [](T x) { return static_cast<T>(-x); });
    return absl::OkStatus();
  });
}

absl::Status Abs(ComputeContext& c) {
  return VisitNumeric(c.input(0).dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    MapUnary<T>(c.input(0), c.outputs[0], [](T x) { return x < T(0) ? static_cast<T>(-x) : x; });
    return absl::OkStatus();
  });
}

absl::Status Sign(ComputeContext& c) {
  return VisitNumeric(c.input(0).dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    MapUnary<T>(c.input(0), c.outputs[0], [](T x) { return static_cast<T>((x > T(0)) - (x < T(0))); });
    return absl::OkStatus();
  });
}

absl::Status LeakyRelu(ComputeContext& c) {
  const double alpha = c.node.GetFloat("alpha", 0.01f);
  return FloatUnary(c, [alpha](double x) { return x >= 0 ? x : alpha * x; });
}

absl::Status Elu(ComputeContext& c) {
  const double alpha = c.node.GetFloat("alpha", 1.0f);
  return FloatUnary(c, [alpha](double x) { return x >= 0 ? x : alpha * (std::exp(x) - 1); });
}

absl::Status Celu(ComputeContext& c) {
  const double alpha = c.node.GetFloat("alpha", 1.0f);
  return FloatUnary(c, [alpha](double x) {
    return std::max(0.0, x) + std::min(0.0, alpha * (std::exp(x / alpha) - 1));
  });
}

absl::Status Selu(ComputeContext& c) {
  const double alpha = c.node.GetFloat("alpha", 1.67326319217681884765625f);
  const double gamma = c.node.GetFloat("gamma", 1.05070102214813232421875f);
  return FloatUnary(c, [=](double x) { return gamma * (x > 0 ? x : alpha * (std::exp(x) - 1)); });
}

absl::Status HardSigmoid(ComputeContext& c) {
  const double alpha = c.node.GetFloat("alpha", 0.2f);
  const double beta = c.node.GetFloat("beta", 0.5f);
  return FloatUnary(c, [=](double x) { return std::max(0.0, std::min(1.0, alpha * x + beta)); });
}

absl::Status ThresholdedRelu(ComputeContext& c) {
  const double alpha = c.node.GetFloat("alpha", 1.0f);
  return FloatUnary(c, [=](double x) { return x > alpha ? x : 0.0; });
}

absl::Status IsNaN(ComputeContext& c) {
  return VisitFloat(c.input(0).dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T* x = c.input(0).data<T>();
    bool* y = c.outputs[0].data<bool>();
    for (int64_t i = 0; i < c.input(0).num_elements(); ++i) y[i] = std::isnan(x[i]);
    return absl::OkStatus();
  });
}

absl::Status IsInf(ComputeContext& c) {
  const bool pos = c.node.GetInt("detect_positive", 1) != 0;
  const bool neg = c.node.GetInt("detect_negative", 1) != 0;
  return VisitFloat(c.input(0).dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T* x = c.input(0).data<T>();
    bool* y = c.outputs[0].data<bool>();
    for (int64_t i = 0; i < c.input(0).num_elements(); ++i) {
      y[i] = std::isinf(x[i]) && ((x[i] > 0 && pos) || (x[i] < 0 && neg));
    }
    return absl::OkStatus();
  });
}

absl::Status InferBoolOfInput0(InferContext& c) {
  c.SetOutput(0, DataType::kBool, c.input(0).shape);
  return absl::OkStatus();
}

absl::Status Not(ComputeContext& c) {
  MapUnary<bool>(c.input(0), c.outputs[0], [](bool x) { return !x; });
  return absl::OkStatus();
}

absl::Status Clip(ComputeContext& c) {
  return VisitNumeric(c.input(0).dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    T lo = std::numeric_limits<T>::lowest();
    T hi = std::numeric_limits<T>::max();
    if (c.opset < 11) {
      lo = static_cast<T>(c.node.GetFloat("min", -std::numeric_limits<float>::max()));
      hi = static_cast<T>(c.node.GetFloat("max", std::numeric_limits<float>::max()));
    } else {
      if (c.has_input(1)) lo = c.input(1).data<T>()[0];
      if (c.has_input(2)) hi = c.input(2).data<T>()[0];
    }
    MapUnary<T>(c.input(0), c.outputs[0], [=](T x) { return x < lo ? lo : (x > hi ? hi : x); });
    return absl::OkStatus();
  });
}

// ---- Binary and variadic with broadcasting ---------------------------------

// out = fold(f, inputs...) with numpy broadcasting. Fast paths for equal
// shapes and a scalar second operand.
template <typename T, typename R, typename F>
void BroadcastBinary(const Tensor& a, const Tensor& b, Tensor& out, F f) {
  const T* x = a.data<T>();
  const T* y = b.data<T>();
  R* z = out.data<R>();
  const int64_t n = out.num_elements();
  if (a.shape() == out.shape() && b.shape() == out.shape()) {
#pragma omp parallel for if (n > 65536) schedule(static)
    for (int64_t i = 0; i < n; ++i) z[i] = f(x[i], y[i]);
    return;
  }
  if (a.shape() == out.shape() && b.num_elements() == 1) {
    const T s = y[0];
#pragma omp parallel for if (n > 65536) schedule(static)
    for (int64_t i = 0; i < n; ++i) z[i] = f(x[i], s);
    return;
  }
  BroadcastIterator it(out.shape(), {a.shape(), b.shape()});
  for (int64_t i = 0; i < n; ++i, it.Next()) z[i] = f(x[it.offset(0)], y[it.offset(1)]);
}

template <typename F>
absl::Status NumericBinary(ComputeContext& c, F f) {
  return VisitNumeric(c.input(0).dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    BroadcastBinary<T, T>(c.input(0), c.input(1), c.outputs[0],
                          [&](T x, T y) { return static_cast<T>(f(x, y)); });
    return absl::OkStatus();
  });
}

// Integer results wrap around (see WrapAdd) instead of overflowing.
absl::Status Add(ComputeContext& c) { return NumericBinary(c, [](auto x, auto y) { return WrapAdd(x, y); }); }
absl::Status Sub(ComputeContext& c) { return NumericBinary(c, [](auto x, auto y) { return WrapSub(x, y); }); }
absl::Status Mul(ComputeContext& c) { return NumericBinary(c, [](auto x, auto y) { return WrapMul(x, y); }); }

absl::Status Div(ComputeContext& c) {
  return VisitNumeric(c.input(0).dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_integral_v<T>) {
      bool by_zero = false;
      BroadcastBinary<T, T>(c.input(0), c.input(1), c.outputs[0], [&](T x, T y) {
        if (y == 0) {
          by_zero = true;
          return T(0);
        }
        return static_cast<T>(x / y);
      });
      if (by_zero) return c.Error("integer division by zero");
    } else {
      BroadcastBinary<T, T>(c.input(0), c.input(1), c.outputs[0], [](T x, T y) { return x / y; });
    }
    return absl::OkStatus();
  });
}

absl::Status Mod(ComputeContext& c) {
  const bool fmod = c.node.GetInt("fmod", 0) != 0;
  return VisitNumeric(c.input(0).dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    bool by_zero = false;
    BroadcastBinary<T, T>(c.input(0), c.input(1), c.outputs[0], [&](T x, T y) -> T {
      if constexpr (std::is_integral_v<T>) {
        if (y == 0) {
          by_zero = true;
          return T(0);
        }
        T r = static_cast<T>(x % y);
        if (!fmod && r != 0 && ((r < 0) != (y < 0))) r = static_cast<T>(r + y);
        return r;
      } else {
        T r = std::fmod(x, y);
        if (!fmod && r != 0 && ((r < 0) != (y < 0))) r += y;
        return r;
      }
    });
    if (by_zero) return c.Error("integer modulo by zero");
    return absl::OkStatus();
  });
}

// Pow allows an exponent of another type; compute in double.
absl::Status Pow(ComputeContext& c) {
  const Tensor& b = c.input(1);
  return VisitNumeric(c.input(0).dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    Tensor exponent = b;
    if (b.dtype() != c.input(0).dtype()) {
      ASSIGN_OR_RETURN(exponent, Tensor::Allocate(c.input(0).dtype(), b.shape()));
      for (int64_t i = 0; i < b.num_elements(); ++i) {
        exponent.data<T>()[i] = static_cast<T>(b.GetDouble(i));
      }
      // Integral bases with fractional float exponents: compute from the originals.
      if (std::is_integral_v<T>) {
        BroadcastIterator it(c.outputs[0].shape(), {c.input(0).shape(), b.shape()});
        T* z = c.outputs[0].data<T>();
        for (int64_t i = 0; i < c.outputs[0].num_elements(); ++i, it.Next()) {
          z[i] = static_cast<T>(std::pow(static_cast<double>(c.input(0).data<T>()[it.offset(0)]),
                                         b.GetDouble(it.offset(1))));
        }
        return absl::OkStatus();
      }
    }
    BroadcastBinary<T, T>(c.input(0), exponent, c.outputs[0], [](T x, T y) {
      return static_cast<T>(std::pow(static_cast<double>(x), static_cast<double>(y)));
    });
    return absl::OkStatus();
  });
}

// PRelu's slope as it broadcasts to X (unidirectionally). Before opset 7 a
// slope of shape [C] applies along the channel axis 1, not along the last axis
// as numpy broadcasting would have it; PyTorch exports rely on this.
Shape PReluSlopeShape(int64_t opset, const Shape& x, const Shape& slope) {
  if (opset >= 7 || slope.size() != 1 || x.size() < 2 || slope[0] != x[1]) return slope;
  Shape channel(x.size() - 1, 1);
  channel[0] = slope[0];
  return channel;
}

absl::Status InferPRelu(InferContext& c) {
  RETURN_IF_ERROR(CheckSameTypes(c, 0, 2));
  const Shape& x = c.input(0).shape;
  const absl::StatusOr<Shape> out =
      BroadcastShapes(x, PReluSlopeShape(c.opset, x, c.input(1).shape));
  if (!out.ok() || *out != x) {
    return c.Error(absl::StrCat("slope of shape ", ShapeToString(c.input(1).shape),
                                " does not broadcast to X's shape ", ShapeToString(x)));
  }
  c.SetOutput(0, c.input(0).dtype, x);
  return absl::OkStatus();
}

absl::Status PRelu(ComputeContext& c) {
  const Tensor& data = c.input(0);
  const Tensor slope =
      c.input(1).Reshaped(PReluSlopeShape(c.opset, data.shape(), c.input(1).shape()));
  return VisitNumeric(data.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    BroadcastBinary<T, T>(data, slope, c.outputs[0],
                          [](T x, T s) { return x < T(0) ? static_cast<T>(x * s) : x; });
    return absl::OkStatus();
  });
}

template <typename F>
absl::Status Compare(ComputeContext& c, F f) {
  return VisitAll(c.input(0).dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    BroadcastBinary<T, bool>(c.input(0), c.input(1), c.outputs[0], f);
    return absl::OkStatus();
  });
}

absl::Status Equal(ComputeContext& c) { return Compare(c, [](auto x, auto y) { return x == y; }); }
absl::Status Greater(ComputeContext& c) { return Compare(c, [](auto x, auto y) { return x > y; }); }
absl::Status Less(ComputeContext& c) { return Compare(c, [](auto x, auto y) { return x < y; }); }
absl::Status GreaterOrEqual(ComputeContext& c) { return Compare(c, [](auto x, auto y) { return x >= y; }); }
absl::Status LessOrEqual(ComputeContext& c) { return Compare(c, [](auto x, auto y) { return x <= y; }); }
absl::Status And(ComputeContext& c) { return Compare(c, [](auto x, auto y) { return x && y; }); }
absl::Status Or(ComputeContext& c) { return Compare(c, [](auto x, auto y) { return x || y; }); }
absl::Status Xor(ComputeContext& c) { return Compare(c, [](auto x, auto y) { return x != y; }); }

// Max, Min, Sum, Mean: fold over any number of inputs.
template <typename F>
absl::Status Variadic(ComputeContext& c, F f, bool mean) {
  return VisitNumeric(c.input(0).dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    Tensor& out = c.outputs[0];
    BroadcastIterator first(out.shape(), {c.input(0).shape()});
    for (int64_t i = 0; i < out.num_elements(); ++i, first.Next()) {
      out.data<T>()[i] = c.input(0).data<T>()[first.offset(0)];
    }
    for (size_t k = 1; k < c.num_inputs(); ++k) {
      BroadcastBinary<T, T>(out, c.input(k), out, [&](T x, T y) { return static_cast<T>(f(x, y)); });
    }
    if (mean) {
      const T n = static_cast<T>(c.num_inputs());
      for (int64_t i = 0; i < out.num_elements(); ++i) out.data<T>()[i] /= n;
    }
    return absl::OkStatus();
  });
}

absl::Status Max(ComputeContext& c) { return Variadic(c, [](auto x, auto y) { return x > y || x != x ? x : y; }, false); }
absl::Status Min(ComputeContext& c) { return Variadic(c, [](auto x, auto y) { return x < y || x != x ? x : y; }, false); }
absl::Status Sum(ComputeContext& c) { return Variadic(c, [](auto x, auto y) { return WrapAdd(x, y); }, false); }
absl::Status Mean(ComputeContext& c) { return Variadic(c, [](auto x, auto y) { return WrapAdd(x, y); }, true); }

// ---- Where, Cast, Identity, Dropout ----------------------------------------

absl::Status InferWhere(InferContext& c) {
  if (c.input(0).dtype != DataType::kBool) return c.Error("condition must be bool");
  RETURN_IF_ERROR(CheckSameTypes(c, 1, 3));
  Shape out;
  RETURN_IF_ERROR(BroadcastAll(c, &out));
  c.SetOutput(0, c.input(1).dtype, out);
  return absl::OkStatus();
}

absl::Status Where(ComputeContext& c) {
  return VisitAll(c.input(1).dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    Tensor& out = c.outputs[0];
    BroadcastIterator it(out.shape(), {c.input(0).shape(), c.input(1).shape(), c.input(2).shape()});
    const bool* cond = c.input(0).data<bool>();
    const T* x = c.input(1).data<T>();
    const T* y = c.input(2).data<T>();
    T* z = out.data<T>();
    for (int64_t i = 0; i < out.num_elements(); ++i, it.Next()) {
      z[i] = cond[it.offset(0)] ? x[it.offset(1)] : y[it.offset(2)];
    }
    return absl::OkStatus();
  });
}

template <typename To, typename From>
To CastValue(From x) {
  if constexpr (std::is_same_v<To, bool>) {
    return x != From(0);
  } else if constexpr (std::is_floating_point_v<From> && std::is_integral_v<To>) {
    // Out-of-range and NaN conversions are undefined in C++; saturate.
    const double v = static_cast<double>(x);
    const double lo = static_cast<double>(std::numeric_limits<To>::lowest());
    const double hi = static_cast<double>(std::numeric_limits<To>::max());
    return std::isnan(v) ? To(0)
           : v <= lo     ? std::numeric_limits<To>::lowest()
           : v >= hi     ? std::numeric_limits<To>::max()
                         : static_cast<To>(v);
  } else {
    return static_cast<To>(x);
  }
}

absl::Status InferCastTo(InferContext& c, DataType to) {
  if (!IsSupportedDataType(to)) {
    return absl::UnimplementedError(
        absl::StrCat(c.node.Describe(), ": Cast to ", DataTypeName(to), " is not supported"));
  }
  c.SetOutput(0, to, c.input(0).shape);
  return absl::OkStatus();
}

absl::Status InferCast(InferContext& c) {
  return InferCastTo(c, static_cast<DataType>(c.node.GetInt("to", 0)));
}

absl::Status InferCastLike(InferContext& c) { return InferCastTo(c, c.input(1).dtype); }

// Cast and CastLike: to the output's type.
absl::Status Cast(ComputeContext& c) {
  const Tensor& in = c.input(0);
  Tensor& out = c.outputs[0];
  const int64_t n = in.num_elements();
  if (!IsHalfFloat(in.dtype()) && !IsHalfFloat(out.dtype())) {
    return VisitAll(in.dtype(), [&](auto from_tag) -> absl::Status {
      using From = typename decltype(from_tag)::type;
      return VisitAll(out.dtype(), [&](auto to_tag) -> absl::Status {
        using To = typename decltype(to_tag)::type;
        const From* x = in.data<From>();
        To* y = out.data<To>();
        for (int64_t i = 0; i < n; ++i) y[i] = CastValue<To>(x[i]);
        return absl::OkStatus();
      });
    });
  }
  // 16-bit floats convert through double, which holds every value of the
  // other types exactly (int64 beyond 2^53 aside).
  if (IsHalfFloat(out.dtype())) {
    for (int64_t i = 0; i < n; ++i) out.data<uint16_t>()[i] = DoubleToHalf(in.GetDouble(i), out.dtype());
    return absl::OkStatus();
  }
  return VisitAll(out.dtype(), [&](auto to_tag) -> absl::Status {
    using To = typename decltype(to_tag)::type;
    for (int64_t i = 0; i < n; ++i) out.data<To>()[i] = CastValue<To>(in.GetDouble(i));
    return absl::OkStatus();
  });
}

absl::Status Copy(ComputeContext& c) {
  if (c.outputs[0].byte_size() > 0) {
    std::memcpy(c.outputs[0].raw_data(), c.input(0).raw_data(), c.outputs[0].byte_size());
  }
  return absl::OkStatus();
}

absl::Status InferDropout(InferContext& c) {
  if (c.input(2).defined() &&
      (c.input(2).constant == nullptr || c.input(2).constant->GetInt() != 0)) {
    return absl::UnimplementedError(
        absl::StrCat(c.node.Describe(), ": Dropout in training mode is not supported"));
  }
  c.SetOutput(0, c.input(0).dtype, c.input(0).shape);
  c.SetOutput(1, DataType::kBool, c.input(0).shape);
  return absl::OkStatus();
}

// Inference mode: output = input, mask = all true.
absl::Status Dropout(ComputeContext& c) {
  RETURN_IF_ERROR(Copy(c));
  if (c.outputs.size() > 1 && c.outputs[1].defined()) {
    std::fill_n(c.outputs[1].data<bool>(), c.outputs[1].num_elements(), true);
  }
  return absl::OkStatus();
}

}  // namespace

void RegisterElementwiseOps(OpTable& t) {
  for (auto [name, fn] : std::initializer_list<std::pair<const char*, ComputeFn>>{
           {"Relu", Relu}, {"Sigmoid", Sigmoid}, {"Tanh", Tanh}, {"Exp", Exp}, {"Log", Log},
           {"Sqrt", Sqrt}, {"Neg", Neg}, {"Abs", Abs}, {"Reciprocal", Reciprocal},
           {"Floor", Floor}, {"Ceil", Ceil}, {"Round", Round}, {"Erf", Erf},
           {"Softplus", Softplus}, {"Softsign", Softsign}, {"HardSwish", HardSwish},
           {"Sin", Sin}, {"Cos", Cos}, {"Tan", Tan}, {"Asin", Asin}, {"Acos", Acos},
           {"Atan", Atan}, {"Sinh", Sinh}, {"Cosh", Cosh}, {"Asinh", Asinh}, {"Acosh", Acosh},
           {"Atanh", Atanh}, {"Sign", Sign}, {"LeakyRelu", LeakyRelu}, {"Elu", Elu},
           {"Celu", Celu}, {"Selu", Selu}, {"HardSigmoid", HardSigmoid},
           {"ThresholdedRelu", ThresholdedRelu}, {"Not", Not}, {"Clip", Clip},
           {"Identity", Copy}}) {
    t[name] = OpDef{.infer = InferSameAsInput0, .compute = fn};
  }
  t["IsNaN"] = OpDef{.infer = InferBoolOfInput0, .compute = IsNaN};
  t["IsInf"] = OpDef{.infer = InferBoolOfInput0, .compute = IsInf};
  for (auto [name, fn] : std::initializer_list<std::pair<const char*, ComputeFn>>{
           {"Add", Add}, {"Sub", Sub}, {"Mul", Mul}, {"Div", Div}, {"Mod", Mod},
           {"Max", Max}, {"Min", Min}, {"Sum", Sum}, {"Mean", Mean}}) {
    t[name] = OpDef{.infer = InferBroadcast, .compute = fn};
  }
  t["Pow"] = OpDef{.infer = InferBroadcastAsInput0, .compute = Pow};
  t["PRelu"] = OpDef{.infer = InferPRelu, .compute = PRelu};
  for (auto [name, fn] : std::initializer_list<std::pair<const char*, ComputeFn>>{
           {"Equal", Equal}, {"Greater", Greater}, {"Less", Less},
           {"GreaterOrEqual", GreaterOrEqual}, {"LessOrEqual", LessOrEqual},
           {"And", And}, {"Or", Or}, {"Xor", Xor}}) {
    t[name] = OpDef{.infer = InferComparison, .compute = fn};
  }
  t["Where"] = OpDef{.infer = InferWhere, .compute = Where};
  t["Cast"] = OpDef{.infer = InferCast, .compute = Cast};
  t["CastLike"] = OpDef{.infer = InferCastLike, .compute = Cast};
  t["Dropout"] = OpDef{.infer = InferDropout, .compute = Dropout, .value_inputs = {2}};
}

}  // namespace slimserve::runtime::reference
