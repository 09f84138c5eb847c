#include "cli/variants.h"

#include <unistd.h>
#include <zlib.h>

#include <cstring>
#include <fstream>
#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/client.h"
#include "cli/common.h"
#include "compression/profile.h"
#include "proto/compression.grpc.pb.h"
#include "runtime/npy.h"
#include "runtime/status_macros.h"
#include "server/core/compressor.h"
#include "server/core/config.h"

namespace slimserve::cli {
namespace {

using v1::Compression;

std::unique_ptr<Compression::Stub> Stub(const Args& args) { return Compression::NewStub(Connect(args)); }

// Calls a unary method with a deadline; its error names `what`.
template <typename Method, typename Request, typename Response>
absl::Status Call(const Args& args, Method method, const Request& request, Response* response, const char* what,
                  int seconds = 60) {
  grpc::ClientContext context;
  SetDeadline(context, seconds);
  auto stub = Stub(args);
  return FromGrpc(((*stub).*method)(&context, request, response), what);
}

int Done(const absl::Status& status) { return status.ok() ? 0 : Fail(status); }

std::string Percent(double v) { return v < 0 ? "-" : absl::StrFormat("%.2f", v); }

// "[#########.........]  45 %  calibrating" on one terminal line, or a line
// per stage when stderr is not a terminal.
class ProgressBar {
 public:
  void Show(const v1::Job& job) {
    const std::string stage = job.stage().empty() ? v1::Job::State_Name(job.state()) : job.stage();
    if (!isatty(STDERR_FILENO)) {
      if (stage != last_stage_) std::cerr << absl::StrFormat("%3.0f %%  %s\n", 100 * job.progress(), stage);
      last_stage_ = stage;
      return;
    }
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(job.progress() * kWidth + 0.5);
    std::cerr << "\r[" << std::string(filled, '#') << std::string(kWidth - filled, '.') << "] "
              << absl::StrFormat("%3.0f %%  %-12s", 100 * job.progress(), stage) << std::flush;
  }
  void Finish() {
    if (isatty(STDERR_FILENO)) std::cerr << "\n";
  }

