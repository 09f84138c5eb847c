// Cases of the data-movement ops (tensor_ops.cc, resize.cc) and of PRelu and
// Cast that the ONNX conformance suite does not reach: attribute forms of old
// opsets, clamping and overflow edges, element types that are only moved, and
// invalid nodes, which must fail cleanly.
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/reference/op_registry.h"

namespace slimserve::runtime::reference {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

// A node of `op` whose inputs are the defined tensors of a call (an undefined
// tensor stands for an omitted input) and with `outputs` outputs.
struct NodeBuilder {
  Node node;
  NodeBuilder(std::string op, int outputs = 1) {
    node.op_type = std::move(op);
    for (int k = 0; k < outputs; ++k) node.outputs.push_back(absl::StrCat("y", k));
  }
  NodeBuilder& Ints(const std::string& name, std::vector<int64_t> v) {
    node.attributes[name].ints = std::move(v);
    return *this;
  }
  NodeBuilder& Int(const std::string& name, int64_t v) {
    node.attributes[name].i = v;
    return *this;
  }
  NodeBuilder& Float(const std::string& name, float v) {
    node.attributes[name].f = v;
    return *this;
  }
  NodeBuilder& Floats(const std::string& name, std::vector<float> v) {
    node.attributes[name].floats = std::move(v);
    return *this;
  }
  NodeBuilder& String(const std::string& name, std::string v) {
    node.attributes[name].s = std::move(v);
    return *this;
  }
  absl::StatusOr<std::vector<Tensor>> Run(int64_t opset, const std::vector<Tensor>& inputs) {
    node.inputs.clear();
    for (size_t i = 0; i < inputs.size(); ++i) {
      node.inputs.push_back(inputs[i].defined() ? absl::StrCat("x", i) : "");
    }
    return Evaluate(node, opset, inputs, int64_t{1} << 30);
  }
  // The single output, or a failed test.
  Tensor Run1(int64_t opset, const std::vector<Tensor>& inputs) {
    absl::StatusOr<std::vector<Tensor>> out = Run(opset, inputs);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? (*out)[0] : Tensor();
  }
};

template <typename T>
Tensor Make(Shape shape, std::vector<T> values) {
  return Tensor::FromVector(std::move(shape), values);
}
Tensor Ints(std::vector<int64_t> v) { return Make<int64_t>({static_cast<int64_t>(v.size())}, v); }
Tensor Floats(std::vector<float> v) { return Make<float>({static_cast<int64_t>(v.size())}, v); }

template <typename T>
std::vector<T> Values(const Tensor& t) {
  if (!t.defined()) return {};
  return std::vector<T>(t.data<T>(), t.data<T>() + t.num_elements());
}

bool IsInvalid(const absl::StatusOr<std::vector<Tensor>>& s) {
  return s.status().code() == absl::StatusCode::kInvalidArgument;
}

TEST(SliceTest, NegativeStepClampsBothEnds) {
  const Tensor x = Make<int32_t>({10}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  Tensor y = NodeBuilder("Slice").Run1(13, {x, Ints({kMax}), Ints({kMin}), Ints({0}), Ints({-3})});
  EXPECT_THAT(Values<int32_t>(y), ElementsAre(9, 6, 3, 0));
  // A step longer than the axis takes the first element only.
  y = NodeBuilder("Slice").Run1(13, {x, Ints({2}), Ints({10}), Tensor(), Ints({kMax})});
  EXPECT_THAT(Values<int32_t>(y), ElementsAre(2));
  y = NodeBuilder("Slice").Run1(13, {x, Ints({-2}), Ints({-10}), Tensor(), Ints({kMin})});
  EXPECT_THAT(Values<int32_t>(y), ElementsAre(8));
}

TEST(SliceTest, AttributeFormBeforeOpset10) {
  const Tensor x = Make<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor y =
      NodeBuilder("Slice").Ints("starts", {1}).Ints("ends", {1000}).Ints("axes", {-1}).Run1(9, {x});
  EXPECT_EQ(y.shape(), (Shape{2, 2}));
  EXPECT_THAT(Values<float>(y), ElementsAre(2, 3, 5, 6));
}

TEST(SliceTest, RejectsInvalidNodes) {
  const Tensor x = Make<float>({4}, {1, 2, 3, 4});
  EXPECT_TRUE(
      IsInvalid(NodeBuilder("Slice").Run(13, {x, Ints({0}), Ints({4}), Tensor(), Ints({0})})));
  EXPECT_TRUE(
      IsInvalid(NodeBuilder("Slice").Run(13, {x, Ints({0, 0}), Ints({4, 4}), Ints({0, 0})})));
  EXPECT_TRUE(IsInvalid(NodeBuilder("Slice").Run(13, {x, Ints({0}), Ints({4}), Ints({1})})));
  // Shape-deciding inputs must be known when the node is compiled.
  absl::StatusOr<std::vector<Tensor>> unknown =
      NodeBuilder("Slice").Run(13, {x, Tensor::View(DataType::kInt64, {1}, nullptr), Ints({4})});
  EXPECT_THAT(unknown.status().message(), HasSubstr("known at load time"));
}

TEST(SplitTest, AttributeSizesAndUnevenEqualSplit) {
  const Tensor x = Make<int64_t>({5}, {1, 2, 3, 4, 5});
  absl::StatusOr<std::vector<Tensor>> out =
      NodeBuilder("Split", 2).Ints("split", {3, 2}).Run(11, {x});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Values<int64_t>((*out)[0]), ElementsAre(1, 2, 3));
  EXPECT_THAT(Values<int64_t>((*out)[1]), ElementsAre(4, 5));
  EXPECT_TRUE(IsInvalid(NodeBuilder("Split", 2).Run(13, {x})));
  EXPECT_TRUE(IsInvalid(NodeBuilder("Split", 2).Run(13, {x, Ints({kMax, 2})})));
  EXPECT_TRUE(IsInvalid(NodeBuilder("Split", 2).Run(13, {Make<float>({0}, {}), Ints({kMax, 1})})));
}

TEST(PadTest, ReflectAndEdgeWithCropping) {
  const Tensor x = Make<float>({4}, {1, 2, 3, 4});
  // Reflects more than once, and crops the end.
  Tensor y = NodeBuilder("Pad").String("mode", "reflect").Run1(13, {x, Ints({5, -1})});
  EXPECT_THAT(Values<float>(y), ElementsAre(2, 3, 4, 3, 2, 1, 2, 3));
  y = NodeBuilder("Pad").String("mode", "edge").Run1(13, {x, Ints({-1, 2})});
  EXPECT_THAT(Values<float>(y), ElementsAre(2, 3, 4, 4, 4));
  y = NodeBuilder("Pad").Run1(13, {x, Ints({1, 1}), Make<float>({}, {7})});
  EXPECT_THAT(Values<float>(y), ElementsAre(7, 1, 2, 3, 4, 7));
  y = NodeBuilder("Pad")
          .Ints("pads", {0, 1, 0, 1})
          .Float("value", 1.5f)
          .Run1(2, {x.Reshaped({1, 4})});
  EXPECT_THAT(Values<float>(y), ElementsAre(1.5, 1, 2, 3, 4, 1.5));
}

TEST(PadTest, RejectsInvalidPads) {
  const Tensor x = Make<float>({4}, {1, 2, 3, 4});
  EXPECT_TRUE(IsInvalid(NodeBuilder("Pad").Run(13, {x, Ints({-3, -2})})));
  EXPECT_TRUE(IsInvalid(NodeBuilder("Pad").Run(13, {x, Ints({kMin, kMax})})));
  EXPECT_TRUE(IsInvalid(
      NodeBuilder("Pad").String("mode", "edge").Run(13, {Make<float>({0}, {}), Ints({1, 0})})));
}

TEST(ResizeTest, OldOpsetsNearestAndLinear) {
  const Tensor x = Make<float>({5}, {1, 2, 3, 4, 5});
  // Opset 10 (as Upsample): asymmetric; nearest rounds up when shrinking.
  Tensor y = NodeBuilder("Resize").Run1(10, {x, Floats({0.6f})});
  EXPECT_THAT(Values<float>(y), ElementsAre(1, 3, 5));
  y = NodeBuilder("Upsample")
          .String("mode", "linear")
          .Floats("scales", {2})
          .Run1(7, {x.Reshaped({5})});
  EXPECT_THAT(Values<float>(y), ElementsAre(1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 5));
  y = NodeBuilder("Upsample").Run1(9, {Make<uint8_t>({2}, {7, 9}), Floats({3})});
  EXPECT_THAT(Values<uint8_t>(y), ElementsAre(7, 7, 7, 9, 9, 9));
}

TEST(ResizeTest, RejectsOrDeclinesInvalidNodes) {
  const Tensor x = Make<float>({4}, {1, 2, 3, 4});
  EXPECT_TRUE(IsInvalid(NodeBuilder("Resize").Run(13, {x, Tensor(), Floats({2}), Ints({8})})));
  EXPECT_TRUE(IsInvalid(NodeBuilder("Resize").Run(13, {x, Tensor(), Floats({-1})})));
  EXPECT_TRUE(IsInvalid(NodeBuilder("Resize").Run(13, {x, Tensor(), Floats({1e30f})})));
  EXPECT_TRUE(
      IsInvalid(NodeBuilder("Resize").String("mode", "area").Run(13, {x, Tensor(), Floats({2})})));
  EXPECT_EQ(NodeBuilder("Resize")
                .String("mode", "linear")
                .Run(13, {Make<int32_t>({2}, {1, 2}), Tensor(), Floats({2})})
                .status()
                .code(),
            absl::StatusCode::kUnimplemented);
}

TEST(GatherNDTest, BatchDimsAndIndexRange) {
  const Tensor data = Make<int32_t>({2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7});
  Tensor y =
      NodeBuilder("GatherND").Int("batch_dims", 1).Run1(13, {data, Make<int64_t>({2, 1}, {1, 0})});
  EXPECT_EQ(y.shape(), (Shape{2, 2}));
  EXPECT_THAT(Values<int32_t>(y), ElementsAre(2, 3, 4, 5));
  EXPECT_TRUE(IsInvalid(NodeBuilder("GatherND").Run(13, {data, Make<int64_t>({1, 1}, {2})})));
  EXPECT_TRUE(
      IsInvalid(NodeBuilder("GatherND").Run(13, {data, Make<int64_t>({1, 4}, {0, 0, 0, 0})})));
}

TEST(ScatterTest, ReductionsAndBounds) {
  const Tensor data = Make<float>({4}, {1, 2, 3, 4});
  Tensor y = NodeBuilder("ScatterND")
                 .String("reduction", "max")
                 .Run1(18, {data, Make<int64_t>({2, 1}, {-1, 0}), Floats({9, 0})});
  EXPECT_THAT(Values<float>(y), ElementsAre(1, 2, 3, 9));
  y = NodeBuilder("ScatterElements")
          .String("reduction", "add")
          .Run1(16, {data, Make<int32_t>({3}, {1, 1, -4}), Floats({10, 20, 30})});
  EXPECT_THAT(Values<float>(y), ElementsAre(31, 32, 3, 4));
  EXPECT_TRUE(IsInvalid(
      NodeBuilder("ScatterElements").Run(13, {data, Make<int64_t>({1}, {4}), Floats({1})})));
  // Indices larger than data off the axis would address outside it.
  EXPECT_TRUE(IsInvalid(NodeBuilder("GatherElements")
                            .Int("axis", 1)
                            .Run(13, {data.Reshaped({1, 4}), Make<int64_t>({2, 1}, {0, 0})})));
}

TEST(MovementTest, SixteenBitFloatsAreMovedAsBits) {
  const Tensor x = Make<uint16_t>({2}, {0x3c00, 0xc000});
  const Tensor half = Tensor::View(DataType::kFloat16, x.shape(), const_cast<void*>(x.raw_data()));
  Tensor y = NodeBuilder("Tile").Run1(13, {half, Ints({2})});
  EXPECT_EQ(y.dtype(), DataType::kFloat16);
  EXPECT_THAT(Values<uint16_t>(y), ElementsAre(0x3c00, 0xc000, 0x3c00, 0xc000));
  y = NodeBuilder("Expand").Run1(13, {half.Reshaped({2, 1}), Ints({2, 2})});
  EXPECT_THAT(Values<uint16_t>(y), ElementsAre(0x3c00, 0x3c00, 0xc000, 0xc000));
  EXPECT_TRUE(IsInvalid(NodeBuilder("Tile").Run(13, {half, Ints({kMax})})));
  y = NodeBuilder("Tile").Run1(13, {Make<float>({0, 2}, {}), Ints({kMax, 3})});
  EXPECT_EQ(y.shape(), (Shape{0, 6}));
  EXPECT_TRUE(IsInvalid(NodeBuilder("Expand").Run(13, {half, Ints({3})})));
}

TEST(GeneratorTest, RangeOneHotEyeLike) {
  // start + i * delta is computed wider than int16.
  Tensor y = NodeBuilder("Range").Run1(
      11, {Make<int16_t>({}, {-32768}), Make<int16_t>({}, {32767}), Make<int16_t>({}, {16384})});
  EXPECT_THAT(Values<int16_t>(y), ElementsAre(-32768, -16384, 0, 16384));
  y = NodeBuilder("Range").Run1(11, {Make<int64_t>({}, {kMin}), Make<int64_t>({}, {kMax}),
                                     Make<int64_t>({}, {int64_t{1} << 62})});
  EXPECT_THAT(Values<int64_t>(y), ElementsAre(kMin, kMin / 2, 0, int64_t{1} << 62));
  // Integer reductions wrap around.
  y = NodeBuilder("CumSum").Run1(14, {Make<int8_t>({2}, {127, 1}), Make<int64_t>({}, {0})});
  EXPECT_THAT(Values<int8_t>(y), ElementsAre(127, -128));
  EXPECT_TRUE(IsInvalid(NodeBuilder("Range").Run(
      11, {Make<float>({}, {0}), Make<float>({}, {1}), Make<float>({}, {0})})));
  // Float indices truncate; out-of-range ones leave the row off.
  y = NodeBuilder("OneHot").Run1(
      11, {Floats({1.7f, -1, 3, 1e30f}), Make<float>({}, {3}), Floats({0, 1})});
  EXPECT_THAT(Values<float>(y), ElementsAre(0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0));
  y = NodeBuilder("EyeLike").Int("k", kMax).Run1(9, {Make<int32_t>({2, 2}, {5, 5, 5, 5})});
  EXPECT_THAT(Values<int32_t>(y), ElementsAre(0, 0, 0, 0));
}

TEST(PReluTest, ChannelSlopeBeforeOpset7) {
  const Tensor x = Make<float>({1, 2, 3}, {-1, -1, -1, -1, -1, 1});
  Tensor y = NodeBuilder("PRelu").Run1(6, {x, Floats({2, 3})});
  EXPECT_THAT(Values<float>(y), ElementsAre(-2, -2, -2, -3, -3, 1));
  // From opset 7 the slope broadcasts numpy-style, against the last axis.
  EXPECT_TRUE(IsInvalid(NodeBuilder("PRelu").Run(9, {x, Floats({2, 3})})));
}

TEST(CastTest, SixteenBitFloatsRoundToNearestEven) {
  // 1 + 2^-11 is halfway between float16's 1 and 1 + 2^-10: ties go to even.
  // 65520 rounds up out of float16's range.
  Tensor y = NodeBuilder("Cast").Int("to", 10).Run1(
      13, {Make<double>({4}, {1 + 1.0 / 2048, 1 + 3.0 / 2048, 65520, 1e-8})});
  EXPECT_THAT(Values<uint16_t>(y), ElementsAre(0x3c00, 0x3c02, 0x7c00, 0x0000));
  y = NodeBuilder("Cast").Int("to", 16).Run1(13, {Floats({1.00390625f, 1.01171875f})});
  EXPECT_THAT(Values<uint16_t>(y), ElementsAre(0x3f80, 0x3f82));
  y = NodeBuilder("Cast").Int("to", 6).Run1(13, {y});
  EXPECT_THAT(Values<int32_t>(y), ElementsAre(1, 1));
}

}  // namespace
}  // namespace slimserve::runtime::reference
