// End-to-end tests of the compression service over 127.0.0.1: the real
// binary, the bundled Fashion-MNIST model, real Fashion-MNIST images
// (tools/make_eval_set.py) uploaded as data sets, variants built, served,
// promoted and exported over gRPC; restarts, cancellation, a corrupt cache
// entry and bad input.
#include <filesystem>
#include <set>
#include <fstream>
#include <sstream>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "absl/strings/str_cat.h"
#include "proto/compression.grpc.pb.h"
#include "runtime/npy.h"
#include "runtime/onnx_export.h"
#include "runtime/onnx_import.h"
#include "runtime/testing/graph_builder.h"
#include "server/core/compressor.h"
#include "server/core/config.h"
#include "server/grpc/tensor_codec.h"
#include "tests/server/server_process.h"

namespace slimserve::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr char kModel[] = "fashion_mnist";

grpc::ClientContext* WithDeadline(grpc::ClientContext& context, int seconds = 120) {
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return &context;
}

// Rows [begin, begin + count) of a Fashion-MNIST .npz as upload chunks of
// `per_chunk` rows (the first announcing `total_rows`, if not 0).
std::vector<v1::DataSetChunk> Chunks(const std::string& name, const std::string& file, int64_t begin, int64_t count,
                                     int64_t per_chunk, int64_t total_rows) {
  auto arrays = runtime::ReadNpz(std::string(SLIMSERVE_DATASETS) + "/" + file);
  EXPECT_TRUE(arrays.ok()) << arrays.status() << " (tools/test.sh makes it)";
  runtime::Tensor images, labels;
  for (auto& [array, t] : *arrays) (array == "labels" ? labels : images) = t;
  std::vector<v1::DataSetChunk> chunks;
  for (int64_t r = begin; r < begin + count; r += per_chunk) {
    const int64_t n = std::min(per_chunk, begin + count - r);
    v1::DataSetChunk chunk;
    if (chunks.empty()) {
      chunk.set_name(name);
      chunk.set_total_rows(total_rows);
    }
    v1::DataSetTensor& t = *chunk.add_tensors();
    t.set_name("input");
    t.set_datatype("FP32");
    for (int64_t d : {n, int64_t{1}, int64_t{28}, int64_t{28}}) t.add_shape(d);
    t.set_raw_contents(static_cast<const char*>(images.raw_data()) + r * 784 * 4, n * 784 * 4);
    for (int64_t i = r; i < r + n; ++i) chunk.add_labels(labels.data<int64_t>()[i]);
    chunks.push_back(std::move(chunk));
  }
  return chunks;
}

class CompressionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = TempDir();
    fs::copy(SLIMSERVE_EXAMPLE_DIR, fs::path(repo_) / kModel, fs::copy_options::recursive);
  }

  void StartServer(const std::vector<std::string>& extra = {}) {
    auto started = ServerProcess::ServeRepository(SLIMSERVE_BINARY, repo_, extra);
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = *std::move(started);
    grpc::ChannelArguments channel_args;
    channel_args.SetMaxReceiveMessageSize(-1);
    auto channel = grpc::CreateCustomChannel(server_->address(), grpc::InsecureChannelCredentials(), channel_args);
    compression_ = v1::Compression::NewStub(channel);
    inference_ = inference::GRPCInferenceService::NewStub(channel);
  }

  grpc::Status Upload(const std::vector<v1::DataSetChunk>& chunks, v1::DataSetInfo* info) {
    grpc::ClientContext context;
    auto writer = compression_->UploadDataSet(WithDeadline(context), info);
    for (const auto& chunk : chunks) writer->Write(chunk);
    writer->WritesDone();
    return writer->Finish();
  }

  // Uploads "calibration" (1000 training images) and "evaluation" (the first
  // 2000 test images), both labelled.
  void UploadDataSets() {
    v1::DataSetInfo info;
    grpc::Status s = Upload(Chunks("calibration", "fashion_mnist_train.npz", 0, 1000, 300, 1000), &info);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(info.rows(), 1000);
    EXPECT_TRUE(info.labelled());
    s = Upload(Chunks("evaluation", "fashion_mnist_test.npz", 0, 2000, 500, 2000), &info);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(info.rows(), 2000);
  }

  grpc::Status Create(const std::string& profile_text, v1::Job* job, const std::string& evaluation = "evaluation") {
    v1::CreateVariantRequest request;
    request.set_model(kModel);
    *request.mutable_profile() = server::ProfileToProto(*compression::ParseProfile(profile_text));
    request.set_evaluation_data(evaluation);
    grpc::ClientContext context;
    return compression_->CreateVariant(WithDeadline(context), request, job);
  }

  // Every state the job passes through until it ends (or `until` holds).
  std::vector<v1::Job> Watch(const std::string& id, std::function<bool(const v1::Job&)> until = nullptr) {
    grpc::ClientContext context;
    v1::JobRef ref;
    ref.set_id(id);
    auto reader = compression_->WatchJob(WithDeadline(context, 600), ref);
    std::vector<v1::Job> seen;
    v1::Job job;
    while (reader->Read(&job)) {
      seen.push_back(job);
      if (until && until(job)) {
        context.TryCancel();
        break;
      }
    }
    reader->Finish();
    return seen;
  }

  // The ONNX bytes ExportVariant streams ("" when it fails).
  std::string Export(const std::string& variant) {
    grpc::ClientContext context;
    v1::VariantRef ref;
    ref.set_model(kModel);
    ref.set_variant(variant);
    auto reader = compression_->ExportVariant(WithDeadline(context), ref);
    std::string onnx;
    v1::FileChunk chunk;
    while (reader->Read(&chunk)) onnx += chunk.data();
    const grpc::Status status = reader->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    return status.ok() ? onnx : "";
  }

  std::vector<v1::Variant> Variants() {
    grpc::ClientContext context;
    v1::ListVariantsResponse response;
    EXPECT_TRUE(compression_->ListVariants(WithDeadline(context), {}, &response).ok());
    return {response.variants().begin(), response.variants().end()};
  }

  // The model that answered a request for `model` (the response's model_name).
  std::string Answered(const std::string& model, grpc::Status* status_out = nullptr) {
    inference::ModelInferRequest request;
    request.set_model_name(model);
    auto images = runtime::ReadNpy(std::string(SLIMSERVE_EXAMPLE_DIR) + "/sample_input.npy");
    server::EncodeInput("input", *images, request);
    inference::ModelInferResponse response;
    grpc::ClientContext context;
    const grpc::Status status = inference_->ModelInfer(WithDeadline(context), request, &response);
    if (status_out != nullptr) *status_out = status;
    return status.ok() ? response.model_name() : "";
  }

  std::string repo_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<v1::Compression::Stub> compression_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> inference_;
};

