// slimctl's commands for the compression service (slimserve.v1.Compression):
// building variants with a live progress bar, listing, promoting, exporting
// and deleting them, and uploading data sets.
#ifndef SLIMSERVE_CLI_VARIANTS_H_
#define SLIMSERVE_CLI_VARIANTS_H_

#include "absl/status/status.h"
#include "cli/args.h"

namespace slimserve::cli {

// slimctl compress MODEL --profile P ... (without --offline).
absl::Status CompressOnServer(const Args& args);
int VariantsCommand(const Args& args);
int PromoteCommand(const Args& args);
int ExportCommand(const Args& args);
int JobsCommand(const Args& args);
int CancelCommand(const Args& args);
int DataSetsCommand(const Args& args);

}  // namespace slimserve::cli

#endif  // SLIMSERVE_CLI_VARIANTS_H_
