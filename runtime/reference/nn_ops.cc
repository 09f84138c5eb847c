// Neural-network ONNX operators.
#include "runtime/reference/common.h"
#include "runtime/reference/op_registry.h"
#include "runtime/status_macros.h"

namespace slimserve::runtime::reference {

void RegisterNnOps(OpTable& t) {}

}  // namespace slimserve::runtime::reference
