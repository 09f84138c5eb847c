// End-to-end tests of slimserve over 127.0.0.1: the real binary, the bundled
// Fashion-MNIST model, gRPC calls and a metrics scrape over HTTP.
#include <signal.h>

#include <atomic>
#include <mutex>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "absl/strings/str_cat.h"
#include "runtime/npy.h"
#include "server/grpc/tensor_codec.h"
#include "tests/server/server_process.h"

namespace slimserve::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr char kModel[] = "fashion_mnist";

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// A repository holding a copy of the example model.
std::string ExampleRepository() {
  const std::string repo = TempDir();
  fs::copy(SLIMSERVE_EXAMPLE_DIR, fs::path(repo) / kModel, fs::copy_options::recursive);
  return repo;
}

// `rows` Fashion-MNIST-sized images: the sample first, then shifted copies.
runtime::Tensor Images(int64_t rows) {
  const runtime::Tensor sample = runtime::ReadNpy(std::string(SLIMSERVE_EXAMPLE_DIR) + "/sample_input.npy").value();
  runtime::Tensor t = runtime::Tensor::Allocate(runtime::DataType::kFloat32, {rows, 1, 28, 28}).value();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < 784; ++i) t.data<float>()[r * 784 + i] = sample.data<float>()[(i + 7 * r) % 784];
  }
  return t;
}

inference::ModelInferRequest InferRequest(const std::string& model, const runtime::Tensor& images) {
  inference::ModelInferRequest request;
  request.set_model_name(model);
  server::EncodeInput("input", images, request);
  return request;
}

class ServerTest : public ::testing::Test {
 protected:
  void StartServer(const std::vector<std::string>& extra = {}) {
    auto started = ServerProcess::ServeRepository(SLIMSERVE_BINARY, repo_, extra);
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = *std::move(started);
    stub_ = server_->Stub();
  }

  grpc::Status Infer(const inference::ModelInferRequest& request, inference::ModelInferResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return stub_->ModelInfer(&context, request, response);
  }

