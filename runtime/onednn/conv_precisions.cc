// What oneDNN's convolution kernels reach on this CPU in each precision, on
// ResNet-style layers: fp32 direct and Winograd, u8 x s8 (VNNI) with u8 or
// f32 output, and bf16. Not a test: a measurement that tells how much an int8
// or bf16 path can gain over the fp32 one before any of it is built.
//
//   OMP_NUM_THREADS=2 build/release/runtime/onednn/conv_precisions
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <unordered_map>
#include <vector>

#include "dnnl.hpp"

namespace {

using dnnl::memory;

// Median of 15 timed runs after 3 untimed ones, in ms.
double Median(dnnl::stream& s, dnnl::primitive& p, std::unordered_map<int, memory>& args) {
  std::vector<double> ms;
  for (int i = 0; i < 18; ++i) {
    const auto start = std::chrono::steady_clock::now();
    p.execute(s, args);
    s.wait();
    if (i >= 3) ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

struct Layer {
  int n, c, hw, k, r;
};

}  // namespace

int main(int argc, char**) {
  if (argc > 1) {
    std::printf("usage: OMP_NUM_THREADS=T conv_precisions   (no options)\n");
    return 0;
  }
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  using dt = memory::data_type;
  const auto any = memory::format_tag::any;
  std::printf("| layer (batch, channels, size, filters, kernel) | GFLOP | f32 direct | f32 Winograd | u8s8->u8 | u8s8->f32 | bf16 |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
  for (const Layer l : {Layer{16, 64, 56, 64, 3}, Layer{16, 128, 28, 128, 3}, Layer{16, 256, 14, 256, 3},
                        Layer{16, 512, 7, 512, 3}, Layer{16, 256, 56, 64, 1}, Layer{1, 128, 28, 128, 3}}) {
    const memory::dims src{l.n, l.c, l.hw, l.hw}, weights{l.k, l.c, l.r, l.r}, dst{l.n, l.k, l.hw, l.hw};
    const memory::dims strides{1, 1}, pad{l.r / 2, l.r / 2};
    const double gflop = 2.0 * l.n * l.k * l.hw * l.hw * l.c * l.r * l.r / 1e9;
    auto run = [&](dt in, dt w, dt out, dnnl::algorithm algorithm) -> double {
      try {
        const memory::desc sd(src, in, any), wd(weights, w, any), dd(dst, out, any), bd({l.k}, dt::f32, memory::format_tag::a);
        dnnl::primitive_attr attr;
        if (in == dt::u8) attr.set_output_scales(2, std::vector<float>(l.k, 0.01f));
        dnnl::post_ops relu;
        relu.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0, 0);
        attr.set_post_ops(relu);
        dnnl::convolution_forward::primitive_desc pd(
            {dnnl::prop_kind::forward_inference, algorithm, sd, wd, bd, dd, strides, pad, pad}, attr, engine);
        std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, memory(pd.src_desc(), engine)},
                                                {DNNL_ARG_WEIGHTS, memory(pd.weights_desc(), engine)},
                                                {DNNL_ARG_BIAS, memory(bd, engine)},
                                                {DNNL_ARG_DST, memory(pd.dst_desc(), engine)}};
        dnnl::convolution_forward conv(pd);
        return Median(stream, conv, args);
      } catch (const dnnl::error&) {
        return 0;  // no implementation for this configuration
      }
    };
    auto cell = [&](double ms) {
      if (ms <= 0) return std::string("-");
      char text[64];
      std::snprintf(text, sizeof(text), "%.2f ms (%.0f GOPS)", ms, gflop / ms * 1e3);
      return std::string(text);
    };
    const auto direct = dnnl::algorithm::convolution_direct;
    std::printf("| %d, %d, %dx%d, %d, %dx%d | %.2f | %s | %s | %s | %s | %s |\n", l.n, l.c, l.hw, l.hw, l.k, l.r, l.r,
                gflop, cell(run(dt::f32, dt::f32, dt::f32, direct)).c_str(),
                cell(l.r == 3 ? run(dt::f32, dt::f32, dt::f32, dnnl::algorithm::convolution_winograd) : 0).c_str(),
                cell(run(dt::u8, dt::s8, dt::u8, direct)).c_str(), cell(run(dt::u8, dt::s8, dt::f32, direct)).c_str(),
                cell(run(dt::bf16, dt::bf16, dt::bf16, direct)).c_str());
  }
  return 0;
}
