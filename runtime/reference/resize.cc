// Resize (opsets 10-17) and its deprecated predecessor Upsample (7-9).
//
// Every mode reduces to taps: per axis and output index, the input indices it
// reads and their weights (one for nearest, two for linear, four for cubic).
// Nearest is then a gather; linear and cubic sum over the product of the axes'
// taps. Coordinates follow the ONNX reference implementation
// (onnx/backend/test/case/node/resize.py), which generated the suite's data.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <string>
#include <utility>

#include "runtime/reference/common.h"
#include "runtime/reference/tensor_ops.h"
#include "runtime/status_macros.h"

namespace slimserve::runtime::reference {
namespace {

enum class Mode { kNearest, kLinear, kCubic };
enum class Transform {
  kHalfPixel,
  kPytorchHalfPixel,
  kAlignCorners,
  kAsymmetric,
  kTfHalfPixelForNn,
  kTfCropAndResize,
};
// How nearest picks between the two neighbours of a fractional coordinate.
// kSimple is Upsample's and opset-10 Resize's rule, as ONNX Runtime has it:
// floor when the axis grows, ceil when it shrinks.
enum class Rounding { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil, kSimple };

struct ResizeSpec {
  Mode mode = Mode::kNearest;
  Transform transform = Transform::kAsymmetric;
  Rounding rounding = Rounding::kSimple;
  double cubic_a = -0.75;
  bool exclude_outside = false;
  double extrapolation = 0;
  bool from_sizes = false;     // output sizes given; scales derived from them
  std::vector<double> scales;  // per axis
  Shape out;
};

// The enum value that string attribute `attr` names.
template <typename E, typename Ctx>
absl::StatusOr<E> EnumAttr(const Ctx& c, const char* attr, const char* fallback,
                           std::initializer_list<std::pair<const char*, E>> names) {
  const std::string value = c.node.GetString(attr, fallback);
  for (const auto& [name, e] : names) {
    if (value == name) return e;
  }
  return c.Error(absl::StrCat("unknown ", attr, " '", value, "'"));
}

template <typename Ctx>
absl::StatusOr<ResizeSpec> ResizeSpecOf(const Ctx& c, const Shape& in) {
  const size_t rank = in.size();
  const bool upsample = c.node.op_type == "Upsample";
  // Opset 11 brought roi, sizes and the attributes below.
  const bool v11 = !upsample && c.opset >= 11;
  ResizeSpec s;
  ASSIGN_OR_RETURN(s.mode, EnumAttr<Mode>(c, "mode", "nearest",
                                          {{"nearest", Mode::kNearest},
                                           {"linear", Mode::kLinear},
                                           {"cubic", Mode::kCubic}}));
  if (v11) {
    ASSIGN_OR_RETURN(s.transform,
                     EnumAttr<Transform>(c, "coordinate_transformation_mode", "half_pixel",
                                         {{"half_pixel", Transform::kHalfPixel},
                                          {"pytorch_half_pixel", Transform::kPytorchHalfPixel},
                                          {"align_corners", Transform::kAlignCorners},
                                          {"asymmetric", Transform::kAsymmetric},
                                          {"tf_half_pixel_for_nn", Transform::kTfHalfPixelForNn},
                                          {"tf_crop_and_resize", Transform::kTfCropAndResize}}));
    ASSIGN_OR_RETURN(s.rounding,
                     EnumAttr<Rounding>(c, "nearest_mode", "round_prefer_floor",
                                        {{"round_prefer_floor", Rounding::kRoundPreferFloor},
                                         {"round_prefer_ceil", Rounding::kRoundPreferCeil},
                                         {"floor", Rounding::kFloor},
                                         {"ceil", Rounding::kCeil}}));
    s.cubic_a = c.node.GetFloat("cubic_coeff_a", -0.75f);
    s.exclude_outside = c.node.GetInt("exclude_outside", 0) != 0;
    s.extrapolation = c.node.GetFloat("extrapolation_value", 0.0f);
  } else if (s.mode == Mode::kCubic) {
    return c.Error("cubic mode needs Resize from opset 11");
  }

  const Tensor* scales = nullptr;
  const Tensor* sizes = nullptr;
  if (upsample && c.opset < 9) {
    if (c.opset < 7) {
      return absl::UnimplementedError(
          absl::StrCat(c.node.Describe(), ": Upsample before opset 7 is not supported"));
    }
    for (float f : c.node.GetFloats("scales")) s.scales.push_back(f);
  } else {
    ASSIGN_OR_RETURN(scales, ValueOf(c, v11 ? 2 : 1));
    if (v11) {
      ASSIGN_OR_RETURN(sizes, ValueOf(c, 3));
    }
  }
  // An empty tensor stands for an omitted input: opset 11 requires `scales`
  // even when `sizes` is given.
  for (int64_t i = 0; scales != nullptr && i < scales->num_elements(); ++i) {
    s.scales.push_back(scales->GetDouble(i));
  }
  s.from_sizes = sizes != nullptr && sizes->num_elements() > 0;
  if (s.from_sizes == !s.scales.empty()) return c.Error("needs exactly one of scales and sizes");

  if (s.from_sizes) {
    s.out = sizes->ToInt64Vector();
    if (s.out.size() != rank) return c.Error("sizes must have one entry per input dim");
    for (size_t d = 0; d < rank; ++d) {
      if (s.out[d] < 0 || (in[d] == 0 && s.out[d] > 0)) {
        return c.Error(
            absl::StrCat("cannot resize ", ShapeToString(in), " to ", ShapeToString(s.out)));
      }
      s.scales.push_back(in[d] > 0 ? static_cast<double>(s.out[d]) / in[d] : 1.0);
    }
    return s;
  }
  if (s.scales.size() != rank) return c.Error("scales must have one entry per input dim");
  for (size_t d = 0; d < rank; ++d) {
    // floor(scale * size), in double like the reference.
    const double size = std::floor(s.scales[d] * in[d]);
    if (!(s.scales[d] > 0 && size < 9e15)) {
      return c.Error(absl::StrCat("invalid scale ", s.scales[d]));
    }
    s.out.push_back(static_cast<int64_t>(size));
  }
  return s;
}

// tf_crop_and_resize's region [start_0, ..., end_0, ...] in normalized input
// coordinates; the whole input when not given. Not needed for shapes, so read
// only when the node runs.
absl::StatusOr<std::vector<double>> RoiOf(const ComputeContext& c, size_t rank) {
  std::vector<double> roi(2 * rank, 1.0);
  std::fill_n(roi.begin(), rank, 0.0);
  if (!c.has_input(1) || c.input(1).num_elements() == 0) return roi;
  if (c.input(1).num_elements() != static_cast<int64_t>(2 * rank)) {
    return c.Error("roi must have two entries per input dim");
  }
  if (c.input(1).dtype() == DataType::kFloat16) {  // GetDouble does not decode it
    return absl::UnimplementedError(
        absl::StrCat(c.node.Describe(), ": float16 roi is not supported"));
  }
  for (size_t i = 0; i < 2 * rank; ++i) roi[i] = c.input(1).GetDouble(i);
  return roi;
}

// Where output index o of axis d samples the input, in input coordinates.
double SourceCoordinate(const ResizeSpec& s, const std::vector<double>& roi, size_t d, int64_t o,
                        int64_t in_len) {
  const double scale = s.scales[d];
  // The reference's "output width": scale * input size, which is fractional
  // when the output size was rounded down from scales.
  const double resized = s.from_sizes ? s.out[d] : scale * in_len;
  switch (s.transform) {
    case Transform::kHalfPixel:
      return (o + 0.5) / scale - 0.5;
    case Transform::kPytorchHalfPixel:
      return resized > 1 ? (o + 0.5) / scale - 0.5 : 0;
    case Transform::kAlignCorners:
      return resized > 1 ? o * (in_len - 1.0) / (resized - 1) : 0;
    case Transform::kAsymmetric:
      return o / scale;
    case Transform::kTfHalfPixelForNn:
      return (o + 0.5) / scale;
    case Transform::kTfCropAndResize: {
      const double start = roi[d] * (in_len - 1), end = roi[d + s.out.size()] * (in_len - 1);
      return resized > 1 ? start + o * (end - start) / (resized - 1) : (start + end) / 2;
    }
  }
  return 0;
}

// Whether nearest takes the upper neighbour at fraction r past the floor.
bool RoundsUp(double r, Rounding rounding, bool shrinking) {
  if (r == 0) return false;
  switch (rounding) {
    case Rounding::kRoundPreferFloor:
      return r > 0.5;
    case Rounding::kRoundPreferCeil:
      return r >= 0.5;
    case Rounding::kFloor:
      return false;
    case Rounding::kCeil:
      return true;
    case Rounding::kSimple:
      return shrinking;
  }
  return false;
}

// Keys' cubic convolution weights of the inputs at floor(x) - 1 .. floor(x) + 2,
// for r = x - floor(x).
std::array<double, 4> CubicWeights(double r, double a) {
  auto near = [a](double t) { return ((a + 2) * t - (a + 3)) * t * t + 1; };       // |t| <= 1
  auto far = [a](double t) { return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a; };  // 1 < |t| < 2
  return {far(r + 1), near(r), near(1 - r), far(2 - r)};
}

// The taps of one axis: output index o reads input indices index[j] with
// weights weight[j] for j in [first[o], first[o + 1]). An output index without
// taps lies outside tf_crop_and_resize's region and takes extrapolation_value.
struct AxisTaps {
  std::vector<int64_t> first;
  std::vector<int64_t> index;
  std::vector<double> weight;
};

AxisTaps TapsOf(const ResizeSpec& s, const std::vector<double>& roi, size_t d, int64_t in_len) {
  AxisTaps taps;
  // Indices past the ends read the edge, as the reference's edge padding does.
  // Zero weights are dropped: an axis that is not resized keeps one tap.
  auto add = [&](int64_t i, double w) {
    if (w == 0) return;
    taps.index.push_back(std::clamp<int64_t>(i, 0, in_len - 1));
    taps.weight.push_back(w);
  };
  for (int64_t o = 0; o < s.out[d]; ++o) {
    taps.first.push_back(static_cast<int64_t>(taps.index.size()));
    double x = SourceCoordinate(s, roi, d, o, in_len);
    if (s.transform == Transform::kTfCropAndResize && !(x >= 0 && x <= in_len - 1)) continue;
    // Beyond a few elements outside, every tap reads the edge anyway; bounding
    // x keeps the conversion to an integer defined.
    x = std::isnan(x) ? 0 : std::clamp(x, -4.0, in_len + 4.0);
    const double floor = std::floor(x), r = x - floor;
    const int64_t i = static_cast<int64_t>(floor);
    switch (s.mode) {
      case Mode::kNearest:
        add(RoundsUp(r, s.rounding, s.scales[d] < 1) ? i + 1 : i, 1);
        break;
      case Mode::kLinear:
        add(i, 1 - r);
        add(i + 1, r);
        break;
      case Mode::kCubic: {
        std::array<double, 4> w = CubicWeights(r, s.cubic_a);
        if (s.exclude_outside) {
          double sum = 0;
          for (int k = 0; k < 4; ++k) {
            if (i - 1 + k < 0 || i - 1 + k >= in_len) w[k] = 0;
            sum += w[k];
          }
          for (double& v : w) v = sum != 0 ? v / sum : v;
        }
        for (int k = 0; k < 4; ++k) add(i - 1 + k, w[k]);
        break;
      }
    }
  }
  taps.first.push_back(static_cast<int64_t>(taps.index.size()));
  return taps;
}

// Linear and cubic: each output element sums the input over the product of its
// axes' taps, weighted by the product of their weights.
template <typename T>
void Interpolate(const Tensor& in, const std::vector<AxisTaps>& taps, double extrapolation,
                 Tensor& out) {
  const int64_t rank = out.rank();
  const std::vector<int64_t> strides = Strides(in.shape());
  const T* x = in.data<T>();
  T* y = out.data<T>();
  std::vector<int64_t> coord(rank, 0);
  std::vector<std::pair<int64_t, double>> terms, next;  // (input offset, weight)
  for (int64_t k = 0; k < out.num_elements(); ++k) {
    terms.assign(1, {0, 1.0});
    for (int64_t d = 0; d < rank && !terms.empty(); ++d) {
      const AxisTaps& t = taps[d];
      next.clear();
      for (const auto& [offset, weight] : terms) {
        for (int64_t j = t.first[coord[d]]; j < t.first[coord[d] + 1]; ++j) {
          next.emplace_back(offset + t.index[j] * strides[d], weight * t.weight[j]);
        }
      }
      terms.swap(next);
    }
    double sum = terms.empty() ? extrapolation : 0;
    for (const auto& [offset, weight] : terms) sum += weight * x[offset];
    y[k] = static_cast<T>(sum);
    for (int64_t d = rank - 1; d >= 0; --d) {
      if (++coord[d] < out.dim(d)) break;
      coord[d] = 0;
    }
  }
}

absl::Status InferResize(InferContext& c) {
  const TensorDesc& in = c.input(0);
  ASSIGN_OR_RETURN(const ResizeSpec s, ResizeSpecOf(c, in.shape));
  if (s.mode != Mode::kNearest && in.dtype != DataType::kFloat32 &&
      in.dtype != DataType::kFloat64) {
    return absl::UnimplementedError(absl::StrCat(c.node.Describe(), ": interpolation of ",
                                                 DataTypeName(in.dtype), " is not supported"));
  }
  c.SetOutput(0, in.dtype, s.out);
  return absl::OkStatus();
}

absl::Status Resize(ComputeContext& c) {
  const Tensor& in = c.input(0);
  Tensor& out = c.outputs[0];
  ASSIGN_OR_RETURN(const ResizeSpec s, ResizeSpecOf(c, in.shape()));
  std::vector<double> roi;
  if (s.transform == Transform::kTfCropAndResize) {
    ASSIGN_OR_RETURN(roi, RoiOf(c, in.rank()));
  }
  std::vector<AxisTaps> taps;
  for (int64_t d = 0; d < in.rank(); ++d) taps.push_back(TapsOf(s, roi, d, in.dim(d)));

  if (s.mode != Mode::kNearest) {
    return VisitFloat(in.dtype(), [&](auto tag) -> absl::Status {
      Interpolate<typename decltype(tag)::type>(in, taps, s.extrapolation, out);
      return absl::OkStatus();
    });
  }
  // Nearest has one tap per output index, or none outside the crop region.
  std::vector<std::vector<int64_t>> maps(in.rank());
  for (int64_t d = 0; d < in.rank(); ++d) {
    const AxisTaps& t = taps[d];
    for (int64_t o = 0; o < out.dim(d); ++o) {
      maps[d].push_back(t.first[o] == t.first[o + 1] ? -1 : t.index[t.first[o]]);
    }
  }
  std::array<char, 8> fill{};  // zero bits
  if (s.transform == Transform::kTfCropAndResize && s.extrapolation != 0) {
    RETURN_IF_ERROR(VisitFloat(in.dtype(), [&](auto tag) -> absl::Status {
      const auto v = static_cast<typename decltype(tag)::type>(s.extrapolation);
      std::memcpy(fill.data(), &v, sizeof(v));
      return absl::OkStatus();
    }));
  }
  return GatherByAxisMaps(in, maps, fill.data(), out);
}

}  // namespace

void RegisterResizeOps(OpTable& t) {
  // Input 1 is Upsample's and opset-10 Resize's scales, and opset 11's roi.
  t["Resize"] = OpDef{.infer = InferResize, .compute = Resize, .value_inputs = {1, 2, 3}};
  t["Upsample"] = OpDef{.infer = InferResize, .compute = Resize, .value_inputs = {1}};
}

}  // namespace slimserve::runtime::reference
