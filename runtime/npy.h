// Reading and writing NumPy .npy files (format 1.0/2.0, little-endian, C order),
// and reading .npz archives of them.
// Used by the CLI and tests to exchange tensors with Python and Node tools.
#ifndef SLIMSERVE_RUNTIME_NPY_H_
#define SLIMSERVE_RUNTIME_NPY_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/tensor.h"

namespace slimserve::runtime {

absl::StatusOr<Tensor> ReadNpy(const std::string& path);
// The arrays of an uncompressed .npz (numpy.savez), by name, in file order.
absl::StatusOr<std::vector<std::pair<std::string, Tensor>>> ReadNpz(const std::string& path);
absl::Status WriteNpy(const std::string& path, const Tensor& tensor);

}  // namespace slimserve::runtime

#endif  // SLIMSERVE_RUNTIME_NPY_H_
