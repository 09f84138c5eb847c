// Int8 3x3 stride-1 convolution by Winograd's F(4x4, 3x3), in exact integer
// arithmetic: each 6x6 input tile (x - zero point, at most 255 in size) is
// transformed by B^T d B into 16-bit values (at most 100 x 255), each 3x3
// s8 kernel by G g G^T with G's rows scaled to integers (at most 49 x 127),
// their products summed over the input channels in 32-bit (AVX-512 VNNI,
// saturating) and the 6x6 sums turned into 4x4 outputs in float, where the
// per-channel scale, bias, residual addend, ReLU and requantization follow.
// 36 multiply-adds per 16 outputs instead of 144: at VNNI's 16-bit rate,
// half its 8-bit one, twice the work of a direct int8 convolution per cycle.
// The integer sums are those of a direct convolution, so outputs differ
// from it only by the float rounding after them.
//
//   WinogradInt8Weights u = WinogradInt8Weights::FromDense(w, out_channels, in_channels);
//   WinogradInt8Conv(u, x, /*x_signed=*/false, x_zero_point, geometry, epilogue, y, scratch, threads);
#ifndef SLIMSERVE_RUNTIME_REFERENCE_WINOGRAD_INT8_H_
#define SLIMSERVE_RUNTIME_REFERENCE_WINOGRAD_INT8_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace slimserve::runtime::reference {

// Whether this CPU runs WinogradInt8Conv (AVX-512 BW, VL and VNNI).
bool WinogradInt8Available();

// Transformed 3x3 kernels, out_channels a multiple of 16; input channels
// padded with zeros to `depth`, a multiple of 32.
struct WinogradInt8Weights {
  int64_t in_channels = 0, out_channels = 0, depth = 0;
  std::vector<int16_t> u;  // [36][out_channels / 16][depth / 2][16][2]

  // From s8 weights [out_channels][in_channels][3][3].
  static WinogradInt8Weights FromDense(const int8_t* w, int64_t out_channels, int64_t in_channels);
};

enum class Int8ConvType { kUint8, kInt8, kFloat32 };

// Per output channel k, from the integer sum `acc`:
//   v = scale[k] * acc + bias[k] + addend_scale * (addend - addend_zero_point)
//   v = max(v, 0) if relu
// stored as float, or as saturate(round_half_even(v / y_scale) + y_zero_point).
// The addend (optional) has y's type and layout.
struct WinogradInt8Epilogue {
  const float* scale = nullptr;
  const float* bias = nullptr;  // optional
  bool relu = false;
  const void* addend = nullptr;
  float addend_scale = 1;
  int32_t addend_zero_point = 0;
  Int8ConvType y_type = Int8ConvType::kUint8;
  float y_scale = 1;
  int32_t y_zero_point = 0;
};

// Images in channels-last (NHWC) order; out = in + pads - 2 along each axis.
struct WinogradInt8Geometry {
  int64_t batch = 0, height = 0, width = 0, out_height = 0, out_width = 0, pad_top = 0, pad_left = 0;
};

size_t WinogradInt8ScratchBytes(const WinogradInt8Weights& w, const WinogradInt8Geometry& g, int num_threads);

// y = epilogue(conv3x3(x - x_zero_point, w)), x of w.in_channels 8-bit
// integers (signed if x_signed), y of w.out_channels.
void WinogradInt8Conv(const WinogradInt8Weights& w, const void* x, bool x_signed, int32_t x_zero_point,
                      const WinogradInt8Geometry& g, const WinogradInt8Epilogue& e, void* y, void* scratch,
                      int num_threads);

}  // namespace slimserve::runtime::reference

#endif  // SLIMSERVE_RUNTIME_REFERENCE_WINOGRAD_INT8_H_
