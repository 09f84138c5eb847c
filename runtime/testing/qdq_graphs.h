// Small int8 models in ONNX's QDQ form, for the tests of the quantized-
// pattern pass and the int8 kernels: one as slimserve's quantizer writes
// them (compression/quantize.cc), one as ONNX Runtime's QDQ quantizer does.
#ifndef SLIMSERVE_RUNTIME_TESTING_QDQ_GRAPHS_H_
#define SLIMSERVE_RUNTIME_TESTING_QDQ_GRAPHS_H_

#include "runtime/graph.h"

namespace slimserve::runtime::testing {

// x [N, 16, 8, 8] -> QDQ (uint8, zero point 128) -> Conv 3x3 + bias -> Relu
// -> QDQ -> Conv 3x3 -> Add x -> Relu -> MaxPool 2x2 -> QDQ -> Conv 1x1 ->
// Relu -> GlobalAveragePool -> Flatten -> QDQ -> Gemm (transB) -> y [N, 10].
// Weights: int8, symmetric, one scale per output channel. With
// `int8_residual` the Add reads x through its QDQ pair (as the quantizer
// writes residual blocks now), else x itself (as it did before).
Graph SlimserveQdqGraph(bool int8_residual = true);

// x [N, 16, 8, 8] -> QDQ (uint8) -> Conv 3x3 + bias (int8 weights, one
// scale per output channel) -> Relu -> QDQ -> Conv 3x3 with float weights
// (unquantized) -> y [N, 16, 8, 8]: an int8 model with one node kept in fp32.
Graph MixedPrecisionQdqGraph();

// x [N, 8, 6, 6] -> QDQ (int8) -> Conv (per-tensor weights, int32 bias) ->
// QDQ -> Relu -> QDQ -> Conv (per-channel) -> QDQ -> Add (QDQ'd Relu output)
// -> QDQ -> MaxPool -> QDQ -> Conv with float weights (unquantized) -> Sigmoid
// -> Flatten -> QDQ -> MatMul (per-channel) -> QDQ -> y [N, 6]. Every
// activation in int8 with its own zero point, as ONNX Runtime writes them.
Graph OrtQdqGraph();

// a [2, 5, 12] -> DynamicQuantizeLinear -> DequantizeLinear -> MatMul
// (per-channel int8 weights) -> Add bias -> y [2, 5, 7].
Graph DynamicQdqGraph();

}  // namespace slimserve::runtime::testing

#endif  // SLIMSERVE_RUNTIME_TESTING_QDQ_GRAPHS_H_
