#include "cli/common.h"

#include <algorithm>
#include <fstream>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/status_macros.h"

namespace slimserve::cli {

using runtime::DataType;
using runtime::Shape;
using runtime::Tensor;

absl::StatusOr<std::map<std::string, std::string>> Pairs(const Args& args, const std::string& option) {
  std::map<std::string, std::string> pairs;
  for (const std::string& item : args.GetAll(option)) {
    const size_t eq = item.rfind('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(absl::StrCat("--", option, " needs NAME=VALUE, got '", item, "'"));
    }
    pairs[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return pairs;
}

absl::StatusOr<Tensor> RandomTensor(DataType dtype, const Shape& shape, std::mt19937& rng) {
  ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(dtype, shape));
  if (dtype == DataType::kFloat32) {
    std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
    for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = uniform(rng);
  }
  return t;
}

int Fail(const absl::Status& status) {
  std::cerr << "error: " << status.message() << "\n";
  return 1;
}

absl::StatusOr<std::vector<std::string>> ReadLines(const std::string& path) {
  std::ifstream file(path);
  if (!file) return absl::NotFoundError(absl::StrCat("cannot open '", path, "'"));
  std::vector<std::string> lines;
  for (std::string line; std::getline(file, line);) lines.push_back(line);
  return lines;
}

void PrintOutput(const std::string& name, const Tensor& t, const std::vector<std::string>& labels) {
  std::cout << name << ": " << runtime::DataTypeName(t.dtype()) << " "
            << runtime::ShapeToString(t.shape()) << "\n  ";
  const int64_t n = t.num_elements();
  for (int64_t i = 0; i < std::min<int64_t>(n, 10); ++i) std::cout << t.GetDouble(i) << " ";
  if (n > 10) std::cout << "... (" << n << " values)";
  std::cout << "\n";
  // A classifier's scores: show the top 5 classes.
  const int64_t classes = t.shape().empty() ? 0 : t.shape().back();
  if (t.dtype() == DataType::kFloat32 && classes >= 2 && n == classes) {
    std::vector<int64_t> order(classes);
    for (int64_t i = 0; i < classes; ++i) order[i] = i;
    const int64_t k = std::min<int64_t>(5, classes);
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](int64_t a, int64_t b) { return t.data<float>()[a] > t.data<float>()[b]; });
    std::cout << "  top-" << k << ":";
    for (int64_t i = 0; i < k; ++i) {
      const std::string label =
          order[i] < static_cast<int64_t>(labels.size()) ? " " + labels[order[i]] : "";
      std::cout << absl::StrFormat(" class %d%s (%.4g)", order[i], label, t.data<float>()[order[i]]);
    }
    std::cout << "\n";
  }
}

double Percentile(std::vector<double> sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t i = std::min(sorted.size() - 1, static_cast<size_t>(p * (sorted.size() - 1) + 0.5));
  return sorted[i];
}

}  // namespace slimserve::cli
