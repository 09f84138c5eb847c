// Reads ONNX models (protobuf ModelProto, via libonnx) into a runtime Graph.
//
// Every size is checked before anything is allocated; malformed input of any
// kind yields an InvalidArgument (or Unimplemented for valid ONNX this runtime
// does not support) that names the problem. Constant nodes become
// initializers. Thread-safe (no shared state).
//
//   ImportOptions options;
//   ASSIGN_OR_RETURN(Graph graph, ImportOnnxFile("model.onnx", options));
#ifndef SLIMSERVE_RUNTIME_ONNX_IMPORT_H_
#define SLIMSERVE_RUNTIME_ONNX_IMPORT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/graph.h"

namespace slimserve::runtime {

// Newest ONNX default-domain opset this runtime implements.
inline constexpr int64_t kMaxSupportedOpset = 17;

struct ImportOptions {
  // Largest model file accepted (protobuf cannot parse more than 2 GiB).
  int64_t max_model_bytes = int64_t{2} << 30;
  // Largest single tensor (initializer or external data) accepted.
  int64_t max_tensor_bytes = int64_t{4} << 30;
};

// `path`'s folder is where external-data files must live.
absl::StatusOr<Graph> ImportOnnxFile(const std::string& path, const ImportOptions& options);

// `base_dir` is where external-data files must live; "" forbids external data.
absl::StatusOr<Graph> ImportOnnxBytes(absl::string_view bytes, const std::string& base_dir,
                                      const ImportOptions& options);

}  // namespace slimserve::runtime

#endif  // SLIMSERVE_RUNTIME_ONNX_IMPORT_H_