 private:
  std::string last_stage_;
};

}  // namespace

absl::Status CompressOnServer(const Args& args) {
  if (args.positional().size() != 1 || !args.Has("profile")) {
    return absl::InvalidArgumentError("give MODEL and --profile PROFILE (see --help)");
  }
  std::string text = args.Get("profile");
  for (const char* key : {"calibration", "percentile", "samples", "data"}) {
    if (args.Has(key)) absl::StrAppend(&text, ",", key, "=", args.Get(key));
  }
  for (const std::string& keep : args.GetAll("keep-fp32")) absl::StrAppend(&text, ",keep=", keep);
  ASSIGN_OR_RETURN(compression::Profile profile, compression::ParseProfile(text));
  v1::CreateVariantRequest request;
  request.set_model(args.positional()[0]);
  *request.mutable_profile() = server::ProfileToProto(profile);
  request.set_variant(args.Get("variant"));
  request.set_evaluation_data(args.Get("eval"));
  v1::Job job;
  RETURN_IF_ERROR(Call(args, &Compression::Stub::CreateVariant, request, &job, "CreateVariant", 120));
  std::cerr << "job " << job.id() << ": " << job.model() << "." << job.variant() << " ("
            << compression::ProfileText(profile) << ")\n";
  if (!args.Has("no-wait") && !job.cache_hit()) {
    grpc::ClientContext context;
    v1::JobRef ref;
    ref.set_id(job.id());
    auto stub = Stub(args);
    auto reader = stub->WatchJob(&context, ref);
    ProgressBar bar;
    while (reader->Read(&job)) bar.Show(job);
    bar.Finish();
    RETURN_IF_ERROR(FromGrpc(reader->Finish(), "WatchJob"));
  }
  if (job.state() == v1::Job::QUEUED || job.state() == v1::Job::RUNNING) {
    std::cout << "job " << job.id() << " " << v1::Job::State_Name(job.state()) << " (slimctl jobs, slimctl cancel "
              << job.id() << ")\n";
    return absl::OkStatus();
  }
  if (job.state() == v1::Job::FAILED || job.state() == v1::Job::CANCELLED) {
    return absl::AbortedError(absl::StrCat("job ", job.id(), " ", v1::Job::State_Name(job.state()), ": ", job.message()));
  }
  std::cout << v1::Job::State_Name(job.state()) << (job.cache_hit() ? " (cache hit)" : "") << ": " << job.message()
            << "\n";
  for (const std::string& kept : job.kept_fp32()) std::cout << "  fp32: " << kept << "\n";
  for (const std::string& layer : job.layers()) std::cout << "  " << layer << "\n";
  if (job.state() == v1::Job::SUCCEEDED) {
    std::cout << "served as " << job.model() << "." << job.variant() << " (slimctl variants " << job.model() << ")\n";
  }
  return absl::OkStatus();
}

int VariantsCommand(const Args& args) {
  if (args.positional().size() > 1) return Fail(absl::InvalidArgumentError("give at most one model name"));
  const std::string model = args.positional().empty() ? "" : args.positional()[0];
  if (args.Has("delete")) {
    v1::VariantRef ref;
    ref.set_model(model);
    ref.set_variant(args.Get("delete"));
    v1::DeleteVariantResponse response;
    const absl::Status status = Call(args, &Compression::Stub::DeleteVariant, ref, &response, "DeleteVariant");
    if (status.ok()) std::cout << "deleted " << model << "." << args.Get("delete") << "\n";
    return Done(status);
  }
  v1::ListVariantsRequest request;
  request.set_model(model);
  v1::ListVariantsResponse response;
  const absl::Status status = Call(args, &Compression::Stub::ListVariants, request, &response, "ListVariants");
  if (!status.ok()) return Fail(status);
  std::cout << absl::StrFormat("%-32s %-8s %-8s %-9s %-8s %-9s %-9s %-10s %-10s %-8s %-8s %s\n", "VARIANT", "TOP-1",
                               "(ORIG)", "AGREE %", "SQNR dB", "P50 ms", "(ORIG)", "SIZE", "PARAMS", "ZEROS %", "SERVED",
                               "PROMOTED");
  for (const v1::Variant& v : response.variants()) {
    const v1::Measurements& m = v.measurements();
    std::cout << absl::StrFormat("%-32s %-8s %-8s %-9.2f %-8.1f %-9.3f %-9.3f %-10d %-10d %-8.1f %-8s %s\n",
                                 v.served_name(), Percent(m.variant_top1()), Percent(m.original_top1()), m.agreement(),
                                 m.sqnr_db(), m.p50_ms(), m.original_p50_ms(), m.size_bytes(), m.parameters(),
                                 m.zeros_percent(), v.served() ? "yes" : "no", v.promoted() ? "yes" : "");
  }
  return 0;
}

int PromoteCommand(const Args& args) {
  const size_t n = args.positional().size();
  if (!(n == 2 || (n == 1 && args.Has("original")))) {
    return Fail(absl::InvalidArgumentError("give MODEL VARIANT, or MODEL --original"));
  }
  v1::PromoteVariantRequest request;
  request.set_model(args.positional()[0]);
  if (n == 2) request.set_variant(args.positional()[1]);
  request.set_force(args.Has("force"));
  double loss = 0;
  if (args.Has("max-agreement-loss") && !absl::SimpleAtod(args.Get("max-agreement-loss"), &loss)) {
    return Fail(absl::InvalidArgumentError("--max-agreement-loss takes a number of points"));
  }
  request.set_max_agreement_loss(loss);
  v1::Variant variant;
  const absl::Status status = Call(args, &Compression::Stub::PromoteVariant, request, &variant, "PromoteVariant");
  if (status.ok()) std::cout << request.model() << " now routes to " << variant.served_name() << "\n";
  return Done(status);
}

int ExportCommand(const Args& args) {
  if (args.positional().size() != 2 || args.Get("o").empty()) {
    return Fail(absl::InvalidArgumentError("give MODEL VARIANT -o FILE.onnx"));
  }
  v1::VariantRef ref;
  ref.set_model(args.positional()[0]);
  ref.set_variant(args.positional()[1]);
  grpc::ClientContext context;
  auto stub = Stub(args);
  auto reader = stub->ExportVariant(&context, ref);
  const std::string path = args.Get("o"), partial = path + ".part";
  std::ofstream out(partial, std::ios::binary);
  v1::FileChunk chunk;
  int64_t total = -1, received = 0;
  while (reader->Read(&chunk)) {
    if (total < 0) total = chunk.total_bytes();
    out.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size()));
    received += static_cast<int64_t>(chunk.data().size());
  }
  out.close();
  absl::Status status = FromGrpc(reader->Finish(), "ExportVariant");
  if (status.ok() && (!out || received != total)) {
    status = absl::DataLossError(absl::StrCat("received ", received, " of ", total, " bytes, or could not write ", path));
  }
  if (!status.ok() || std::rename(partial.c_str(), path.c_str()) != 0) {
    std::remove(partial.c_str());
    return Fail(status.ok() ? absl::UnavailableError("cannot write " + path) : status);
  }
  std::cout << "wrote " << path << " (" << received << " bytes)\n";
  return 0;
}