TEST_F(CompressionTest, UploadCompressEvaluateServePromoteExport) {
  StartServer();
  UploadDataSets();
  v1::Job job;
  grpc::Status s = Create("int8-static,calibration=percentile,data=calibration", &job);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_FALSE(job.cache_hit());
  const std::vector<v1::Job> seen = Watch(job.id());
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().state(), v1::Job::SUCCEEDED) << seen.back().message();
  std::set<std::string> stages;
  for (size_t i = 0; i < seen.size(); ++i) {
    stages.insert(seen[i].stage());
    if (i > 0) {
      EXPECT_GE(seen[i].progress(), seen[i - 1].progress());
    }
  }
  for (const char* stage : {"calibrating", "evaluating", "measuring"}) {
    EXPECT_TRUE(stages.count(stage)) << stage;
  }
  EXPECT_EQ(seen.back().progress(), 1.0);

  // Measured against the original on the 2000 evaluation images.
  std::vector<v1::Variant> variants = Variants();
  ASSERT_EQ(variants.size(), 1u);
  const v1::Variant& v = variants[0];
  const v1::Measurements& m = v.measurements();
  EXPECT_EQ(v.served_name(), "fashion_mnist.int8_static");
  EXPECT_TRUE(v.served());
  EXPECT_EQ(m.evaluation_rows(), 2000);
  EXPECT_GT(m.original_top1(), 90.0);
  EXPECT_GE(m.variant_top1(), m.original_top1() - 0.5);
  EXPECT_GE(m.agreement(), 98.0);
  EXPECT_GT(m.sqnr_db(), 25.0);
  EXPECT_LT(m.size_bytes() * 3, m.original_size_bytes());  // int8 weights
  EXPECT_GT(m.p50_ms(), 0);
  EXPECT_GE(m.p99_ms(), m.p50_ms());
  EXPECT_GT(m.throughput(), 0);
  EXPECT_GT(m.original_p50_ms(), 0);

  // Served under its own name, with metadata, config and statistics.
  EXPECT_EQ(Answered("fashion_mnist.int8_static"), "fashion_mnist.int8_static");
  {
    grpc::ClientContext c1, c2, c3;
    inference::ModelMetadataRequest metadata_request;
    metadata_request.set_name("fashion_mnist.int8_static");
    inference::ModelMetadataResponse metadata;
    ASSERT_TRUE(inference_->ModelMetadata(WithDeadline(c1), metadata_request, &metadata).ok());
    EXPECT_EQ(metadata.inputs(0).name(), "input");
    inference::ModelConfigRequest config_request;
    config_request.set_name("fashion_mnist.int8_static");
    inference::ModelConfigResponse config;
    ASSERT_TRUE(inference_->ModelConfig(WithDeadline(c2), config_request, &config).ok());
    EXPECT_EQ(config.config().name(), "fashion_mnist.int8_static");
    inference::ModelStatisticsRequest stats_request;
    stats_request.set_name("fashion_mnist.int8_static");
    inference::ModelStatisticsResponse stats;
    ASSERT_TRUE(inference_->ModelStatistics(WithDeadline(c3), stats_request, &stats).ok());
    ASSERT_EQ(stats.model_stats_size(), 1);
    EXPECT_GE(stats.model_stats(0).inference_count(), 1u);
  }

  // Promotion moves the bare name; demotion moves it back.
  EXPECT_EQ(Answered(kModel), kModel);
  v1::PromoteVariantRequest promote;
  promote.set_model(kModel);
  promote.set_variant("int8_static");
  promote.set_force(true);  // the gate compares timings, which a test does not rely on
  v1::Variant promoted;
  {
    grpc::ClientContext context;
    s = compression_->PromoteVariant(WithDeadline(context), promote, &promoted);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  EXPECT_TRUE(promoted.promoted());
  EXPECT_EQ(Answered(kModel), "fashion_mnist.int8_static");
  {
    grpc::ClientContext context;
    v1::VariantRef ref;
    ref.set_model(kModel);
    ref.set_variant("int8_static");
    v1::DeleteVariantResponse deleted;
    EXPECT_EQ(compression_->DeleteVariant(WithDeadline(context), ref, &deleted).error_code(),
              grpc::StatusCode::FAILED_PRECONDITION);
  }
  {
    grpc::ClientContext context;
    promote.clear_variant();
    ASSERT_TRUE(compression_->PromoteVariant(WithDeadline(context), promote, &promoted).ok());
  }
  EXPECT_EQ(Answered(kModel), kModel);

  // Export: a standard ONNX file in QDQ form, the bytes the cache holds.
  const std::string onnx = Export("int8_static");
  EXPECT_EQ(static_cast<int64_t>(onnx.size()), m.size_bytes());
  auto graph = runtime::ImportOnnxBytes(onnx, "", {});
  ASSERT_TRUE(graph.ok()) << graph.status();
  EXPECT_TRUE(std::any_of(graph->nodes.begin(), graph->nodes.end(),
                          [](const auto& n) { return n.op_type == "QuantizeLinear"; }));

  // The same request again is a cache hit: no new job runs.
  v1::Job again;
  ASSERT_TRUE(Create("int8-static,calibration=percentile,data=calibration", &again).ok());
  EXPECT_TRUE(again.cache_hit());
  EXPECT_EQ(again.state(), v1::Job::SUCCEEDED);
  EXPECT_EQ(Variants().size(), 1u);

  // Prometheus has the variant's measurements and the cache's answers.
  auto metrics = server_->ScrapeMetrics();
  ASSERT_TRUE(metrics.ok());
  const std::string labels = "model=\"fashion_mnist\",variant=\"int8_static\"";
  EXPECT_NEAR(MetricValue(*metrics, "slimserve_variant_agreement_percent", labels), m.agreement(), 1e-6);
  EXPECT_EQ(MetricValue(*metrics, "slimserve_variant_size_bytes", labels), m.size_bytes());
  EXPECT_EQ(MetricValue(*metrics, "slimserve_variant_cache_lookups_total", "result=\"hit\""), 1);
  EXPECT_EQ(MetricValue(*metrics, "slimserve_compression_jobs_total", "state=\"SUCCEEDED\""), 2);
}

