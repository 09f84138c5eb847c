// Real models that other people trained (PaddleOCR, openWakeWord, fetched by
// tests/real_models/make_references.sh with reference outputs from ONNX
// Runtime) must give ONNX Runtime's outputs; models with control flow must
// fail to load with an error that names the operator.
//
// Usage: real_models_test DIR   (DIR as written by make_references.sh)
#include <filesystem>
#include <fstream>
#include <iostream>

#include "gtest/gtest.h"
#include "runtime/executor.h"
#include "runtime/onnx_import.h"
#include "tests/common/test_dir.h"

namespace slimserve::tests {
namespace {

namespace fs = std::filesystem;

fs::path models_dir;

std::vector<fs::path> ModelDirs() {
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(models_dir)) {
    if (fs::exists(e.path() / "model.onnx")) dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

void ExpectMatchesOnnxRuntime(const std::string& backend, bool optimize) {
  const std::vector<fs::path> dirs = ModelDirs();
  ASSERT_GE(dirs.size(), 4u) << "expected the PaddleOCR and openWakeWord models in " << models_dir;
  auto backends = runtime::MakeBackends(backend);
  ASSERT_TRUE(backends.ok()) << backends.status();
  DirTestOptions options;
  options.rtol = 1e-3;
  options.atol = 1e-4;
  options.backends = &*backends;
  options.optimize = optimize;
  for (const fs::path& dir : dirs) {
    const DirTestResult r = RunTestDir(dir, options);
    EXPECT_EQ(r.outcome, Outcome::kPassed) << dir.filename() << ": " << r.reason;
    // The detection model's probability map: max abs diff within 1e-3.
    EXPECT_LE(r.max_abs_diff, 1e-3) << dir.filename();
    std::cout << backend << (optimize ? " optimized " : " ") << dir.filename().string()
              << ": max abs diff vs ONNX Runtime " << r.max_abs_diff << "\n";
  }
}

TEST(RealModelsTest, MatchOnnxRuntimeOptimizedOnEveryBackend) {
  ExpectMatchesOnnxRuntime("auto", /*optimize=*/true);
}

TEST(RealModelsTest, MatchOnnxRuntimeOnTheReferenceBackend) {
  ExpectMatchesOnnxRuntime("reference", /*optimize=*/false);
}

TEST(RealModelsTest, ControlFlowModelsFailNamingTheOperator) {
  std::ifstream list(models_dir / "unsupported.txt");
  ASSERT_TRUE(list) << "missing " << models_dir / "unsupported.txt";
  std::string path, op;
  int checked = 0;
  while (list >> path >> op) {
    absl::StatusOr<runtime::Graph> graph = runtime::ImportOnnxFile(path, {});
    ASSERT_TRUE(graph.ok()) << path << ": " << graph.status();
    auto executor = runtime::Executor::Create(*std::move(graph), {});
    ASSERT_FALSE(executor.ok()) << path;
    EXPECT_EQ(executor.status().code(), absl::StatusCode::kUnimplemented);
    EXPECT_NE(executor.status().message().find(op), std::string::npos) << executor.status();
    ++checked;
  }
  EXPECT_GE(checked, 2);
}

}  // namespace
}  // namespace slimserve::tests

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc != 2) {
    std::cerr << "usage: real_models_test DIR (made by tests/real_models/make_references.sh)\n";
    return 2;
  }
  slimserve::tests::models_dir = argv[1];
  return RUN_ALL_TESTS();
}
