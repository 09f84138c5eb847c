// The sparse 1x1 convolution against a plain dense loop, in every layout
// pair, with bias, residual addend and activations, at channel and pixel
// counts that leave partial blocks and tiles.
#include "runtime/reference/sparse.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace slimserve::runtime::reference {
namespace {

using L = SparseLayout;

// Index of (n, c, s) in a batch of images of `channels` x `spatial` in `layout`.
int64_t At(L layout, int64_t n, int64_t c, int64_t s, int64_t channels, int64_t spatial) {
  switch (layout) {
    case L::kRowMajor: return (n * channels + c) * spatial + s;
    case L::kChannelsLast: return (n * spatial + s) * channels + c;
    case L::kBlocked16: {
      const int64_t padded = (channels + 15) / 16 * 16;
      return n * padded * spatial + (c / 16) * 16 * spatial + s * 16 + c % 16;
    }
  }
  return 0;
}

int64_t Size(L layout, int64_t batch, int64_t channels, int64_t spatial) {
  return batch * (layout == L::kBlocked16 ? (channels + 15) / 16 * 16 : channels) * spatial;
}

struct Case {
  int64_t batch, in, out, spatial;
  double density;
  bool bias, addend;
  Activation activation;
};

void Check(const Case& k, L x_layout, L y_layout, int threads) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> w(k.out * k.in), bias(k.out), x(Size(x_layout, k.batch, k.in, k.spatial), 123.0f);
  for (float& v : w) v = (u(rng) + 1) / 2 < k.density ? u(rng) : 0.0f;
  for (float& v : bias) v = u(rng);
  std::vector<float> xs(k.batch * k.in * k.spatial), addend(Size(y_layout, k.batch, k.out, k.spatial), 0.0f);
  for (int64_t n = 0; n < k.batch; ++n) {
    for (int64_t c = 0; c < k.in; ++c) {
      for (int64_t s = 0; s < k.spatial; ++s) x[At(x_layout, n, c, s, k.in, k.spatial)] = xs[(n * k.in + c) * k.spatial + s] = u(rng);
    }
    for (int64_t c = 0; c < k.out; ++c) {
      for (int64_t s = 0; s < k.spatial; ++s) addend[At(y_layout, n, c, s, k.out, k.spatial)] = u(rng);
    }
  }
  const SparseRows rows = SparseRows::FromDense(w.data(), k.out, k.in);
  std::vector<float> y(addend.size(), -99.0f), scratch(k.in * k.spatial);
  SparseConv1x1(rows, k.bias ? bias.data() : nullptr, k.addend ? addend.data() : nullptr, k.activation, x.data(),
                x_layout, y.data(), y_layout, k.batch, k.spatial, scratch.data(), threads);
  double worst = 0;
  for (int64_t n = 0; n < k.batch; ++n) {
    for (int64_t o = 0; o < k.out; ++o) {
      for (int64_t s = 0; s < k.spatial; ++s) {
        const int64_t at = At(y_layout, n, o, s, k.out, k.spatial);
        double sum = (k.bias ? bias[o] : 0) + (k.addend ? addend[at] : 0);
        for (int64_t c = 0; c < k.in; ++c) sum += double{w[o * k.in + c]} * xs[(n * k.in + c) * k.spatial + s];
        worst = std::max<double>(worst, std::abs(k.activation.Apply(static_cast<float>(sum)) - y[at]));
      }
    }
  }
  EXPECT_LT(worst, 1e-4) << "x layout " << static_cast<int>(x_layout) << ", y layout " << static_cast<int>(y_layout)
                         << ", threads " << threads;
}

TEST(SparseConv1x1, MatchesDenseInEveryLayout) {
  Activation relu6{Activation::Kind::kClip, 0, 6};
  Activation hard_swish{Activation::Kind::kHardSwish};
  hard_swish.scale = 0.5f;
  const Case cases[] = {
      {2, 24, 48, 49, 0.1, true, false, relu6},        // partial channel block in, one tile of 49 pixels
      {1, 64, 32, 196, 0.3, true, true, Activation{}},  // residual, tiles of 64 + 4
      {2, 40, 16, 130, 0.05, false, true, hard_swish},  // no bias, an activation applied after the tile
      {1, 16, 32, 7, 0.0, true, false, Activation{Activation::Kind::kRelu}},  // all zero: the bias
  };
  for (const Case& k : cases) {
    for (const L x_layout : {L::kRowMajor, L::kBlocked16, L::kChannelsLast}) {
      for (const L y_layout : {L::kRowMajor, L::kBlocked16, L::kChannelsLast}) {
        if (!SparseChannelGroups() && (x_layout != L::kRowMajor || y_layout != L::kRowMajor)) continue;
        for (int threads : {1, 2}) Check(k, x_layout, y_layout, threads);
      }
    }
  }
}

TEST(SparseRows, KeepsOnlyNonZeroWeights) {
  const float dense[] = {0, 1.5f, 0, 0, 0, 0, -2, 0, 3};
  const SparseRows rows = SparseRows::FromDense(dense, 3, 3);
  EXPECT_EQ(rows.start, (std::vector<int64_t>{0, 1, 1, 3}));
  EXPECT_EQ(rows.index, (std::vector<int32_t>{1, 0, 2}));
  EXPECT_EQ(rows.value, (std::vector<float>{1.5f, -2, 3}));
  EXPECT_DOUBLE_EQ(rows.density(), 3.0 / 9);
}

}  // namespace
}  // namespace slimserve::runtime::reference