TEST_F(CompressionTest, PrunedVariantIsBuiltEvaluatedServedAndExported) {
  StartServer();
  UploadDataSets();
  v1::Job job;
  ASSERT_TRUE(Create("pruned,sparsity=0.3,data=calibration", &job).ok());
  const std::vector<v1::Job> seen = Watch(job.id());
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().state(), v1::Job::SUCCEEDED) << seen.back().message();
  EXPECT_TRUE(std::any_of(seen.begin(), seen.end(), [](const v1::Job& j) { return j.stage() == "pruning"; }));
  std::vector<v1::Variant> variants = Variants();
  ASSERT_EQ(variants.size(), 1u);
  const v1::Measurements m = variants[0].measurements();
  EXPECT_EQ(variants[0].served_name(), "fashion_mnist.pruned");
  EXPECT_GE(m.agreement(), 93.0);  // 96.4 % on the 10,000 test images
  EXPECT_GE(m.variant_top1(), m.original_top1() - 2.0);
  EXPECT_LT(m.size_bytes(), m.original_size_bytes() * 0.7);
  EXPECT_LT(m.parameters(), m.original_parameters() * 0.6);  // 56 % stay
  EXPECT_GT(m.parameters(), 0);
  EXPECT_EQ(Answered("fashion_mnist.pruned"), "fashion_mnist.pruned");
  auto graph = runtime::ImportOnnxBytes(Export("pruned"), "", {});
  ASSERT_TRUE(graph.ok()) << graph.status();
  const runtime::Node& conv = graph->nodes[0];
  ASSERT_EQ(conv.op_type, "Conv");
  EXPECT_EQ(graph->initializers.at(conv.inputs[1]).shape()[0], 24);  // 32 - 30 %, rounded up to a multiple of 8

  // A chain, pruned then int8: one job, one variant, served and exported in
  // QDQ form with the smaller filters.
  ASSERT_TRUE(Create("pruned,sparsity=0.3 -> int8-static,data=calibration", &job).ok());
  EXPECT_EQ(job.variant(), "pruned_int8_static");
  const std::vector<v1::Job> chain = Watch(job.id());
  EXPECT_EQ(chain.back().state(), v1::Job::SUCCEEDED);
  for (const char* step : {"pruning", "calibrating"}) {  // the stage names the step at work
    EXPECT_TRUE(std::any_of(chain.begin(), chain.end(), [&](const v1::Job& j) { return j.stage() == step; })) << step;
  }
  variants = Variants();
  ASSERT_EQ(variants.size(), 2u);
  const v1::Variant& chained = variants[0].variant() == "pruned_int8_static" ? variants[0] : variants[1];
  EXPECT_GE(chained.measurements().agreement(), 90.0);
  EXPECT_LT(chained.measurements().size_bytes() * 6, chained.measurements().original_size_bytes());
  EXPECT_EQ(Answered("fashion_mnist.pruned_int8_static"), "fashion_mnist.pruned_int8_static");
  graph = runtime::ImportOnnxBytes(Export("pruned_int8_static"), "", {});
  ASSERT_TRUE(graph.ok()) << graph.status();
  for (const runtime::Node& node : graph->nodes) {
    if (node.op_type != "DequantizeLinear" || !graph->initializers.count(node.inputs[0])) continue;
    EXPECT_EQ(graph->initializers.at(node.inputs[0]).shape()[0], 24);  // the first Conv's int8 weights
    break;
  }

  // A criterion the model cannot have: the job fails and says why; nothing
  // is cached or served.
  ASSERT_TRUE(Create("pruned,criterion=bn-gamma,data=calibration", &job, "evaluation").ok());
  const v1::Job failed = Watch(job.id()).back();
  EXPECT_EQ(failed.state(), v1::Job::FAILED);
  EXPECT_THAT(failed.message(), HasSubstr("bn-gamma needs BatchNormalization"));
  EXPECT_EQ(Variants().size(), 2u);
  EXPECT_EQ(Answered(kModel), kModel);
}

