// int8 quantization of a graph into ONNX's QDQ form: every Conv, Gemm and
// MatMul whose weights are constant reads its weights through a
// DequantizeLinear of symmetric int8 values with one scale per output
// channel, and its activation input through a QuantizeLinear/
// DequantizeLinear pair (uint8, asymmetric). The result is a standard ONNX
// graph: runnable here, by ONNX Runtime (which fuses the pairs into its
// int8 kernels), and by slimserve's int8 kernels.
//
// Static quantization fixes the activation scales from calibration runs
// (the min and max each activation took, percentiles of its values, the
// range that minimizes the quantization error, or the one that keeps the
// most information, by KL divergence);
// dynamic quantization computes them per request with DynamicQuantizeLinear.
// bf16 rounds the same nodes' weights and activations to bfloat16 instead
// (Cast to bfloat16 and back), the form a bf16 kernel computes in.
//
//   RETURN_IF_ERROR(Optimize(graph, {.fuse = false}));  // fold BN first
//   ASSIGN_OR_RETURN(QuantizeReport report, Quantize(graph, options, calibration_batches));
#ifndef SLIMSERVE_COMPRESSION_QUANTIZE_H_
#define SLIMSERVE_COMPRESSION_QUANTIZE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "compression/progress.h"
#include "runtime/graph.h"
#include "runtime/tensor.h"

namespace slimserve::compression {

enum class Calibration {
  kMinMax,      // the whole range each activation took
  kPercentile,  // clipped at the `percentile`-th percentile of each tail
  kMse,         // the clipped range whose uint8 quantization error (mean square) is least
  kEntropy,     // the clipped range whose uint8 histogram diverges least (KL) from the values'
};

enum class Precision {
  kInt8Static,   // activation scales from calibration data
  kInt8Dynamic,  // activation scales per request, no calibration
  kBf16,         // weights and activations rounded to bfloat16 (Cast pairs)
};

struct QuantizeOptions {
  Precision precision = Precision::kInt8Static;
  Calibration calibration = Calibration::kMinMax;
  double percentile = 99.99;
  // Static only: int8 activations (zero point in [-128, 127]) instead of
  // uint8, for runtimes whose int8 kernels take s8 x s8.
  bool s8_activations = false;
  std::vector<std::string> keep_fp32;  // node names, op types or "depthwise", left in fp32
  int num_threads = 0;                 // for the calibration runs; 0: one per core
  Progress progress;                   // over the calibration runs; may be empty
};

struct QuantizeReport {
  std::vector<std::string> quantized;  // Node::Describe() of each quantized (or bf16) node
  std::vector<std::string> kept_fp32;  // the others that could have been, and why
  int64_t calibration_rows = 0;
};

// Rewrites `graph` in place. `calibration` holds batches of graph inputs (in
// the order of graph.inputs); static quantization needs at least one. Fails
// when the graph has nothing to quantize.
absl::StatusOr<QuantizeReport> Quantize(runtime::Graph& graph, const QuantizeOptions& options,
                                        absl::Span<const std::vector<runtime::Tensor>> calibration);

}  // namespace slimserve::compression

#endif  // SLIMSERVE_COMPRESSION_QUANTIZE_H_
