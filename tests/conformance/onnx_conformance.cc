// Runs ONNX's conformance suite (libonnx-testdata) against the runtime.
//
// Every test folder holds model.onnx and test_data_set_N/{input,output}_K.pb.
// A test is skipped, with its reason, when the model needs an operator or a
// type the runtime does not support (an Unimplemented status); any other
// error or a mismatch is a failure. One summary line per suite folder.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "runtime/backends.h"
#include "tests/common/test_dir.h"

namespace fs = std::filesystem;
using slimserve::tests::DirTestOptions;
using slimserve::tests::DirTestResult;
using slimserve::tests::Outcome;

namespace {

constexpr char kUsage[] =
    "usage: onnx_conformance [options]\n"
    "  --data DIR             suite root (default /usr/share/libonnx-testdata/data)\n"
    "  --folders A,B          suite folders (default node,pytorch-converted,pytorch-operator,simple)\n"
    "  --filter TEXT          only tests whose name contains TEXT\n"
    "  --expected-failures F  file of 'test_name reason' lines allowed to fail\n"
    "  --min-passed N         fail unless at least N tests pass\n"
    "  --backend B            auto|onednn|xnnpack|reference (default reference)\n"
    "  --optimize             run the graph passes before executing\n"
    "  --verbose              print every test's result and every skip reason\n";

struct Options {
  std::string data = "/usr/share/libonnx-testdata/data";
  std::vector<std::string> folders = {"node", "pytorch-converted", "pytorch-operator", "simple"};
  std::string filter;
  std::string expected_failures;
  int64_t min_passed = 0;
  std::string backend = "reference";
  bool optimize = false;
  bool verbose = false;
};

// "unsupported operator If (If node 'x'); all ..." -> "operator If".
std::string SkipCategory(const std::string& reason) {
  const std::string op_marker = "unsupported operator ";
  if (reason.rfind(op_marker, 0) == 0) {
    const size_t end = reason.find(' ', op_marker.size());
    return "operator " + reason.substr(op_marker.size(), end - op_marker.size());
  }
  return reason.substr(0, std::min<size_t>(reason.size(), 60));
}

std::vector<fs::path> TestFolders(const fs::path& root) {
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(root)) {
    if (e.is_directory() && e.path().filename().string().rfind("test_", 0) == 0) dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << arg << " needs a value\n" << kUsage;
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (arg == "--data") {
      options.data = value();
    } else if (arg == "--folders") {
      options.folders = absl::StrSplit(value(), ',');
    } else if (arg == "--filter") {
      options.filter = value();
    } else if (arg == "--expected-failures") {
      options.expected_failures = value();
    } else if (arg == "--min-passed") {
      if (!absl::SimpleAtoi(value(), &options.min_passed)) {
        std::cerr << "--min-passed needs a number\n";
        return 2;
      }
    } else if (arg == "--backend") {
      options.backend = value();
    } else if (arg == "--optimize") {
      options.optimize = true;
    } else if (arg == "--verbose") {
      options.verbose = true;
    } else {
      std::cerr << "unknown option " << arg << "\n" << kUsage;
      return 2;
    }
  }
  std::map<std::string, std::string> allowed;
  if (!options.expected_failures.empty()) {
    std::ifstream file(options.expected_failures);
    if (!file) {
      std::cerr << "cannot read " << options.expected_failures << "\n";
      return 2;
    }
    std::string line;
    while (std::getline(file, line)) {
      if (line.empty() || line[0] == '#') continue;
      const size_t space = line.find(' ');
      allowed[line.substr(0, space)] = space == std::string::npos ? "" : line.substr(space + 1);
    }
  }

  auto backends = slimserve::runtime::MakeBackends(options.backend);
  if (!backends.ok()) {
    std::cerr << backends.status().message() << "\n";
    return 2;
  }
  DirTestOptions test_options;
  test_options.backends = &*backends;
  test_options.optimize = options.optimize;

  int64_t total_passed = 0, total_failed = 0, total_skipped = 0, unexpected = 0;
  for (const std::string& folder : options.folders) {
    const fs::path root = fs::path(options.data) / folder;
    if (!fs::is_directory(root)) {
      std::cerr << "missing suite folder " << root << " (apt-get install libonnx-testdata)\n";
      return 2;
    }
    int64_t passed = 0, failed = 0, skipped = 0;
    std::map<std::string, int> skip_reasons;
    for (const fs::path& dir : TestFolders(root)) {
      const std::string name = dir.filename().string();
      if (!options.filter.empty() && name.find(options.filter) == std::string::npos) continue;
      const DirTestResult r = slimserve::tests::RunTestDir(dir, test_options);
      switch (r.outcome) {
        case Outcome::kPassed:
          ++passed;
          if (options.verbose) std::cout << "PASS " << folder << "/" << name << "\n";
          break;
        case Outcome::kSkipped:
          ++skipped;
          ++skip_reasons[SkipCategory(r.reason)];
          if (options.verbose) std::cout << "SKIP " << folder << "/" << name << ": " << r.reason << "\n";
          break;
        case Outcome::kFailed: {
          ++failed;
          const bool expected = allowed.count(name) > 0;
          if (!expected) ++unexpected;
          std::cout << (expected ? "XFAIL " : "FAIL ") << folder << "/" << name << ": " << r.reason
                    << "\n";
          break;
        }
      }
      std::cout.flush();
    }
    std::vector<std::pair<int, std::string>> reasons;
    for (const auto& [reason, count] : skip_reasons) reasons.emplace_back(count, reason);
    std::sort(reasons.rbegin(), reasons.rend());
    std::string reason_text;
    for (const auto& [count, reason] : reasons) absl::StrAppend(&reason_text, "\n    ", count, " ", reason);
    std::cout << folder << ": " << passed << " passed, " << failed << " failed, " << skipped
              << " skipped" << (reasons.empty() ? "" : "; skip reasons:") << reason_text << "\n";
    total_passed += passed;
    total_failed += failed;
    total_skipped += skipped;
  }
  std::cout << "total: " << total_passed << " passed, " << total_failed << " failed, "
            << total_skipped << " skipped\n";
  if (unexpected > 0) {
    std::cout << unexpected << " unexpected failures\n";
    return 1;
  }
  if (total_passed < options.min_passed) {
    std::cout << "only " << total_passed << " passed; at least " << options.min_passed
              << " must\n";
    return 1;
  }
  return 0;
}