// Low-rank then int8-dynamic: the classifier's 3136 x 64 Gemm as two
// factors of rank 24, quantized; served, evaluated and exported.
TEST_F(CompressionTest, LowRankChainIsBuiltServedAndExported) {
  StartServer();
  UploadDataSets();
  v1::Job job;
  ASSERT_TRUE(Create("low-rank,ratio=0.5,data=calibration -> int8-dynamic", &job).ok());
  EXPECT_EQ(job.variant(), "low_rank_int8_dynamic");
  const std::vector<v1::Job> seen = Watch(job.id());
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().state(), v1::Job::SUCCEEDED) << seen.back().message();
  EXPECT_TRUE(std::any_of(seen.begin(), seen.end(), [](const v1::Job& j) { return j.stage() == "factorizing"; }));
  EXPECT_THAT(seen.back().layers(), ::testing::ElementsAre(HasSubstr("3136x64 -> rank 24")));
  const std::vector<v1::Variant> variants = Variants();
  ASSERT_EQ(variants.size(), 1u);
  const v1::Measurements m = variants[0].measurements();
  EXPECT_GE(m.agreement(), 95.0);
  EXPECT_GE(m.variant_top1(), m.original_top1() - 1.0);
  EXPECT_LT(m.parameters(), m.original_parameters() * 0.6);  // 54 % stay
  EXPECT_EQ(Answered("fashion_mnist.low_rank_int8_dynamic"), "fashion_mnist.low_rank_int8_dynamic");
  auto graph = runtime::ImportOnnxBytes(Export("low_rank_int8_dynamic"), "", {});
  ASSERT_TRUE(graph.ok()) << graph.status();
  std::vector<runtime::Shape> int8_weights;
  for (const auto& [name, tensor] : graph->initializers) {
    if (tensor.dtype() == runtime::DataType::kInt8 && tensor.rank() == 2) int8_weights.push_back(tensor.shape());
  }
  EXPECT_THAT(int8_weights, ::testing::IsSupersetOf({runtime::Shape{3136, 24}, runtime::Shape{24, 64}}));
}

TEST_F(CompressionTest, CancelRestartAndCorruptCache) {
  StartServer();
  UploadDataSets();
  // A finished variant, to outlive the restarts.
  v1::Job job;
  ASSERT_TRUE(Create("bf16", &job).ok());
  ASSERT_EQ(Watch(job.id()).back().state(), v1::Job::SUCCEEDED);
  // A long job: two calibration passes over 10000 images on one thread.
  v1::DataSetInfo info;
  ASSERT_TRUE(Upload(Chunks("big", "fashion_mnist_test.npz", 0, 10000, 2000, 10000), &info).ok());
  const std::string slow = "int8-static,calibration=entropy,samples=10000,data=big";
  auto calibrating = [](const v1::Job& j) { return j.stage() == "calibrating" && j.progress() > 0.06; };

  // Cancel mid-job: it stops, and nothing is served or cached.
  ASSERT_TRUE(Create(slow, &job).ok());
  ASSERT_TRUE(calibrating(Watch(job.id(), calibrating).back()));
  {
    grpc::ClientContext context;
    v1::JobRef ref;
    ref.set_id(job.id());
    v1::Job cancelled;
    ASSERT_TRUE(compression_->CancelJob(WithDeadline(context), ref, &cancelled).ok());
  }
  EXPECT_EQ(Watch(job.id()).back().state(), v1::Job::CANCELLED);
  EXPECT_EQ(Variants().size(), 1u);
  grpc::Status status;
  Answered("fashion_mnist.int8_static", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);

  // Killed mid-job: after the restart the job is failed with the reason, and
  // the finished variant is served again from the cache.
  ASSERT_TRUE(Create(slow, &job).ok());
  ASSERT_TRUE(calibrating(Watch(job.id(), calibrating).back()));
  server_.reset();  // SIGKILL
  StartServer();
  {
    grpc::ClientContext context;
    v1::JobRef ref;
    ref.set_id(job.id());
    v1::Job after;
    ASSERT_TRUE(compression_->GetJob(WithDeadline(context), ref, &after).ok());
    EXPECT_EQ(after.state(), v1::Job::FAILED);
    EXPECT_THAT(after.message(), HasSubstr("interrupted by a server restart"));
  }
  EXPECT_EQ(Answered("fashion_mnist.bf16"), "fashion_mnist.bf16");

  // A corrupt cache entry is discarded at the next start and rebuilt on request.
  std::vector<v1::Variant> variants = Variants();
  ASSERT_EQ(variants.size(), 1u);
  ASSERT_EQ(server_->Terminate(60), 0);
  const std::string file = absl::StrCat(repo_, "/.slimserve/variants/", variants[0].cache_key(), "/model.onnx");
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.good()) << file;
    f.seekp(1000);
    f.write("corrupt", 7);
  }
  StartServer();
  EXPECT_THAT(server_->output(), HasSubstr("failed its checksum"));
  EXPECT_TRUE(Variants().empty());
  Answered("fashion_mnist.bf16", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(Create("bf16", &job).ok());
  EXPECT_FALSE(job.cache_hit());
  EXPECT_EQ(Watch(job.id()).back().state(), v1::Job::SUCCEEDED);
  EXPECT_EQ(Answered("fashion_mnist.bf16"), "fashion_mnist.bf16");
}

