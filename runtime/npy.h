// Reading and writing NumPy .npy files (format 1.0/2.0, little-endian, C order).
// Used by the CLI and tests to exchange tensors with Python and Node tools.
#ifndef SLIMSERVE_RUNTIME_NPY_H_
#define SLIMSERVE_RUNTIME_NPY_H_

#include <string>

#include "absl/status/statusor.h"
#include "runtime/tensor.h"

namespace slimserve::runtime {

absl::StatusOr<Tensor> ReadNpy(const std::string& path);
absl::Status WriteNpy(const std::string& path, const Tensor& tensor);

}  // namespace slimserve::runtime

#endif  // SLIMSERVE_RUNTIME_NPY_H_
