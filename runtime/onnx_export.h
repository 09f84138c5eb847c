// Writes a runtime Graph as an ONNX model (ModelProto): nodes, initializers
// (raw little-endian data), typed inputs and outputs, the default-domain
// opset. What the graph passes fuse into the runtime's own ops (domain
// "slimserve") has no ONNX form: export a graph before fusion.
//
//   RETURN_IF_ERROR(ExportOnnxFile(graph, "model.onnx"));
#ifndef SLIMSERVE_RUNTIME_ONNX_EXPORT_H_
#define SLIMSERVE_RUNTIME_ONNX_EXPORT_H_

#include <string>

#include "absl/status/statusor.h"
#include "runtime/graph.h"

namespace slimserve::runtime {

absl::StatusOr<std::string> ExportOnnxBytes(const Graph& graph);
// Written to a temporary file beside `path`, then renamed: readers never see
// half a model.
absl::Status ExportOnnxFile(const Graph& graph, const std::string& path);

}  // namespace slimserve::runtime

#endif  // SLIMSERVE_RUNTIME_ONNX_EXPORT_H_
