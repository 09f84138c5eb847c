#include "runtime/kernel.h"

#include "absl/strings/str_cat.h"

namespace slimserve::runtime {

absl::StatusOr<std::unique_ptr<Kernel>> Backend::CompileToRowMajor(const TensorDesc& value) {
  return absl::InternalError(absl::StrCat("backend ", name(), " cannot convert layout ",
                                          value.layout ? value.layout->name() : "row-major"));
}

}  // namespace slimserve::runtime
