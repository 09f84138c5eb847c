#include "runtime/tensor.h"

#include "gtest/gtest.h"

namespace slimserve::runtime {
namespace {

TEST(TensorTest, AllocateIsZeroedAndAligned) {
  Tensor t = Tensor::Allocate(DataType::kFloat32, {2, 3}).value();
  EXPECT_EQ(t.num_elements(), 6);
  EXPECT_EQ(t.byte_size(), 24u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % Tensor::kAlignment, 0u);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(t.data<float>()[i], 0.0f);
}

TEST(TensorTest, RejectsNegativeAndOverflowingShapes) {
  EXPECT_EQ(Tensor::Allocate(DataType::kFloat32, {-1, 3}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Tensor::Allocate(DataType::kFloat32, {int64_t{1} << 40, int64_t{1} << 40}).status().code(),
            absl::StatusCode::kInvalidArgument);
  // 2^40 elements is a valid shape but over the byte limit: refused before allocation.
  EXPECT_EQ(Tensor::Allocate(DataType::kFloat32, {int64_t{1} << 40}).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(TensorTest, BroadcastShapes) {
  EXPECT_EQ(BroadcastShapes({2, 1, 4}, {3, 1}).value(), (Shape{2, 3, 4}));
  EXPECT_EQ(BroadcastShapes({}, {5}).value(), (Shape{5}));
  EXPECT_FALSE(BroadcastShapes({2, 3}, {4}).ok());
}

TEST(TensorTest, CopiesShareStorageAndCloneDoesNot) {
  Tensor a = Tensor::FromVector<int64_t>({3}, {1, 2, 3});
  Tensor b = a;
  Tensor c = a.Clone();
  a.data<int64_t>()[0] = 7;
  EXPECT_EQ(b.GetInt(0), 7);
  EXPECT_EQ(c.GetInt(0), 1);
  EXPECT_EQ(c.ToInt64Vector(), (std::vector<int64_t>{1, 2, 3}));
}

}  // namespace
}  // namespace slimserve::runtime
