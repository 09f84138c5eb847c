// Cross-checks a backend against the reference kernels (gtest assertions).
#ifndef SLIMSERVE_RUNTIME_TESTING_BACKEND_CHECK_H_
#define SLIMSERVE_RUNTIME_TESTING_BACKEND_CHECK_H_

#include <string>
#include <vector>

#include "runtime/graph.h"
#include "runtime/kernel.h"

namespace slimserve::runtime::testing {

// Runs `graph` on the reference backend and (optimized, if asked) on
// `backend`; outputs must agree within rtol 1e-3, atol 1e-4, every op in `on`
// must run on `backend` and every op in `off` must be left to another one.
void ExpectMatchesReference(Backend& backend, const Graph& graph, const std::vector<Tensor>& inputs,
                            const std::vector<std::string>& on,
                            const std::vector<std::string>& off = {}, bool optimize = false);

// A single-Conv graph, for the convolution cases both backends check.
struct ConvCase {
  const char* name;
  Shape x, w;
  std::vector<int64_t> strides, pads, dilations;
  int64_t group;
  std::string auto_pad;
  bool bias;
};
Graph ConvGraph(const ConvCase& c);

// PaddleOCR's PP-LCNetV3 block on x [1, 3, 6, 6]: Conv with bias, a scalar
// affine, HardSwish written as x * Clip(x + 3, 0, 6) / 6, the scalar affine
// 0.4 * h - 0.8. Optimized, it is one FusedConv.
Graph ScaledHardSwishConvGraph();

}  // namespace slimserve::runtime::testing

#endif  // SLIMSERVE_RUNTIME_TESTING_BACKEND_CHECK_H_
