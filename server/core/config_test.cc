#include "server/core/config.h"

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/repository.h"

namespace slimserve::server {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

runtime::ValueInfo Info(const std::string& name, runtime::Shape shape) {
  runtime::ValueInfo v;
  v.name = name;
  v.dtype = runtime::DataType::kFloat32;
  v.shape = std::move(shape);
  v.dim_names.assign(v.shape.size(), "");
  v.has_shape = true;
  return v;
}

// The shape of the example model: [batch, 1, 28, 28] -> [batch, 10].
runtime::Graph Classifier(int64_t batch = -1) {
  runtime::Graph g;
  g.inputs.push_back(Info("input", {batch, 1, 28, 28}));
  g.outputs.push_back(Info("logits", {batch, 10}));
  return g;
}

TEST(ConfigTest, CompletesFromTheModelLikeTriton) {
  inference::ModelConfig config;
  ASSERT_TRUE(CompleteConfig(Classifier(), config).ok());
  EXPECT_EQ(config.max_batch_size(), kDefaultMaxBatchSize);
  EXPECT_TRUE(config.has_dynamic_batching());
  ASSERT_EQ(config.input_size(), 1);
  EXPECT_EQ(config.input(0).data_type(), inference::TYPE_FP32);
  EXPECT_THAT(config.input(0).dims(), ::testing::ElementsAre(1, 28, 28));
  EXPECT_THAT(config.output(0).dims(), ::testing::ElementsAre(10));
  EXPECT_EQ(config.instance_group(0).count(), 1);

  inference::ModelConfig fixed;  // a static batch cannot batch
  ASSERT_TRUE(CompleteConfig(Classifier(1), fixed).ok());
  EXPECT_EQ(fixed.max_batch_size(), 0);
  EXPECT_THAT(fixed.input(0).dims(), ::testing::ElementsAre(1, 1, 28, 28));
}

TEST(ConfigTest, ParsesTextAndJson) {
  auto text = ParseConfigText("max_batch_size: 4 dynamic_batching { max_queue_delay_microseconds: 100 }");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->dynamic_batching().max_queue_delay_microseconds(), 100u);
  auto json = ParseConfigJson(R"({"max_batch_size": 4, "instance_group": [{"count": 2}]})");
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(json->instance_group(0).count(), 2);
  EXPECT_THAT(ParseConfigText("max_batch_size: four").status().message(), HasSubstr("line 1 column 17"));
  EXPECT_THAT(ParseConfigJson("{\"max_batch_size\": 4, \"bogus\": 1}").status().message(), HasSubstr("JSON"));
}

TEST(ConfigTest, RejectsWhatTheModelCannotBe) {
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {R"(input [{ name: "image" }])", "does not have"},
      {R"(max_batch_size: 4 input [{ name: "input" dims: [3, 28, 28] }])", "dims"},
      {R"(input [{ name: "input" data_type: TYPE_INT64 }])", "type"},
      {R"(instance_group [{ kind: KIND_GPU }])", "CPUs only"},
      {R"(max_batch_size: 4 dynamic_batching { preferred_batch_size: [8] })", "preferred_batch_size"},
      {R"(max_batch_size: 100000)", "over the limit"},
      {R"(instance_group [{ count: 40 }, { count: 40 }])", "more than 64"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    inference::ModelConfig config = ParseConfigText(c.text).value();
    const absl::Status status = CompleteConfig(Classifier(), config);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(status.message(), HasSubstr(c.message));
  }
  inference::ModelConfig batched = ParseConfigText("max_batch_size: 4").value();
  EXPECT_THAT(CompleteConfig(Classifier(1), batched).message(), HasSubstr("dynamic first dimension"));
}

TEST(ConfigTest, WireNamesRoundTrip) {
  for (runtime::DataType t : {runtime::DataType::kFloat32, runtime::DataType::kFloat16, runtime::DataType::kBFloat16,
                              runtime::DataType::kInt8, runtime::DataType::kUint8, runtime::DataType::kInt64,
                              runtime::DataType::kBool}) {
    EXPECT_EQ(ParseWireDataType(WireDataType(t)), t);
    EXPECT_EQ(FromConfigDataType(ConfigDataType(t)), t);
  }
  EXPECT_FALSE(ParseWireDataType("BYTES").has_value());
}

class RepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("slimserve_repo_test_" + std::to_string(getpid()));
    fs::remove_all(root_);
    for (int v : {1, 2, 3}) {
      fs::create_directories(root_ / "m" / std::to_string(v));
      std::ofstream(root_ / "m" / std::to_string(v) / "model.onnx") << "x";
    }
  }
  void TearDown() override { fs::remove_all(root_); }
  void WriteConfig(const std::string& text) { std::ofstream(root_ / "m" / "config.pbtxt") << text; }

  fs::path root_;
};

TEST_F(RepositoryTest, VersionPolicies) {
  Repository repo(root_.string());
  auto latest = repo.Read("m");
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->versions.size(), 1u);
  EXPECT_EQ(latest->versions.begin()->first, 3);
  WriteConfig("version_policy { all {} }");
  EXPECT_EQ(repo.Read("m")->versions.size(), 3u);
  WriteConfig("version_policy { latest { num_versions: 2 } }");
  EXPECT_EQ(repo.Read("m")->versions.begin()->first, 2);
  WriteConfig("version_policy { specific { versions: [1, 7] } }");
  EXPECT_THAT(repo.Read("m").status().message(), HasSubstr("version 7"));
  EXPECT_EQ(repo.Read("nope").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(RepositoryTest, UploadsAreStagedThenCommittedOrDiscarded) {
  Repository repo(root_.string());
  inference::ModelConfig config;
  config.set_max_batch_size(2);
  auto staged = repo.Stage("m", config, {{"5/model.onnx", "new"}});
  ASSERT_TRUE(staged.ok()) << staged.status();
  EXPECT_EQ(repo.Read("m")->versions.begin()->first, 3) << "staging changes nothing";
  ASSERT_TRUE(repo.Commit(*staged, "m").ok());
  auto files = repo.Read("m");
  ASSERT_TRUE(files.ok());
  EXPECT_EQ(files->versions.begin()->first, 5);
  EXPECT_EQ(files->config.max_batch_size(), 2);

  auto discarded = repo.Stage("other", config, {{"1/model.onnx", "x"}});
  ASSERT_TRUE(discarded.ok());
  repo.Discard(*discarded);
  EXPECT_EQ(repo.ModelNames().value(), std::vector<std::string>{"m"});

  EXPECT_THAT(repo.Stage("m", config, {{"../1/model.onnx", "x"}}).status().message(), HasSubstr("file:<version>"));
  EXPECT_THAT(repo.Stage("m", config, {{"1/.hidden", "x"}}).status().message(), HasSubstr("file:<version>"));
  WriteConfig(R"(default_model_filename: "../../m/3/model.onnx")");
  EXPECT_THAT(repo.Read("m").status().message(), HasSubstr("default_model_filename"));
  for (const char* name : {"..", "../evil", "a/b", ".hidden", ""}) {
    EXPECT_FALSE(CheckModelName(name).ok()) << name;
  }
}

}  // namespace
}  // namespace slimserve::server