  // Logits of `images` from the server.
  runtime::Tensor Logits(const std::string& model, const runtime::Tensor& images) {
    inference::ModelInferResponse response;
    const grpc::Status status = Infer(InferRequest(model, images), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    if (!status.ok()) return {};
    return server::DecodeOutput(response, 0).value();
  }

  inference::ModelStatistics Statistics(const std::string& model) {
    grpc::ClientContext context;
    inference::ModelStatisticsRequest request;
    request.set_name(model);
    inference::ModelStatisticsResponse response;
    EXPECT_TRUE(stub_->ModelStatistics(&context, request, &response).ok());
    return response.model_stats_size() > 0 ? response.model_stats(0) : inference::ModelStatistics();
  }

  grpc::Status Upload(const std::string& name, const std::string& config_json, const std::string& bytes) {
    inference::RepositoryModelLoadRequest request;
    request.set_model_name(name);
    (*request.mutable_parameters())["config"].set_string_param(config_json);
    (*request.mutable_parameters())["file:1/model.onnx"].set_bytes_param(bytes);
    grpc::ClientContext context;
    inference::RepositoryModelLoadResponse response;
    return stub_->RepositoryModelLoad(&context, request, &response);
  }

  std::string repo_ = ExampleRepository();
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
};

// The calls a Triton or KServe client makes, from a C++ client built on the
// same protos.
TEST_F(ServerTest, ProtocolCallsAnswerLikeTriton) {
  StartServer();
  {
    grpc::ClientContext c1, c2;
    inference::ServerLiveResponse live;
    inference::ServerReadyResponse ready;
    ASSERT_TRUE(stub_->ServerLive(&c1, {}, &live).ok());
    ASSERT_TRUE(stub_->ServerReady(&c2, {}, &ready).ok());
    EXPECT_TRUE(live.live());
    EXPECT_TRUE(ready.ready());
  }
  {
    grpc::ClientContext context;
    inference::ServerMetadataResponse metadata;
    ASSERT_TRUE(stub_->ServerMetadata(&context, {}, &metadata).ok());
    EXPECT_EQ(metadata.name(), "slimserve");
    EXPECT_THAT(metadata.extensions(), ::testing::Contains("model_repository"));
  }
  {
    grpc::ClientContext context;
    inference::ModelMetadataRequest request;
    request.set_name(kModel);
    inference::ModelMetadataResponse metadata;
    ASSERT_TRUE(stub_->ModelMetadata(&context, request, &metadata).ok());
    ASSERT_EQ(metadata.inputs_size(), 1);
    EXPECT_EQ(metadata.inputs(0).name(), "input");
    EXPECT_EQ(metadata.inputs(0).datatype(), "FP32");
    EXPECT_THAT(metadata.inputs(0).shape(), ::testing::ElementsAre(-1, 1, 28, 28));
    EXPECT_THAT(metadata.outputs(0).shape(), ::testing::ElementsAre(-1, 10));
    EXPECT_THAT(metadata.versions(), ::testing::ElementsAre("1"));
  }
  {
    grpc::ClientContext context;
    inference::ModelConfigRequest request;
    request.set_name(kModel);
    inference::ModelConfigResponse config;
    ASSERT_TRUE(stub_->ModelConfig(&context, request, &config).ok());
    EXPECT_EQ(config.config().max_batch_size(), 64);
    EXPECT_TRUE(config.config().has_dynamic_batching());
    EXPECT_EQ(config.config().input(0).data_type(), inference::TYPE_FP32);
  }
  {
    grpc::ClientContext context;
    inference::RepositoryIndexResponse index;
    ASSERT_TRUE(stub_->RepositoryIndex(&context, {}, &index).ok());
    ASSERT_EQ(index.models_size(), 1);
    EXPECT_EQ(index.models(0).name(), kModel);
    EXPECT_EQ(index.models(0).state(), "READY");
  }
  // Typed contents in, typed contents out, the same logits as raw.
  const runtime::Tensor images = Images(2);
  inference::ModelInferRequest typed;
  typed.set_model_name(kModel);
  typed.set_id("typed-1");
  auto* input = typed.add_inputs();
  input->set_name("input");
  input->set_datatype("FP32");
  for (int64_t d : {2, 1, 28, 28}) input->add_shape(d);
  for (int64_t i = 0; i < images.num_elements(); ++i) input->mutable_contents()->add_fp32_contents(images.data<float>()[i]);
  inference::ModelInferResponse response;
  ASSERT_TRUE(Infer(typed, &response).ok());
  EXPECT_EQ(response.id(), "typed-1");
  EXPECT_EQ(response.model_version(), "1");
  EXPECT_EQ(response.raw_output_contents_size(), 0);
  ASSERT_EQ(response.outputs(0).contents().fp32_contents_size(), 20);
  const runtime::Tensor raw = Logits(kModel, images);
  for (int i = 0; i < 20; ++i) EXPECT_NEAR(response.outputs(0).contents().fp32_contents(i), raw.data<float>()[i], 1e-5);
}

TEST_F(ServerTest, BatchOneAndEightGiveTheSameRows) {
  StartServer();
  const runtime::Tensor images = Images(8);
  const runtime::Tensor batch = Logits(kModel, images);
  ASSERT_EQ(batch.shape(), (runtime::Shape{8, 10}));
  const float* sample = batch.data<float>();
  EXPECT_EQ(std::max_element(sample, sample + 10) - sample, 9) << "the sample is an ankle boot";
  for (int64_t r = 0; r < 8; ++r) {
    runtime::Tensor one = runtime::Tensor::Allocate(runtime::DataType::kFloat32, {1, 1, 28, 28}).value();
    std::memcpy(one.raw_data(), images.data<float>() + r * 784, 784 * sizeof(float));
    const runtime::Tensor row = Logits(kModel, one);
    for (int c = 0; c < 10; ++c) EXPECT_NEAR(row.data<float>()[c], batch.data<float>()[r * 10 + c], 1e-4);
  }
  EXPECT_EQ(Statistics(kModel).inference_count(), 16u);
}

TEST_F(ServerTest, ConcurrentRequestsFormBatchesAndMetricsCountThem) {
  StartServer();
  constexpr int kClients = 16, kEach = 25;
  std::atomic<int> failures{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&] {
      auto stub = server_->Stub();
      const inference::ModelInferRequest request = InferRequest(kModel, Images(1));
      for (int i = 0; i < kEach; ++i) {
        grpc::ClientContext context;
        inference::ModelInferResponse response;
        if (!stub->ModelInfer(&context, request, &response).ok()) ++failures;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(failures.load(), 0);
  const inference::ModelStatistics stats = Statistics(kModel);
  EXPECT_EQ(stats.inference_count(), static_cast<uint64_t>(kClients * kEach));
  EXPECT_LT(stats.execution_count(), stats.inference_count()) << "dynamic batching formed no batch";
  EXPECT_EQ(stats.inference_stats().success().count(), static_cast<uint64_t>(kClients * kEach));

  const std::string metrics = server_->ScrapeMetrics().value();
  const std::string labels = "model=\"fashion_mnist\",version=\"1\"";
  EXPECT_EQ(MetricValue(metrics, "slimserve_request_success_total", labels), kClients * kEach);
  EXPECT_EQ(MetricValue(metrics, "slimserve_request_duration_seconds_count", labels), kClients * kEach);
  EXPECT_EQ(MetricValue(metrics, "slimserve_inference_count_total", labels), kClients * kEach);
  EXPECT_EQ(MetricValue(metrics, "slimserve_execution_count_total", labels),
            static_cast<double>(stats.execution_count()));
  EXPECT_GT(MetricValue(metrics, "slimserve_batch_size_bucket", labels), 0);
  EXPECT_GT(MetricValue(metrics, "slimserve_model_load_duration_seconds", labels), 0);
}

// Two instances and a queue delay: both may wait on the same requests, and the
// one that loses the race must go back to waiting, not run an empty batch.
TEST_F(ServerTest, TwoInstancesShareTheQueue) {
  StartServer();
  const std::string onnx = ReadBytes(std::string(SLIMSERVE_EXAMPLE_DIR) + "/1/model.onnx");
  ASSERT_TRUE(Upload("two", R"({"max_batch_size": 8, "instance_group": [{"count": 2}],
                               "dynamic_batching": {"max_queue_delay_microseconds": 2000}})", onnx).ok());
  std::atomic<int> failures{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 6; ++c) {
    clients.emplace_back([&] {
      auto stub = server_->Stub();
      const inference::ModelInferRequest request = InferRequest("two", Images(1));
      for (int i = 0; i < 20; ++i) {
        grpc::ClientContext context;
        inference::ModelInferResponse response;
        if (!stub->ModelInfer(&context, request, &response).ok()) ++failures;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(Statistics("two").inference_count(), 120u);

  // Loading a name the repository does not have is NOT_FOUND, and leaves no trace.
  inference::RepositoryModelLoadRequest load;
  load.set_model_name("never_there");
  grpc::ClientContext context;
  inference::RepositoryModelLoadResponse loaded;
  EXPECT_EQ(stub_->RepositoryModelLoad(&context, load, &loaded).error_code(), grpc::StatusCode::NOT_FOUND);
  inference::ModelInferResponse response;
  EXPECT_EQ(Infer(InferRequest("never_there", Images(1)), &response).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ServerTest, UploadServeUnloadAndKeepAcrossRestart) {
  StartServer();
  const std::string onnx = ReadBytes(std::string(SLIMSERVE_EXAMPLE_DIR) + "/1/model.onnx");
  ASSERT_TRUE(Upload("uploaded", R"({"max_batch_size": 4, "dynamic_batching": {}})", onnx).ok());
  const runtime::Tensor logits = Logits("uploaded", Images(2));
  EXPECT_EQ(logits.shape(), (runtime::Shape{2, 10}));

  // Unload while requests are in flight: each either completes or is refused
  // as unknown/unavailable, never cut off.
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, refused{0}, broken{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&] {
      auto stub = server_->Stub();
      const inference::ModelInferRequest request = InferRequest("uploaded", Images(1));
      while (!stop) {
        grpc::ClientContext context;
        inference::ModelInferResponse response;
        const grpc::Status s = stub->ModelInfer(&context, request, &response);
        if (s.ok()) {
          ++ok;
        } else if (s.error_code() == grpc::StatusCode::NOT_FOUND ||
                   s.error_code() == grpc::StatusCode::UNAVAILABLE) {
          ++refused;
        } else {
          ++broken;
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  {
    grpc::ClientContext context;
    inference::RepositoryModelUnloadRequest request;
    request.set_model_name("uploaded");
    inference::RepositoryModelUnloadResponse response;
    ASSERT_TRUE(stub_->RepositoryModelUnload(&context, request, &response).ok());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_GT(ok.load(), 0);
  EXPECT_GT(refused.load(), 0);
  EXPECT_EQ(broken.load(), 0);
  {
    grpc::ClientContext context;
    inference::ModelReadyRequest request;
    request.set_name("uploaded");
    inference::ModelReadyResponse response;
    ASSERT_TRUE(stub_->ModelReady(&context, request, &response).ok());
    EXPECT_FALSE(response.ready());
  }

  // The upload is in the repository: a restarted server serves it again.
  EXPECT_EQ(server_->Terminate(30), 0);
  StartServer();
  const runtime::Tensor again = Logits("uploaded", Images(2));
  ASSERT_EQ(again.shape(), (runtime::Shape{2, 10}));
  for (int i = 0; i < 20; ++i) EXPECT_NEAR(again.data<float>()[i], logits.data<float>()[i], 1e-5);
}

TEST_F(ServerTest, BadRequestsGetClearErrorsAndTheServerKeepsServing) {
  StartServer({"--max-message-bytes", "1500000"});  // the model is 1.07 MB
  struct Case {
    const char* what;
    inference::ModelInferRequest request;
    grpc::StatusCode code;
    const char* message;
  };
  std::vector<Case> cases;
  auto add = [&](const char* what, grpc::StatusCode code, const char* message, auto edit) {
    inference::ModelInferRequest request = InferRequest(kModel, Images(1));
    edit(request);
    cases.push_back({what, request, code, message});
  };
  add("wrong dtype", grpc::StatusCode::INVALID_ARGUMENT, "datatype", [](auto& r) {
    r.mutable_inputs(0)->set_datatype("FP64");
    r.mutable_raw_input_contents(0)->append(784 * 4, '\0');
  });
  add("wrong shape", grpc::StatusCode::INVALID_ARGUMENT, "shape", [](auto& r) {
    r.mutable_inputs(0)->clear_shape();
    for (int64_t d : {1, 1, 784}) r.mutable_inputs(0)->add_shape(d);
  });
  add("byte size mismatch", grpc::StatusCode::INVALID_ARGUMENT, "bytes", [](auto& r) {
    r.mutable_raw_input_contents(0)->resize(100);
  });
  add("unknown model", grpc::StatusCode::NOT_FOUND, "unknown model", [](auto& r) { r.set_model_name("nope"); });
  add("unknown version", grpc::StatusCode::NOT_FOUND, "version", [](auto& r) { r.set_model_version("7"); });
  add("unknown output", grpc::StatusCode::INVALID_ARGUMENT, "no output", [](auto& r) {
    r.add_outputs()->set_name("probabilities");
  });
  add("missing input", grpc::StatusCode::INVALID_ARGUMENT, "missing", [](auto& r) {
    r.clear_inputs();
    r.clear_raw_input_contents();
  });
  add("batch over max_batch_size", grpc::StatusCode::INVALID_ARGUMENT, "batch size", [](auto& r) {
    r = InferRequest(kModel, Images(65));
  });
  add("oversized message", grpc::StatusCode::RESOURCE_EXHAUSTED, "", [](auto& r) {
    r.mutable_raw_input_contents(0)->append(2000000, '\0');
  });
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    inference::ModelInferResponse response;
    const grpc::Status status = Infer(c.request, &response);
    EXPECT_EQ(status.error_code(), c.code) << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr(c.message));
  }

  const std::string onnx = ReadBytes(std::string(SLIMSERVE_EXAMPLE_DIR) + "/1/model.onnx");
  struct UploadCase {
    const char* what;
    std::string config, bytes;
    const char* message;
  };
  const UploadCase uploads[] = {
      {"malformed ONNX", "{}", onnx.substr(0, onnx.size() / 2), "model"},
      {"garbage config JSON", "{not json", onnx, "JSON"},
      {"0-byte file", "{}", "", "empty"},
      {"config for a batch the model cannot have", R"({"max_batch_size": 4, "input": [{"name": "input",
        "data_type": "TYPE_FP32", "dims": [3, 28, 28]}]})", onnx, "dims"},
  };
  for (const UploadCase& u : uploads) {
    SCOPED_TRACE(u.what);
    const grpc::Status status = Upload("bad_upload", u.config, u.bytes);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr(u.message));
  }
  // A broken upload over a serving model changes nothing, in memory or on disk.
  const grpc::Status replaced = Upload(kModel, "{}", onnx.substr(0, 1000));
  EXPECT_EQ(replaced.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << replaced.error_message();
  EXPECT_EQ(ReadBytes(repo_ + "/fashion_mnist/1/model.onnx"), onnx);
  EXPECT_FALSE(fs::exists(fs::path(repo_) / "bad_upload"));

  // Still serving.
  const runtime::Tensor logits = Logits(kModel, Images(1));
  EXPECT_EQ(logits.shape(), (runtime::Shape{1, 10}));
  const std::string metrics = server_->ScrapeMetrics().value();
  EXPECT_GE(MetricValue(metrics, "slimserve_request_failure_total", "model=\"fashion_mnist\""), 5);
}

TEST_F(ServerTest, SigtermUnderLoadCompletesEveryAcceptedRequest) {
  StartServer();
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, refused{0}, broken{0};
  std::mutex mu;
  std::string broken_errors;
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&] {
      auto stub = server_->Stub();
      const inference::ModelInferRequest request = InferRequest(kModel, Images(4));
      while (!stop) {
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
        inference::ModelInferResponse response;
        const grpc::Status s = stub->ModelInfer(&context, request, &response);
        if (s.ok() && response.outputs_size() == 1) {
          ++ok;
        } else if (s.error_code() == grpc::StatusCode::UNAVAILABLE ||
                   s.error_code() == grpc::StatusCode::CANCELLED) {
          // Not accepted: refused while draining, or, in the last instant,
          // cancelled by gRPC's shutdown before any handler started it.
          ++refused;
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        } else {
          ++broken;
          std::lock_guard<std::mutex> lock(mu);
          broken_errors += absl::StrCat(s.error_code(), ": ", s.error_message(), "\n");
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(server_->Terminate(30), 0) << server_->output();
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(broken.load(), 0) << broken_errors;
  EXPECT_THAT(server_->output(), HasSubstr("slimserve: stopped"));
}

}  // namespace
}  // namespace slimserve::testing