TEST_F(CompressionTest, ReplacingTheModelRetiresItsVariants) {
  StartServer();
  UploadDataSets();
  v1::Job job;
  ASSERT_TRUE(Create("int8-dynamic", &job).ok());
  ASSERT_EQ(Watch(job.id()).back().state(), v1::Job::SUCCEEDED);
  v1::PromoteVariantRequest promote;
  promote.set_model(kModel);
  promote.set_variant("int8_dynamic");
  promote.set_force(true);
  v1::Variant promoted;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(compression_->PromoteVariant(WithDeadline(context), promote, &promoted).ok());
  }
  EXPECT_EQ(Answered(kModel), "fashion_mnist.int8_dynamic");

  // The same model, other bytes (exported again): its variants were built
  // from something else, so they stop answering.
  auto graph = runtime::ImportOnnxFile(std::string(SLIMSERVE_EXAMPLE_DIR) + "/1/model.onnx", {});
  ASSERT_TRUE(graph.ok());
  inference::RepositoryModelLoadRequest load;
  load.set_model_name(kModel);
  (*load.mutable_parameters())["config"].set_string_param("{\"name\": \"fashion_mnist\", \"max_batch_size\": 64}");
  (*load.mutable_parameters())["file:1/model.onnx"].set_bytes_param(*runtime::ExportOnnxBytes(*graph));
  {
    grpc::ClientContext context;
    inference::RepositoryModelLoadResponse loaded;
    const grpc::Status s = inference_->RepositoryModelLoad(WithDeadline(context), load, &loaded);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  EXPECT_EQ(Answered(kModel), kModel);
  grpc::Status status;
  Answered("fashion_mnist.int8_dynamic", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  const std::vector<v1::Variant> variants = Variants();
  ASSERT_EQ(variants.size(), 1u);
  EXPECT_FALSE(variants[0].served());
  EXPECT_FALSE(variants[0].promoted());
}

TEST_F(CompressionTest, EvictionKeepsTheCacheUnderBudgetButNeverThePromotedVariant) {
  // int8 variants of the example are ~276 KB, the fp32 one ~1 MB.
  StartServer({"--variant-cache-bytes", "700000"});
  UploadDataSets();
  v1::Job job;
  for (const char* profile : {"int8-dynamic", "int8-static,data=calibration"}) {
    ASSERT_TRUE(Create(profile, &job).ok());
    ASSERT_EQ(Watch(job.id()).back().state(), v1::Job::SUCCEEDED);
  }
  v1::PromoteVariantRequest promote;
  promote.set_model(kModel);
  promote.set_variant("int8_dynamic");  // the older one
  promote.set_force(true);
  v1::Variant promoted;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(compression_->PromoteVariant(WithDeadline(context), promote, &promoted).ok());
  }
  ASSERT_TRUE(Create("fp32", &job).ok());
  ASSERT_EQ(Watch(job.id()).back().state(), v1::Job::SUCCEEDED);
  std::set<std::string> kept;
  for (const v1::Variant& v : Variants()) kept.insert(v.variant());
  EXPECT_EQ(kept, (std::set<std::string>{"int8_dynamic", "fp32"}));
  grpc::Status status;
  Answered("fashion_mnist.int8_static", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Answered(kModel), "fashion_mnist.int8_dynamic");
}

TEST_F(CompressionTest, AFailedCacheWriteFailsTheJobAndLeavesNothing) {
  // The cache folder cannot be created: a regular file stands in its way.
  const std::string state = TempDir();
  std::ofstream(state + "/variants") << "not a folder";
  StartServer({"--state-dir", state});
  UploadDataSets();
  v1::Job job;
  ASSERT_TRUE(Create("int8-dynamic", &job).ok());
  const v1::Job failed = Watch(job.id()).back();
  EXPECT_EQ(failed.state(), v1::Job::FAILED);
  EXPECT_THAT(failed.message(), HasSubstr("cannot write"));
  EXPECT_TRUE(Variants().empty());
  grpc::Status status;
  Answered("fashion_mnist.int8_dynamic", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Answered(kModel), kModel);
}

