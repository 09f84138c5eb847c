// Element types of tensors. The numeric values are ONNX's TensorProto.DataType,
// so conversion from and to ONNX is a cast.
#ifndef SLIMSERVE_RUNTIME_DTYPE_H_
#define SLIMSERVE_RUNTIME_DTYPE_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace slimserve::runtime {

enum class DataType : int32_t {
  kUndefined = 0,
  kFloat32 = 1,
  kUint8 = 2,
  kInt8 = 3,
  kUint16 = 4,
  kInt16 = 5,
  kInt32 = 6,
  kInt64 = 7,
  kString = 8,
  kBool = 9,
  kFloat16 = 10,
  kFloat64 = 11,
  kUint32 = 12,
  kUint64 = 13,
  kBFloat16 = 16,
};

// Bytes per element; 0 for kUndefined and kString (not storable as a dense tensor).
size_t DataTypeSize(DataType type);

// "float32", "int64", ... ; "dtype(N)" for values outside the enum.
std::string DataTypeName(DataType type);

// True for the types this runtime stores and computes on.
bool IsSupportedDataType(DataType type);

// float16 and bfloat16, which tensors store as their 16 bits.
bool IsHalfFloat(DataType type);
// Conversions of a float16/bfloat16 bit pattern; to half rounds to nearest even.
double HalfToDouble(uint16_t bits, DataType type);
uint16_t DoubleToHalf(double value, DataType type);

template <typename T>
struct DataTypeOf;
template <> struct DataTypeOf<float> { static constexpr DataType value = DataType::kFloat32; };
template <> struct DataTypeOf<double> { static constexpr DataType value = DataType::kFloat64; };
template <> struct DataTypeOf<uint8_t> { static constexpr DataType value = DataType::kUint8; };
template <> struct DataTypeOf<int8_t> { static constexpr DataType value = DataType::kInt8; };
template <> struct DataTypeOf<uint16_t> { static constexpr DataType value = DataType::kUint16; };
template <> struct DataTypeOf<int16_t> { static constexpr DataType value = DataType::kInt16; };
template <> struct DataTypeOf<int32_t> { static constexpr DataType value = DataType::kInt32; };
template <> struct DataTypeOf<int64_t> { static constexpr DataType value = DataType::kInt64; };
template <> struct DataTypeOf<uint32_t> { static constexpr DataType value = DataType::kUint32; };
template <> struct DataTypeOf<uint64_t> { static constexpr DataType value = DataType::kUint64; };
template <> struct DataTypeOf<bool> { static constexpr DataType value = DataType::kBool; };

}  // namespace slimserve::runtime

#endif  // SLIMSERVE_RUNTIME_DTYPE_H_