int JobsCommand(const Args& args) {
  v1::ListJobsRequest request;
  if (!args.positional().empty()) request.set_model(args.positional()[0]);
  v1::ListJobsResponse response;
  const absl::Status status = Call(args, &Compression::Stub::ListJobs, request, &response, "ListJobs");
  if (!status.ok()) return Fail(status);
  std::cout << absl::StrFormat("%-8s %-40s %-10s %-12s %-6s %s\n", "JOB", "VARIANT", "STATE", "STAGE", "DONE", "MESSAGE");
  for (const v1::Job& j : response.jobs()) {
    std::cout << absl::StrFormat("%-8s %-40s %-10s %-12s %4.0f %% %s\n", j.id(), j.model() + "." + j.variant(),
                                 v1::Job::State_Name(j.state()), j.stage(), 100 * j.progress(), j.message());
  }
  return 0;
}

int CancelCommand(const Args& args) {
  if (args.positional().size() != 1) return Fail(absl::InvalidArgumentError("give the job's id"));
  v1::JobRef ref;
  ref.set_id(args.positional()[0]);
  v1::Job job;
  const absl::Status status = Call(args, &Compression::Stub::CancelJob, ref, &job, "CancelJob");
  if (status.ok()) std::cout << job.id() << ": " << v1::Job::State_Name(job.state()) << "\n";
  return Done(status);
}

