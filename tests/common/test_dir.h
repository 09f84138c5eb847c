// Runs a test folder in the ONNX conformance-suite format against the
// runtime: model.onnx plus test_data_set_N/{input,output}_K.pb. Shared by the
// conformance runner and the real-model tests.
#ifndef SLIMSERVE_TESTS_COMMON_TEST_DIR_H_
#define SLIMSERVE_TESTS_COMMON_TEST_DIR_H_

#include <filesystem>
#include <string>

#include "runtime/backends.h"

namespace slimserve::tests {

struct DirTestOptions {
  double rtol = 1e-3;
  double atol = 1e-7;
  const runtime::BackendSet* backends = nullptr;  // null: reference only
  bool optimize = false;                          // run the graph passes first
};

enum class Outcome { kPassed, kFailed, kSkipped };

struct DirTestResult {
  Outcome outcome = Outcome::kPassed;
  // Why it failed or was skipped. A skip is an Unimplemented status: an
  // operator or type the runtime does not support.
  std::string reason;
  double max_abs_diff = 0;  // over all compared outputs
};

DirTestResult RunTestDir(const std::filesystem::path& dir, const DirTestOptions& options);

}  // namespace slimserve::tests

#endif  // SLIMSERVE_TESTS_COMMON_TEST_DIR_H_
