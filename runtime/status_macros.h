// Early-return helpers for absl::Status and absl::StatusOr.
//
//   RETURN_IF_ERROR(DoThing());
//   ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(DataType::kFloat32, {2, 3}));
#ifndef SLIMSERVE_RUNTIME_STATUS_MACROS_H_
#define SLIMSERVE_RUNTIME_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define SLIMSERVE_CONCAT_INNER(a, b) a##b
#define SLIMSERVE_CONCAT(a, b) SLIMSERVE_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                  \
  do {                                         \
    ::absl::Status _status = (expr);           \
    if (!_status.ok()) return _status;         \
  } while (0)

#define ASSIGN_OR_RETURN(lhs, expr) \
  SLIMSERVE_ASSIGN_OR_RETURN_IMPL(SLIMSERVE_CONCAT(_statusor_, __LINE__), lhs, expr)

#define SLIMSERVE_ASSIGN_OR_RETURN_IMPL(statusor, lhs, expr) \
  auto statusor = (expr);                                    \
  if (!statusor.ok()) return std::move(statusor).status();   \
  lhs = std::move(statusor).value()

#endif  // SLIMSERVE_RUNTIME_STATUS_MACROS_H_