namespace {

// An IDX file (gzipped or not; MNIST's format): uint8 images [N, H, W] or
// labels [N]. Images become float32 [N, 1, H, W] divided by `divisor`, labels int64.
absl::StatusOr<runtime::Tensor> ReadIdx(const std::string& path, float divisor) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) return absl::NotFoundError(absl::StrCat("cannot open '", path, "'"));
  std::string bytes;
  char buffer[1 << 16];
  for (int n; (n = gzread(f, buffer, sizeof(buffer))) > 0;) bytes.append(buffer, n);
  gzclose(f);
  auto be32 = [&](size_t at) {
    const auto* b = reinterpret_cast<const unsigned char*>(bytes.data() + at);
    return (int64_t{b[0]} << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
  };
  const int64_t rank = bytes.size() >= 4 ? static_cast<unsigned char>(bytes[3]) : 0;
  if (bytes.size() < 4 || bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 || (rank != 1 && rank != 3) ||
      bytes.size() < static_cast<size_t>(4 + 4 * rank)) {
    return absl::InvalidArgumentError(absl::StrCat("'", path, "' is not a uint8 IDX file of images or labels"));
  }
  runtime::Shape shape;
  int64_t count = 1;
  for (int64_t d = 0; d < rank; ++d) count *= shape.emplace_back(be32(4 + 4 * d));
  const size_t offset = 4 + 4 * rank;
  if (bytes.size() != offset + count) {
    return absl::InvalidArgumentError(absl::StrCat("'", path, "' is truncated: ", bytes.size() - offset, " of ", count,
                                                   " bytes"));
  }
  const auto* v = reinterpret_cast<const unsigned char*>(bytes.data() + offset);
  if (rank == 1) {
    runtime::Tensor labels = *runtime::Tensor::Allocate(runtime::DataType::kInt64, shape);
    for (int64_t i = 0; i < count; ++i) labels.data<int64_t>()[i] = v[i];
    return labels;
  }
  shape.insert(shape.begin() + 1, 1);
  runtime::Tensor images = *runtime::Tensor::Allocate(runtime::DataType::kFloat32, shape);
  for (int64_t i = 0; i < count; ++i) images.data<float>()[i] = v[i] / divisor;
  return images;
}

// The arrays to upload: an .npz's (`labels`: int64 labels), or IDX images
// (named --input, default "input") with --labels.
absl::StatusOr<std::vector<std::pair<std::string, runtime::Tensor>>> ReadArrays(const Args& args) {
  const std::string from = args.Get("from");
  if (from.empty()) return absl::InvalidArgumentError("give --from FILE.npz or --from IMAGES-idx3-ubyte[.gz]");
  if (absl::EndsWith(from, ".npz")) return runtime::ReadNpz(from);
  double divisor = 255;
  if (args.Has("divide-by") && (!absl::SimpleAtod(args.Get("divide-by"), &divisor) || divisor == 0)) {
    return absl::InvalidArgumentError("--divide-by takes a number other than 0");
  }
  std::vector<std::pair<std::string, runtime::Tensor>> arrays;
  ASSIGN_OR_RETURN(runtime::Tensor images, ReadIdx(from, static_cast<float>(divisor)));
  if (images.rank() != 4) return absl::InvalidArgumentError(absl::StrCat("'", from, "' holds labels: give it with --labels"));
  arrays.emplace_back(args.Get("input", "input"), std::move(images));
  if (args.Has("labels")) {
    ASSIGN_OR_RETURN(runtime::Tensor labels, ReadIdx(args.Get("labels"), 1));
    if (labels.rank() != 1) {
      return absl::InvalidArgumentError(absl::StrCat("'", args.Get("labels"), "' holds images, not labels"));
    }
    arrays.emplace_back("labels", std::move(labels));
  }
  return arrays;
}

