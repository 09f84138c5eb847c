#include "compression/profile.h"

#include <gtest/gtest.h>

namespace slimserve::compression {
namespace {

TEST(ProfileTest, TextRoundTripsThroughTheCanonicalForm) {
  for (const char* text : {"fp32", "bf16", "int8-dynamic", "int8-static,calibration=minmax,samples=512",
                           "int8-static,calibration=percentile,percentile=99.9,samples=64,data=traffic,keep=Conv",
                           "int8-static,calibration=entropy,samples=512,data=calib", "bf16,keep=Gemm,keep=a",
                           "int8-static,calibration=minmax,samples=512,activations=s8",
                           "pruned,structure=filter,sparsity=0.3,criterion=l1,context=local,samples=512",
                           "pruned,structure=weight,sparsity=0.8,criterion=l2,context=global,samples=64,data=calib",
                           "pruned,structure=filter,sparsity=0.5,criterion=l1,context=local,samples=512 -> "
                           "int8-static,calibration=minmax,samples=512",
                           "pruned,structure=weight,sparsity=0.9,criterion=l1,context=sensitivity,samples=512",
                           "low-rank,ratio=0.3,samples=512", "low-rank,energy=0.95,samples=64,data=calib",
                           "low-rank,ratio=0.5,samples=512 -> int8-dynamic"}) {
    absl::StatusOr<Profile> p = ParseProfile(text);
    ASSERT_TRUE(p.ok()) << text << ": " << p.status();
    EXPECT_EQ(ProfileText(*p), text);
  }
}

TEST(ProfileTest, DefaultsAndOrderDoNotChangeTheCanonicalText) {
  const Profile a = *ParseProfile("int8-static,keep=b,keep=a,keep=a");
  const Profile b = *ParseProfile("int8-static,calibration=minmax,keep=a,samples=512,keep=b");
  EXPECT_EQ(ProfileText(a), "int8-static,calibration=minmax,samples=512,keep=a,keep=b");
  EXPECT_EQ(ProfileText(a), ProfileText(b));
  EXPECT_EQ(DefaultVariantName(a), "int8_static");
}

TEST(ProfileTest, AChainSharesItsCalibrationData) {
  const Profile chain = *ParseProfile("pruned,sparsity=0.5 -> int8-static,data=calib");
  EXPECT_EQ(chain.kind, ProfileKind::kPruned);
  ASSERT_EQ(chain.then.size(), 1u);
  EXPECT_EQ(chain.then[0].kind, ProfileKind::kInt8Static);
  EXPECT_EQ(chain.data, "calib");
  EXPECT_EQ(DefaultVariantName(chain), "pruned_int8_static");
  EXPECT_EQ(ProfileText(chain),
            "pruned,structure=filter,sparsity=0.5,criterion=l1,context=local,samples=512,data=calib -> "
            "int8-static,calibration=minmax,samples=512,data=calib");
  EXPECT_TRUE(UsesCalibration(*ParseProfile("pruned -> bf16")));
  EXPECT_FALSE(UsesCalibration(*ParseProfile("bf16")));
  EXPECT_TRUE(UsesCalibration(*ParseProfile("low-rank")));
  EXPECT_EQ(DefaultVariantName(*ParseProfile("pruned -> low-rank -> int8-dynamic")), "pruned_low_rank_int8_dynamic");
}

TEST(ProfileTest, ErrorsNameWhatIsWrong) {
  const std::pair<const char*, const char*> cases[] = {
      {"int4", "unknown profile 'int4'"},
      {"int8-static,calibration=kl", "unknown calibration 'kl'"},
      {"int8-static,calibration=percentile,percentile=20", "percentile must be a number in (50, 100]"},
      {"int8-static,samples=0", "samples must be a positive number"},
      {"int8-dynamic,calibration=mse", "'calibration' applies to int8-static only"},
      {"bf16,speed=fast", "unknown profile option 'speed=fast'"},
      {"bf16,keep=", "keep= needs a node name"},
      {"int8-static,activations=u4", "activations are u8 or s8"},
      {"int8-dynamic,activations=s8", "'activations' applies to int8-static only"},
      {"pruned,sparsity=1", "sparsity must be a number in [0, 1)"},
      {"pruned,sparsity=-0.1", "sparsity must be a number in [0, 1)"},
      {"pruned,structure=row", "unknown structure 'row'; known: filter, weight, vector, kernel"},
      {"pruned,criterion=l3", "unknown criterion 'l3'"},
      {"pruned,context=world", "context is local, global or sensitivity"},
      {"pruned,context=sensitivity", "context=sensitivity applies to structure=weight, vector or kernel"},
      {"int8-static,sparsity=0.5", "'sparsity' applies to pruned only"},
      {"pruned,keep=Conv", "'keep' applies to bf16 and int8 only"},
      {"bf16,data=x", "'data' applies to int8-static, pruned and low-rank only"},
      {"low-rank,ratio=1", "ratio must be a number in (0, 1)"},
      {"low-rank,energy=0", "energy must be a number in (0, 1]"},
      {"pruned,ratio=0.5", "'ratio' applies to low-rank only"},
      {"low-rank,sparsity=0.5", "'sparsity' applies to pruned only"},
      {"int8-dynamic -> low-rank", "low-rank cannot follow int8-dynamic"},
      {"int8-static -> pruned", "pruned cannot follow int8-static: prune first, quantize last"},
      {"pruned -> fp32", "fp32 cannot follow pruned"},
      {"pruned,data=a -> int8-static,data=b", "a chain calibrates on one data set"},
      {"pruned -> int4", "unknown profile 'int4'"},
  };
  for (const auto& [text, message] : cases) {
    absl::StatusOr<Profile> p = ParseProfile(text);
    ASSERT_FALSE(p.ok()) << text;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(p.status().message().find(message), std::string::npos) << p.status();
  }
}

}  // namespace
}  // namespace slimserve::compression