TEST_F(CompressionTest, TrafficCalibratesWithoutADataSet) {
  StartServer();
  v1::Job job;
  // No requests yet: nothing to calibrate on.
  grpc::Status s = Create("int8-static", &job, "");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("served no requests"));
  // Real images as requests, then int8 calibrated and evaluated on them.
  for (const v1::DataSetChunk& chunk : Chunks("", "fashion_mnist_test.npz", 0, 600, 8, 0)) {
    inference::ModelInferRequest request;
    request.set_model_name(kModel);
    const v1::DataSetTensor& t = chunk.tensors(0);
    auto* input = request.add_inputs();
    input->set_name("input");
    input->set_datatype("FP32");
    input->mutable_shape()->Add(t.shape().begin(), t.shape().end());
    request.add_raw_input_contents(t.raw_contents());
    inference::ModelInferResponse response;
    grpc::ClientContext context;
    ASSERT_TRUE(inference_->ModelInfer(WithDeadline(context), request, &response).ok());
  }
  s = Create("int8-static,samples=300", &job, "");
  ASSERT_TRUE(s.ok()) << s.error_message();
  const v1::Job done = Watch(job.id()).back();
  ASSERT_EQ(done.state(), v1::Job::SUCCEEDED) << done.message();
  EXPECT_THAT(done.message(), HasSubstr("300 held-out rows of the traffic sample"));
  const std::vector<v1::Variant> variants = Variants();
  ASSERT_EQ(variants.size(), 1u);
  EXPECT_GE(variants[0].measurements().agreement(), 97.0);
  EXPECT_EQ(variants[0].measurements().original_top1(), -1);  // traffic has no labels
}

TEST_F(CompressionTest, SlimctlUploadsIdxFilesAsTheyCome) {
  StartServer();
  const std::string idx = "/usr/share/datasets/fashion-mnist/t10k-";
  const std::string command = absl::StrCat(SLIMCTL_BINARY, " datasets upload idx --from ", idx,
                                           "images-idx3-ubyte.gz --labels ", idx, "labels-idx1-ubyte.gz --url ",
                                           server_->address(), " 2>&1");
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  grpc::ClientContext context;
  v1::ListDataSetsResponse sets;
  ASSERT_TRUE(compression_->ListDataSets(WithDeadline(context), {}, &sets).ok());
  ASSERT_EQ(sets.data_sets_size(), 1);
  const v1::DataSetInfo& info = sets.data_sets(0);
  EXPECT_EQ(info.rows(), 10000);
  EXPECT_TRUE(info.labelled());
  EXPECT_EQ(info.tensors(0).name(), "input");
  EXPECT_EQ(info.tensors(0).datatype(), "FP32");
  EXPECT_THAT(info.tensors(0).shape(), ::testing::ElementsAre(10000, 1, 28, 28));
  // The same images as tools/make_eval_set.py's (pixel / 255): the same digest.
  v1::DataSetInfo npz;
  ASSERT_TRUE(Upload(Chunks("npz", "fashion_mnist_test.npz", 0, 10000, 2500, 10000), &npz).ok());
  EXPECT_EQ(npz.sha256(), info.sha256());
}

