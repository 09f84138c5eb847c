// The int8 Winograd convolution against a direct integer convolution with
// the same epilogue: sums must be exact, so outputs may differ by at most
// one step of rounding. Shapes leave partial tiles, channel chunks and
// 16-channel output blocks; inputs span the whole 8-bit range.
#include "runtime/reference/winograd_int8.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace slimserve::runtime::reference {
namespace {

struct Case {
  int64_t batch, height, width, in, out, pad_top, pad_left, pad_bottom, pad_right;
  bool x_signed, relu, bias, addend;
  Int8ConvType y_type;
};

// Direct convolution's sums, then the epilogue, in double.
std::vector<double> Direct(const Case& c, const WinogradInt8Geometry& g, const std::vector<uint8_t>& x,
                           int32_t zp, const std::vector<int8_t>& w, const std::vector<float>& scale,
                           const std::vector<float>& bias, const std::vector<uint8_t>& addend,
                           const WinogradInt8Epilogue& e) {
  std::vector<double> y(g.batch * g.out_height * g.out_width * c.out);
  for (int64_t n = 0; n < g.batch; ++n) {
    for (int64_t oh = 0; oh < g.out_height; ++oh) {
      for (int64_t ow = 0; ow < g.out_width; ++ow) {
        for (int64_t k = 0; k < c.out; ++k) {
          int64_t acc = 0;
          for (int64_t i = 0; i < 3; ++i) {
            for (int64_t j = 0; j < 3; ++j) {
              const int64_t h = oh + i - c.pad_top, wc = ow + j - c.pad_left;
              if (h < 0 || h >= c.height || wc < 0 || wc >= c.width) continue;
              for (int64_t ch = 0; ch < c.in; ++ch) {
                const uint8_t raw = x[((n * c.height + h) * c.width + wc) * c.in + ch];
                const int32_t value = c.x_signed ? static_cast<int8_t>(raw) : raw;
                acc += static_cast<int64_t>(value - zp) * w[((k * c.in + ch) * 3 + i) * 3 + j];
              }
            }
          }
          const int64_t index = ((n * g.out_height + oh) * g.out_width + ow) * c.out + k;
          double v = static_cast<double>(scale[k]) * acc + (c.bias ? bias[k] : 0.0);
          if (c.addend) {
            const double a = c.y_type == Int8ConvType::kInt8 ? static_cast<int8_t>(addend[index]) : addend[index];
            v += e.addend_scale * (a - e.addend_zero_point);
          }
          if (c.relu) v = std::max(v, 0.0);
          if (c.y_type != Int8ConvType::kFloat32) {
            const double lo = c.y_type == Int8ConvType::kUint8 ? 0 : -128, hi = c.y_type == Int8ConvType::kUint8 ? 255 : 127;
            v = std::clamp(std::nearbyint(v / e.y_scale) + e.y_zero_point, lo, hi);
          }
          y[index] = v;
        }
      }
    }
  }
  return y;
}

class WinogradInt8Test : public ::testing::TestWithParam<Case> {};

TEST_P(WinogradInt8Test, MatchesDirectConvolution) {
  if (!WinogradInt8Available()) GTEST_SKIP() << "no AVX-512 VNNI";
  const Case c = GetParam();
  WinogradInt8Geometry g;
  g.batch = c.batch;
  g.height = c.height;
  g.width = c.width;
  g.out_height = c.height + c.pad_top + c.pad_bottom - 2;
  g.out_width = c.width + c.pad_left + c.pad_right - 2;
  g.pad_top = c.pad_top;
  g.pad_left = c.pad_left;
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> byte(0, 255), weight(-127, 127);
  std::vector<uint8_t> x(c.batch * c.height * c.width * c.in);
  for (uint8_t& v : x) v = static_cast<uint8_t>(byte(rng));
  std::vector<int8_t> w(c.out * c.in * 9);
  for (int8_t& v : w) v = static_cast<int8_t>(weight(rng));
  const int32_t zp = c.x_signed ? -3 : 17;
  // Scales that put the outputs across the 8-bit range.
  const double spread = 128.0 * 73 * 3 * std::sqrt(9.0 * c.in);
  std::vector<float> scale(c.out), bias(c.out);
  for (int64_t k = 0; k < c.out; ++k) {
    scale[k] = static_cast<float>((0.5 + 0.01 * k) / spread);
    bias[k] = static_cast<float>(0.02 * (k % 7) - 0.05);
  }
  const int64_t outputs = g.batch * g.out_height * g.out_width * c.out;
  std::vector<uint8_t> addend(outputs);
  for (uint8_t& v : addend) v = static_cast<uint8_t>(byte(rng));
  WinogradInt8Epilogue e;
  e.scale = scale.data();
  e.bias = c.bias ? bias.data() : nullptr;
  e.relu = c.relu;
  e.y_type = c.y_type;
  e.y_scale = 1.0f / 256;
  e.y_zero_point = c.y_type == Int8ConvType::kUint8 ? 20 : 0;
  e.addend_scale = 1.0f / 300;
  e.addend_zero_point = 9;
  const bool float_addend = c.addend && c.y_type == Int8ConvType::kFloat32;
  std::vector<float> float_addend_values(float_addend ? outputs : 0);
  for (int64_t i = 0; i < static_cast<int64_t>(float_addend_values.size()); ++i) float_addend_values[i] = addend[i];
  if (c.addend) e.addend = float_addend ? static_cast<const void*>(float_addend_values.data()) : addend.data();

  const WinogradInt8Weights u = WinogradInt8Weights::FromDense(w.data(), c.out, c.in);
  std::vector<char> scratch(WinogradInt8ScratchBytes(u, g, 2));
  std::vector<float> y_float(outputs);
  std::vector<uint8_t> y_bytes(outputs);
  void* y = c.y_type == Int8ConvType::kFloat32 ? static_cast<void*>(y_float.data()) : y_bytes.data();
  WinogradInt8Conv(u, x.data(), c.x_signed, zp, g, e, y, scratch.data(), 2);

  const std::vector<double> expected = Direct(c, g, x, zp, w, scale, bias, addend, e);
  double worst = 0, largest = 0;
  int64_t off_by_one = 0;
  for (int64_t i = 0; i < outputs; ++i) {
    double got = y_float.empty() ? 0 : y_float[i];
    if (c.y_type == Int8ConvType::kUint8) got = y_bytes[i];
    if (c.y_type == Int8ConvType::kInt8) got = static_cast<int8_t>(y_bytes[i]);
    worst = std::max(worst, std::fabs(got - expected[i]));
    largest = std::max(largest, std::fabs(expected[i]));
    off_by_one += got != expected[i];
  }
  if (c.y_type == Int8ConvType::kFloat32) {
    EXPECT_LE(worst, 1e-5 * largest);
  } else {
    EXPECT_LE(worst, 1.0);
    EXPECT_LE(off_by_one, outputs / 100) << "more than 1 % of the outputs rounded the other way";
    EXPECT_GT(largest, 50) << "outputs should span the range";
  }
}

using T = Int8ConvType;
INSTANTIATE_TEST_SUITE_P(
    Shapes, WinogradInt8Test,
    ::testing::Values(Case{2, 8, 8, 32, 32, 1, 1, 1, 1, false, true, true, false, T::kUint8},
                      Case{1, 7, 9, 64, 48, 1, 1, 1, 1, false, false, true, true, T::kUint8},
                      Case{3, 14, 13, 48, 16, 0, 0, 0, 0, true, false, false, false, T::kInt8},
                      Case{1, 5, 11, 20, 32, 2, 1, 0, 2, false, true, true, true, T::kInt8},
                      Case{2, 6, 6, 96, 80, 1, 1, 1, 1, false, false, true, true, T::kFloat32},
                      Case{1, 28, 28, 64, 64, 1, 1, 1, 1, false, true, true, false, T::kUint8},
                      Case{1, 9, 6, 32, 16, 1, 1, 1, 1, true, true, true, true, T::kUint8},
                      Case{1, 4, 4, 16, 16, 1, 1, 1, 1, false, false, true, false, T::kInt8},
                      // Two blocks per thread, the last ones short.
                      Case{4, 28, 28, 64, 64, 1, 1, 1, 1, false, true, true, true, T::kUint8},
                      // Weights over 8 MiB: blocks sized to read them once per thread.
                      Case{3, 7, 7, 512, 512, 1, 1, 1, 1, false, true, true, false, T::kUint8}));

}  // namespace
}  // namespace slimserve::runtime::reference