// Uploads the arrays in chunks of about 4 MiB.
absl::Status Upload(const Args& args, const std::string& name) {
  ASSIGN_OR_RETURN(auto arrays, ReadArrays(args));
  const std::string from = args.Get("from");
  runtime::Tensor labels;
  std::vector<std::pair<std::string, runtime::Tensor>> inputs;
  for (auto& [array, t] : arrays) {
    if (array == "labels") {
      if (t.dtype() != runtime::DataType::kInt64) return absl::InvalidArgumentError("'labels' must be int64");
      labels = t;
    } else if (t.rank() >= 1) {
      inputs.emplace_back(array, t);
    }
  }
  if (inputs.empty()) return absl::InvalidArgumentError(absl::StrCat("'", from, "' has no arrays"));
  const int64_t rows = inputs[0].second.shape()[0];
  int64_t row_bytes = 0;
  for (const auto& [array, t] : inputs) row_bytes += static_cast<int64_t>(t.byte_size()) / std::max<int64_t>(rows, 1);
  const int64_t per_chunk = std::max<int64_t>(1, (int64_t{4} << 20) / std::max<int64_t>(row_bytes, 1));

  grpc::ClientContext context;
  auto stub = Stub(args);
  v1::DataSetInfo info;
  auto writer = stub->UploadDataSet(&context, &info);
  for (int64_t begin = 0; begin < rows; begin += per_chunk) {
    const int64_t count = std::min(per_chunk, rows - begin);
    v1::DataSetChunk chunk;
    if (begin == 0) {
      chunk.set_name(name);
      chunk.set_total_rows(rows);
    }
    for (const auto& [array, t] : inputs) {
      if (t.shape()[0] != rows) return absl::InvalidArgumentError("the arrays differ in rows (first dimension)");
      v1::DataSetTensor& out = *chunk.add_tensors();
      out.set_name(array);
      out.set_datatype(server::WireDataType(t.dtype()));
      out.add_shape(count);
      for (int64_t d = 1; d < t.rank(); ++d) out.add_shape(t.shape()[d]);
      const size_t bytes = t.byte_size() / rows;
      out.set_raw_contents(static_cast<const char*>(t.raw_data()) + begin * bytes, count * bytes);
    }
    if (labels.defined()) {
      for (int64_t r = begin; r < begin + count; ++r) chunk.add_labels(labels.data<int64_t>()[r]);
    }
    if (!writer->Write(chunk)) break;
    std::cerr << absl::StrFormat("\ruploaded %d of %d rows", begin + count, rows) << std::flush;
  }
  std::cerr << "\n";
  writer->WritesDone();
  RETURN_IF_ERROR(FromGrpc(writer->Finish(), "UploadDataSet"));
  std::cout << absl::StrFormat("data set %s: %d rows%s, %d bytes\n", info.name(), info.rows(),
                               info.labelled() ? " with labels" : "", info.size_bytes());
  return absl::OkStatus();
}

}  // namespace

int DataSetsCommand(const Args& args) {
  const std::vector<std::string>& p = args.positional();
  const std::string verb = p.empty() ? "list" : p[0];
  if (verb == "upload" && p.size() == 2) return Done(Upload(args, p[1]));
  if (verb == "delete" && p.size() == 2) {
    v1::DataSetRef ref;
    ref.set_name(p[1]);
    v1::DataSetInfo info;
    const absl::Status status = Call(args, &Compression::Stub::DeleteDataSet, ref, &info, "DeleteDataSet");
    if (status.ok()) std::cout << "deleted data set " << info.name() << "\n";
    return Done(status);
  }
  if (verb != "list" || p.size() > 1) {
    return Fail(absl::InvalidArgumentError("datasets list | upload NAME --from FILE.npz | delete NAME"));
  }
  v1::ListDataSetsResponse response;
  const absl::Status status = Call(args, &Compression::Stub::ListDataSets, v1::ListDataSetsRequest(), &response,
                                   "ListDataSets");
  if (!status.ok()) return Fail(status);
  std::cout << absl::StrFormat("%-24s %-8s %-8s %-12s %s\n", "DATA SET", "ROWS", "LABELS", "BYTES", "TENSORS");
  for (const v1::DataSetInfo& d : response.data_sets()) {
    std::string tensors;
    for (const v1::DataSetTensor& t : d.tensors()) {
      absl::StrAppend(&tensors, tensors.empty() ? "" : ", ", t.name(), " ", t.datatype(), " [");
      for (int i = 0; i < t.shape_size(); ++i) absl::StrAppend(&tensors, i ? "," : "", t.shape(i));
      absl::StrAppend(&tensors, "]");
    }
    std::cout << absl::StrFormat("%-24s %-8d %-8s %-12d %s\n", d.name(), d.rows(), d.labelled() ? "yes" : "no",
                                 d.size_bytes(), tensors);
  }
  return 0;
}

}  // namespace slimserve::cli