TEST_F(CompressionTest, BadInputGetsClearErrors) {
  StartServer();
  UploadDataSets();
  v1::Job job;
  auto expect = [](const grpc::Status& s, grpc::StatusCode code, const std::string& message) {
    EXPECT_EQ(s.error_code(), code) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(message));
  };
  v1::CreateVariantRequest request;
  request.set_model("no_such_model");
  request.mutable_profile()->set_kind(v1::Profile::BF16);
  {
    grpc::ClientContext context;
    expect(compression_->CreateVariant(WithDeadline(context), request, &job), grpc::StatusCode::NOT_FOUND,
           "'no_such_model' is not loaded");
  }
  request.set_model(kModel);
  request.mutable_profile()->set_kind(v1::Profile::KIND_UNSPECIFIED);
  {
    grpc::ClientContext context;
    expect(compression_->CreateVariant(WithDeadline(context), request, &job), grpc::StatusCode::INVALID_ARGUMENT,
           "the profile needs a kind");
  }
  request.mutable_profile()->set_kind(v1::Profile::BF16);
  request.set_variant("../x");
  {
    grpc::ClientContext context;
    expect(compression_->CreateVariant(WithDeadline(context), request, &job), grpc::StatusCode::INVALID_ARGUMENT,
           "variant name");
  }
  expect(Create("int8-static,data=nothing", &job), grpc::StatusCode::NOT_FOUND, "no data set 'nothing'");
  expect(Create("bf16", &job, "nothing"), grpc::StatusCode::NOT_FOUND, "no data set 'nothing'");

  // Uploads: cut short, inconsistent, malformed. Nothing is stored.
  v1::DataSetInfo info;
  std::vector<v1::DataSetChunk> chunks = Chunks("short", "fashion_mnist_test.npz", 0, 100, 50, 200);
  expect(Upload(chunks, &info), grpc::StatusCode::INVALID_ARGUMENT, "ended after 100 of the 200 rows");
  chunks = Chunks("ragged", "fashion_mnist_test.npz", 0, 100, 50, 0);
  chunks[1].mutable_tensors(0)->set_raw_contents("xyz");
  expect(Upload(chunks, &info), grpc::StatusCode::INVALID_ARGUMENT, "bytes of contents");
  chunks = Chunks("unlabelled", "fashion_mnist_test.npz", 0, 100, 50, 0);
  chunks[1].clear_labels();
  expect(Upload(chunks, &info), grpc::StatusCode::INVALID_ARGUMENT, "labels must come with every chunk");
  {
    grpc::ClientContext context;
    v1::ListDataSetsResponse sets;
    ASSERT_TRUE(compression_->ListDataSets(WithDeadline(context), {}, &sets).ok());
    EXPECT_EQ(sets.data_sets_size(), 2);  // calibration, evaluation
  }

  // A data set that does not fit the model: the job fails and says why.
  chunks = Chunks("wide", "fashion_mnist_test.npz", 0, 100, 100, 0);
  chunks[0].mutable_tensors(0)->set_shape(3, 14);
  chunks[0].mutable_tensors(0)->set_shape(0, 200);
  chunks[0].clear_labels();
  ASSERT_TRUE(Upload(chunks, &info).ok());
  ASSERT_TRUE(Create("bf16", &job, "wide").ok());
  v1::Job failed = Watch(job.id()).back();
  EXPECT_EQ(failed.state(), v1::Job::FAILED);
  EXPECT_THAT(failed.message(), HasSubstr("data set 'wide': array 'input' is float32 [200,1,28,14]"));

  // A model with nothing int8 applies to.
  runtime::testing::GraphBuilder b;
  b.Input("x", {-1, 4});
  b.Node("Relu", {"x"}, {"y"});
  b.Output("y");
  runtime::Graph relu = b.Build();
  relu.outputs[0] = relu.inputs[0];
  relu.outputs[0].name = "y";
  inference::RepositoryModelLoadRequest load;
  load.set_model_name("relu");
  (*load.mutable_parameters())["config"].set_string_param("{\"name\": \"relu\"}");
  (*load.mutable_parameters())["file:1/model.onnx"].set_bytes_param(*runtime::ExportOnnxBytes(relu));
  {
    grpc::ClientContext context;
    inference::RepositoryModelLoadResponse loaded;
    const grpc::Status s = inference_->RepositoryModelLoad(WithDeadline(context), load, &loaded);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  {
    inference::ModelInferRequest infer;
    infer.set_model_name("relu");
    server::EncodeInput("x", runtime::Tensor::FromVector<float>({1, 4}, {1, -2, 3, -4}), infer);
    inference::ModelInferResponse response;
    grpc::ClientContext context;
    ASSERT_TRUE(inference_->ModelInfer(WithDeadline(context), infer, &response).ok());
  }
  request.set_model("relu");
  request.clear_variant();
  request.mutable_profile()->set_kind(v1::Profile::INT8_DYNAMIC);
  {
    grpc::ClientContext context;
    const grpc::Status s = compression_->CreateVariant(WithDeadline(context), request, &job);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  failed = Watch(job.id()).back();
  EXPECT_EQ(failed.state(), v1::Job::FAILED);
  EXPECT_THAT(failed.message(), HasSubstr("no Conv, Gemm or MatMul"));

  // Unknown names elsewhere.
  {
    grpc::ClientContext c1, c2, c3;
    v1::JobRef ref;
    ref.set_id("j999999");
    expect(compression_->GetJob(WithDeadline(c1), ref, &job), grpc::StatusCode::NOT_FOUND, "no compression job");
    v1::PromoteVariantRequest promote;
    promote.set_model(kModel);
    promote.set_variant("int4");
    v1::Variant variant;
    expect(compression_->PromoteVariant(WithDeadline(c2), promote, &variant), grpc::StatusCode::NOT_FOUND,
           "has no variant 'int4'");
    v1::VariantRef export_ref;
    export_ref.set_model(kModel);
    export_ref.set_variant("int4");
    auto reader = compression_->ExportVariant(WithDeadline(c3), export_ref);
    v1::FileChunk chunk;
    EXPECT_FALSE(reader->Read(&chunk));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  }
  // The server still serves.
  EXPECT_EQ(Answered(kModel), kModel);
}

}  // namespace
}  // namespace slimserve::testing
