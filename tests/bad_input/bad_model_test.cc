// Malformed and hostile models: each must fail to load (or to run) with a
// clear status naming the problem, allocate nothing before sizes are checked,
// and never crash. Run under ASan/UBSan in CI.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "gtest/gtest.h"
#include "onnx/onnx_pb.h"
#include "runtime/executor.h"
#include "runtime/onnx_export.h"
#include "runtime/onnx_import.h"

namespace slimserve::runtime {
namespace {

namespace fs = std::filesystem;

constexpr char kSuiteModel[] =
    "/usr/share/libonnx-testdata/data/node/test_conv_with_strides_and_asymmetric_padding/model.onnx";

onnx::ModelProto BaseModel(int64_t opset = 13) {
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.add_opset_import()->set_version(opset);
  onnx::GraphProto* g = model.mutable_graph();
  auto* in = g->add_input();
  in->set_name("x");
  auto* type = in->mutable_type()->mutable_tensor_type();
  type->set_elem_type(onnx::TensorProto::FLOAT);
  type->mutable_shape()->add_dim()->set_dim_value(4);
  g->add_output()->set_name("y");
  return model;
}

onnx::NodeProto* AddNode(onnx::ModelProto& model, const std::string& op,
                         std::vector<std::string> inputs, std::vector<std::string> outputs) {
  onnx::NodeProto* node = model.mutable_graph()->add_node();
  node->set_op_type(op);
  node->set_name(op + "_" + outputs[0]);
  for (auto& i : inputs) node->add_input(i);
  for (auto& o : outputs) node->add_output(o);
  return node;
}

absl::Status Load(const onnx::ModelProto& model, const std::string& dir = "") {
  absl::StatusOr<Graph> graph = ImportOnnxBytes(model.SerializeAsString(), dir, {});
  if (!graph.ok()) return graph.status();
  return Executor::Create(*std::move(graph), {}).status();
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void ExpectError(const absl::Status& s, absl::StatusCode code, const std::string& words) {
  EXPECT_EQ(s.code(), code) << s;
  EXPECT_NE(s.message().find(words), std::string::npos) << "message: " << s.message();
}

TEST(BadModelTest, EveryTruncationFailsCleanlyOrLoads) {
  const std::string bytes = ReadFile(kSuiteModel);
  ASSERT_GT(bytes.size(), 100u);
  int errors = 0;
  for (size_t n = 0; n < bytes.size(); ++n) {
    absl::StatusOr<Graph> graph = ImportOnnxBytes(absl::string_view(bytes.data(), n), "", {});
    if (!graph.ok()) {
      ++errors;
      continue;
    }
    // A prefix can still parse (fields are optional); then it must validate or fail cleanly.
    auto executor = Executor::Create(*std::move(graph), {});
    if (!executor.ok()) ++errors;
  }
  EXPECT_GT(errors, static_cast<int>(bytes.size() / 2));
  EXPECT_EQ(ImportOnnxBytes("", "", {}).status().message(), "model is empty");
}

TEST(BadModelTest, RandomBytesAreRejected) {
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string bytes(rng() % 512, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    absl::StatusOr<Graph> graph = ImportOnnxBytes(bytes, "", {});
    if (graph.ok()) (void)Executor::Create(*std::move(graph), {});
  }
  ExpectError(ImportOnnxBytes("\xff\xff\xff\xff garbage", "", {}).status(),
              absl::StatusCode::kInvalidArgument, "not a valid ONNX protobuf");
}

TEST(BadModelTest, CycleAndMissingInputAreNamed) {
  onnx::ModelProto cycle = BaseModel();
  AddNode(cycle, "Add", {"x", "b"}, {"a"});
  AddNode(cycle, "Relu", {"a"}, {"b"});
  AddNode(cycle, "Relu", {"b"}, {"y"});
  ExpectError(Load(cycle), absl::StatusCode::kInvalidArgument, "cycle");

  onnx::ModelProto missing = BaseModel();
  AddNode(missing, "Add", {"x", "nowhere"}, {"y"});
  ExpectError(Load(missing), absl::StatusCode::kInvalidArgument, "'nowhere'");
}

TEST(BadModelTest, HugeAndNegativeShapesFailBeforeAllocation) {
  onnx::ModelProto huge = BaseModel();
  onnx::TensorProto* t = huge.mutable_graph()->add_initializer();
  t->set_name("w");
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->add_dims(int64_t{1} << 20);
  t->add_dims(int64_t{1} << 20);  // 2^40 floats, no data
  AddNode(huge, "Add", {"x", "w"}, {"y"});
  ExpectError(Load(huge), absl::StatusCode::kResourceExhausted, "tensor 'w'");

  onnx::ModelProto negative = BaseModel();
  t = negative.mutable_graph()->add_initializer();
  t->set_name("w");
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->add_dims(-3);
  AddNode(negative, "Add", {"x", "w"}, {"y"});
  ExpectError(Load(negative), absl::StatusCode::kInvalidArgument, "negative dimension");

  onnx::ModelProto negative_input = BaseModel();
  negative_input.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()
      ->mutable_shape()->mutable_dim(0)->set_dim_value(-1);
  AddNode(negative_input, "Relu", {"x"}, {"y"});
  ExpectError(Load(negative_input), absl::StatusCode::kInvalidArgument, "negative dimension");

  // A computed 2^40-element tensor: refused when the plan is built, not allocated.
  onnx::ModelProto expand = BaseModel();
  onnx::TensorProto* shape = expand.mutable_graph()->add_initializer();
  shape->set_name("shape");
  shape->set_data_type(onnx::TensorProto::INT64);
  shape->add_dims(2);
  shape->add_int64_data(int64_t{1} << 20);
  shape->add_int64_data(int64_t{1} << 20);
  AddNode(expand, "Expand", {"x", "shape"}, {"y"});
  auto graph = ImportOnnxBytes(expand.SerializeAsString(), "", {});
  ASSERT_TRUE(graph.ok()) << graph.status();
  auto executor = Executor::Create(*std::move(graph), {});
  ASSERT_TRUE(executor.ok()) << executor.status();
  Tensor x = Tensor::Allocate(DataType::kFloat32, {4}).value();
  auto run = (*executor)->Run({x});
  EXPECT_FALSE(run.ok());
}

// x + w with w = [0, 2, 0, 5] stored sparse (values at linear positions).
onnx::ModelProto SparseModel(std::vector<int64_t> positions, std::vector<int64_t> dims = {4}) {
  onnx::ModelProto model = BaseModel();
  onnx::SparseTensorProto* w = model.mutable_graph()->add_sparse_initializer();
  for (int64_t d : dims) w->add_dims(d);
  w->mutable_values()->set_name("w");
  w->mutable_values()->set_data_type(onnx::TensorProto::FLOAT);
  w->mutable_values()->add_dims(2);
  w->mutable_values()->add_float_data(2);
  w->mutable_values()->add_float_data(5);
  w->mutable_indices()->set_data_type(onnx::TensorProto::INT64);
  w->mutable_indices()->add_dims(static_cast<int64_t>(positions.size()));
  for (int64_t p : positions) w->mutable_indices()->add_int64_data(p);
  AddNode(model, "Add", {"x", "w"}, {"y"});
  return model;
}

TEST(BadModelTest, SparseInitializersLoadAndBadOnesAreNamed) {
  auto graph = ImportOnnxBytes(SparseModel({1, 3}).SerializeAsString(), "", {});
  ASSERT_TRUE(graph.ok()) << graph.status();
  const Tensor& w = graph->initializers.at("w");
  EXPECT_EQ(std::vector<float>(w.data<float>(), w.data<float>() + 4), (std::vector<float>{0, 2, 0, 5}));

  ExpectError(Load(SparseModel({1, 4})), absl::StatusCode::kInvalidArgument, "sparse tensor 'w': index 4 out of range");
  ExpectError(Load(SparseModel({1})), absl::StatusCode::kInvalidArgument, "sparse tensor 'w': needs 1-D values");
  ExpectError(Load(SparseModel({1, 3}, {int64_t{1} << 20, int64_t{1} << 20})), absl::StatusCode::kResourceExhausted,
              "sparse tensor 'w'");

  // Export stores a mostly-zero float constant sparse, and reads back the same values.
  Graph dense;
  Tensor big = Tensor::Allocate(DataType::kFloat32, {64, 128}).value();
  for (int64_t i = 0; i < big.num_elements(); ++i) big.data<float>()[i] = i % 10 == 3 ? 0.5f * i : 0.0f;
  dense.initializers["big"] = big;
  dense.opset = 13;
  auto bytes = ExportOnnxBytes(dense);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  onnx::ModelProto exported;
  ASSERT_TRUE(exported.ParseFromString(*bytes));
  EXPECT_EQ(exported.graph().sparse_initializer_size(), 1);
  EXPECT_LT(bytes->size(), big.byte_size() / 3);
  auto back = ImportOnnxBytes(*bytes, "", {});
  ASSERT_TRUE(back.ok()) << back.status();
  const Tensor& read = back->initializers.at("big");
  EXPECT_EQ(std::memcmp(read.raw_data(), big.raw_data(), big.byte_size()), 0);
}

TEST(BadModelTest, ExternalDataMustStayInTheModelFolder) {
  const fs::path dir = fs::temp_directory_path() / "slimserve_bad_model_test";
  fs::create_directories(dir / "model");
  std::ofstream(dir / "secret.bin", std::ios::binary) << std::string(16, 'x');
  for (const std::string& location : {std::string("../secret.bin"), (dir / "secret.bin").string()}) {
    onnx::ModelProto model = BaseModel();
    onnx::TensorProto* t = model.mutable_graph()->add_initializer();
    t->set_name("w");
    t->set_data_type(onnx::TensorProto::FLOAT);
    t->add_dims(4);
    t->set_data_location(onnx::TensorProto::EXTERNAL);
    auto* kv = t->add_external_data();
    kv->set_key("location");
    kv->set_value(location);
    AddNode(model, "Add", {"x", "w"}, {"y"});
    const absl::Status s = Load(model, (dir / "model").string());
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << location << ": " << s;
    EXPECT_TRUE(s.message().find("outside the model's folder") != std::string::npos ||
                s.message().find("must be a relative path") != std::string::npos)
        << s.message();
  }
  fs::remove_all(dir);
}

TEST(BadModelTest, OpsetFromTheFutureAndUnknownOps) {
  onnx::ModelProto future = BaseModel(99);
  AddNode(future, "Relu", {"x"}, {"y"});
  ExpectError(Load(future), absl::StatusCode::kUnimplemented, "opset 99");

  onnx::ModelProto unknown = BaseModel();
  AddNode(unknown, "FancyNewOp", {"x"}, {"y"});
  ExpectError(Load(unknown), absl::StatusCode::kUnimplemented, "FancyNewOp");
}

TEST(BadModelTest, InvalidAttributesFailWhenThePlanIsBuilt) {
  onnx::ModelProto model = BaseModel();
  onnx::TensorProto* idx = model.mutable_graph()->add_initializer();
  idx->set_name("idx");
  idx->set_data_type(onnx::TensorProto::INT64);
  idx->add_dims(1);
  idx->add_int64_data(1000);  // out of range for a dim of 4
  AddNode(model, "Gather", {"x", "idx"}, {"y"});
  auto graph = ImportOnnxBytes(model.SerializeAsString(), "", {});
  ASSERT_TRUE(graph.ok());
  auto executor = Executor::Create(*std::move(graph), {}).value();
  Tensor x = Tensor::Allocate(DataType::kFloat32, {4}).value();
  const absl::Status s = executor->Run({x}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("out of range"), std::string::npos) << s;
}

}  // namespace
}  // namespace slimserve::runtime
