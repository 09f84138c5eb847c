#include "runtime/dtype.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace slimserve::runtime {
namespace {

// float16 and bfloat16 are stored as their bits (uint16). Both are IEEE-style
// binary formats, so one pair of conversions, parameterized by the widths of
// the exponent and mantissa fields, serves them.
struct HalfFormat {
  int exponent_bits;
  int mantissa_bits;
};
constexpr HalfFormat kFloat16Format{5, 10};
constexpr HalfFormat kBFloat16Format{8, 7};

double HalfBitsToDouble(uint16_t bits, HalfFormat f) {
  const int m = f.mantissa_bits, bias = (1 << (f.exponent_bits - 1)) - 1;
  const int exponent = (bits >> m) & ((1 << f.exponent_bits) - 1);
  const double mantissa = bits & ((1 << m) - 1);
  const double sign = (bits & 0x8000) != 0 ? -1.0 : 1.0;
  if (exponent == (1 << f.exponent_bits) - 1) {
    return mantissa == 0 ? sign * std::numeric_limits<double>::infinity()
                         : std::numeric_limits<double>::quiet_NaN();
  }
  if (exponent == 0) return sign * std::ldexp(mantissa, 1 - bias - m);  // subnormal
  return sign * std::ldexp(mantissa + (1 << m), exponent - bias - m);
}

// Rounds to the nearest value of the format, ties to even (IEEE's default).
// Converting from double directly avoids rounding twice via float.
uint16_t DoubleToHalfBits(double x, HalfFormat f) {
  const int m = f.mantissa_bits, bias = (1 << (f.exponent_bits - 1)) - 1;
  const uint16_t sign = std::signbit(x) ? 0x8000 : 0;
  const int64_t inf = int64_t{(1 << f.exponent_bits) - 1} << m;
  if (std::isnan(x)) return static_cast<uint16_t>(sign | inf | (1 << (m - 1)));  // quiet NaN
  const double a = std::fabs(x);
  if (a == 0 || std::isinf(a)) return static_cast<uint16_t>(sign | (a == 0 ? 0 : inf));
  int e;
  std::frexp(a, &e);              // a = f * 2^e with 0.5 <= f < 1
  e = std::max(e - 1, 1 - bias);  // exponent of the leading bit; subnormals share the least
  // a in units of the last mantissa bit; nearbyint rounds ties to even.
  const int64_t units = static_cast<int64_t>(std::nearbyint(std::ldexp(a, m - e)));
  // A normal value's leading bit adds 1 to the exponent field, and rounding up
  // to the next power of two carries into it once more: addition gets both
  // right, and runs into the infinity pattern on overflow.
  const int64_t bits = (int64_t{e + bias - 1} << m) + units;
  return static_cast<uint16_t>(sign | std::min(bits, inf));
}

}  // namespace

size_t DataTypeSize(DataType type) {
  switch (type) {
    case DataType::kFloat32: return 4;
    case DataType::kUint8: return 1;
    case DataType::kInt8: return 1;
    case DataType::kUint16: return 2;
    case DataType::kInt16: return 2;
    case DataType::kInt32: return 4;
    case DataType::kInt64: return 8;
    case DataType::kBool: return 1;
    case DataType::kFloat16: return 2;
    case DataType::kFloat64: return 8;
    case DataType::kUint32: return 4;
    case DataType::kUint64: return 8;
    case DataType::kBFloat16: return 2;
    case DataType::kUndefined:
    case DataType::kString: return 0;
  }
  return 0;
}

std::string DataTypeName(DataType type) {
  switch (type) {
    case DataType::kUndefined: return "undefined";
    case DataType::kFloat32: return "float32";
    case DataType::kUint8: return "uint8";
    case DataType::kInt8: return "int8";
    case DataType::kUint16: return "uint16";
    case DataType::kInt16: return "int16";
    case DataType::kInt32: return "int32";
    case DataType::kInt64: return "int64";
    case DataType::kString: return "string";
    case DataType::kBool: return "bool";
    case DataType::kFloat16: return "float16";
    case DataType::kFloat64: return "float64";
    case DataType::kUint32: return "uint32";
    case DataType::kUint64: return "uint64";
    case DataType::kBFloat16: return "bfloat16";
  }
  return "dtype(" + std::to_string(static_cast<int>(type)) + ")";
}

bool IsSupportedDataType(DataType type) {
  return type != DataType::kUndefined && type != DataType::kString &&
         DataTypeSize(type) != 0;
}

bool IsHalfFloat(DataType type) {
  return type == DataType::kFloat16 || type == DataType::kBFloat16;
}

double HalfToDouble(uint16_t bits, DataType type) {
  return HalfBitsToDouble(bits, type == DataType::kBFloat16 ? kBFloat16Format : kFloat16Format);
}

uint16_t DoubleToHalf(double value, DataType type) {
  return DoubleToHalfBits(value, type == DataType::kBFloat16 ? kBFloat16Format : kFloat16Format);
}

}  // namespace slimserve::runtime
