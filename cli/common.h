// Helpers shared by slimctl's offline and client commands.
#ifndef SLIMSERVE_CLI_COMMON_H_
#define SLIMSERVE_CLI_COMMON_H_

#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cli/args.h"
#include "runtime/tensor.h"

namespace slimserve::cli {

// NAME=VALUE pairs of a repeated option.
absl::StatusOr<std::map<std::string, std::string>> Pairs(const Args& args, const std::string& option);
// Uniform [0, 1) for float inputs, zeros otherwise (safe as indices).
absl::StatusOr<runtime::Tensor> RandomTensor(runtime::DataType dtype, const runtime::Shape& shape, std::mt19937& rng);
// Prints "error: <message>" to stderr; returns the exit code 1.
int Fail(const absl::Status& status);
absl::StatusOr<std::vector<std::string>> ReadLines(const std::string& path);
// An output's type, shape and first values; a classifier's top 5 classes
// (named from `labels` when given).
void PrintOutput(const std::string& name, const runtime::Tensor& t, const std::vector<std::string>& labels);
// The p-th quantile (0..1) of sorted values.
double Percentile(std::vector<double> sorted, double p);

}  // namespace slimserve::cli

#endif  // SLIMSERVE_CLI_COMMON_H_
