#!/usr/bin/python3
"""End-to-end test of slimserve with a plain Python gRPC client.

Starts the real server binary on 127.0.0.1 over a temporary copy of the
fashion_mnist example, talks to it with stubs generated at test time from
proto/ (the upstream Triton/KServe messages, nothing slimserve-specific), and
checks the Open Inference Protocol calls, model upload/unload, error codes and
a graceful SIGTERM shutdown.

Needs /usr/bin/python3 with grpcio, numpy (Debian packages), protoc and
grpc_python_plugin on PATH. Prints one line per passed check; exits non-zero
if any check fails.

  /usr/bin/python3 tests/server/python_client_test.py \
      --server build/release/server/slimserve --proto-dir proto --example examples/fashion_mnist
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import grpc
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RPC_TIMEOUT_S = 30
STARTUP_TIMEOUT_S = 120
SHUTDOWN_TIMEOUT_S = 30
MODEL = "fashion_mnist"
UPLOADED = "uploaded"
ANKLE_BOOT = 9


class CheckFailed(Exception):
  pass


def expect(condition, message):
  if not condition:
    raise CheckFailed(message)


# ---------------------------------------------------------------------------
# Setup: stubs, server process.


def generate_stubs(proto_dir, out_dir):
  plugin = shutil.which("grpc_python_plugin")
  protoc = shutil.which("protoc")
  if plugin is None or protoc is None:
    raise RuntimeError("protoc and grpc_python_plugin must be on PATH (protoc={}, plugin={})".format(protoc, plugin))
  cmd = [protoc, "-I", proto_dir, "--python_out=" + out_dir, "--grpc_out=" + out_dir,
         "--plugin=protoc-gen-grpc=" + plugin, "grpc_service.proto", "model_config.proto", "health.proto"]
  result = subprocess.run(cmd, capture_output=True, text=True)
  if result.returncode != 0:
    raise RuntimeError("protoc failed ({}): {}\n{}".format(result.returncode, " ".join(cmd), result.stderr))
  sys.path.insert(0, out_dir)


def free_port():
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


class Server:
  """The slimserve process; its stdout and stderr are drained by threads."""

  def __init__(self, binary, repository):
    self.metrics_port = free_port()
    self.cmd = [binary, "--model-repository", repository, "--grpc-address", "127.0.0.1", "--grpc-port", "0",
                "--metrics-port", str(self.metrics_port), "--model-control-mode", "explicit", "--load-model", "*"]
    self.lines = []
    self.lock = threading.Condition()
    self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
    self.threads = [threading.Thread(target=self._drain, args=(self.proc.stdout, ""), daemon=True),
                    threading.Thread(target=self._drain, args=(self.proc.stderr, "[stderr] "), daemon=True)]
    for t in self.threads:
      t.start()

  def _drain(self, stream, prefix):
    for line in stream:
      with self.lock:
        self.lines.append(prefix + line.rstrip("\n"))
        self.lock.notify_all()

  def wait_for_start(self):
    """Returns the gRPC port once the server printed 'ready'."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    port = None
    with self.lock:
      while True:
        for line in self.lines:
          if line.startswith("slimserve: gRPC on port "):
            port = int(line[len("slimserve: gRPC on port "):].split(",")[0].split(";")[0])
          if line.strip() == "slimserve: ready" and port is not None:
            return port
          if "serving, but not ready" in line:
            raise RuntimeError("server started but a model failed to load:\n" + self.log())
        if self.proc.poll() is not None:
          raise RuntimeError("server exited with {} during startup:\n{}".format(self.proc.returncode, self.log()))
        remaining = deadline - time.monotonic()
        if remaining <= 0:
          raise RuntimeError("server not ready after {} s:\n{}".format(STARTUP_TIMEOUT_S, self.log()))
        self.lock.wait(min(remaining, 0.5))

  def log(self):
    with self.lock:
      return "\n".join("    | " + line for line in self.lines)

  def kill(self):
    if self.proc.poll() is None:
      self.proc.kill()
      self.proc.wait()


# ---------------------------------------------------------------------------
# The checks.


class ClientTest:

  def __init__(self, channel, server, example_dir):
    import grpc_service_pb2 as pb
    import grpc_service_pb2_grpc as pb_grpc
    import health_pb2
    import health_pb2_grpc
    import model_config_pb2
    self.pb = pb
    self.mc = model_config_pb2
    self.health_pb2 = health_pb2
    self.stub = pb_grpc.GRPCInferenceServiceStub(channel)
    self.health = health_pb2_grpc.HealthStub(channel)
    self.server = server
    self.example_dir = example_dir
    self.sample = np.load(os.path.join(example_dir, "sample_input.npy"))
    self.rows_sent = 0       # rows of successful inferences on fashion_mnist
    self.requests_ok = 0     # successful inference requests on fashion_mnist
    self.reference = None    # logits of the sample, [10]
    self.passed = []
    self.failed = []
    self.needs_reference = {self.infer_batch8_copies, self.infer_batch8_mixed, self.infer_typed,
                            self.infer_requested_output, self.infer_uploaded, self.infer_after_errors}

  # -- helpers --

  def run(self, name, fn):
    try:
      if fn in self.needs_reference:
        expect(self.reference is not None, "skipped: the batch-1 inference gave no reference logits")
      detail = fn()
    except CheckFailed as e:
      self.failed.append((name, str(e)))
      print("FAIL {}: {}".format(name, e), flush=True)
      return
    except grpc.RpcError as e:
      self.failed.append((name, "unexpected RPC error {}: {}".format(e.code(), e.details())))
      print("FAIL {}: unexpected RPC error {}: {}".format(name, e.code(), e.details()), flush=True)
      return
    except Exception as e:  # a bug in the test or a broken reply
      self.failed.append((name, "{}: {}".format(type(e).__name__, e)))
      print("FAIL {}: {}".format(name, traceback.format_exc()), flush=True)
      return
    self.passed.append(name)
    print("ok   {}{}".format(name, ": " + detail if detail else ""), flush=True)

  def infer_request(self, model, images, typed=False, outputs=None, datatype="FP32", shape=None, raw=None):
    req = self.pb.ModelInferRequest(model_name=model, id="py-{}".format(time.monotonic_ns()))
    tensor = req.inputs.add(name="input", datatype=datatype, shape=list(images.shape if shape is None else shape))
    if typed:
      tensor.contents.fp32_contents.extend(images.astype(np.float32).ravel().tolist())
    else:
      req.raw_input_contents.append(images.tobytes() if raw is None else raw)
    for name in outputs or []:
      req.outputs.add(name=name)
    return req

  def logits(self, reply, index=0, expect_rows=None):
    """The output `index` of a reply as float32 [rows, 10], from raw or typed contents."""
    out = reply.outputs[index]
    expect(out.datatype == "FP32", "output '{}' has datatype {}, want FP32".format(out.name, out.datatype))
    shape = list(out.shape)
    if expect_rows is not None:
      expect(shape == [expect_rows, 10], "output '{}' has shape {}, want [{}, 10]".format(out.name, shape, expect_rows))
    if len(reply.raw_output_contents) > 0:
      expect(len(reply.raw_output_contents) == len(reply.outputs),
             "{} raw_output_contents for {} outputs".format(len(reply.raw_output_contents), len(reply.outputs)))
      values = np.frombuffer(reply.raw_output_contents[index], dtype=np.float32)
    else:
      values = np.array(out.contents.fp32_contents, dtype=np.float32)
    expect(values.size == int(np.prod(shape)),
           "output '{}' carries {} values but its shape {} holds {}".format(out.name, values.size, shape,
                                                                           int(np.prod(shape))))
    return values.reshape(shape)

  def infer(self, model, images, **kwargs):
    reply = self.stub.ModelInfer(self.infer_request(model, images, **kwargs), timeout=RPC_TIMEOUT_S)
    if model == MODEL:
      self.rows_sent += images.shape[0]
      self.requests_ok += 1
    return reply

  def expect_error(self, request, code, words, rpc=None):
    rpc = rpc or self.stub.ModelInfer
    try:
      rpc(request, timeout=RPC_TIMEOUT_S)
    except grpc.RpcError as e:
      got = e.code()
      codes = code if isinstance(code, tuple) else (code,)
      expect(got in codes, "want status {}, got {}: {!r}".format(" or ".join(c.name for c in codes), got, e.details()))
      details = e.details() or ""
      missing = [w for w in words if w.lower() not in details.lower()]
      expect(not missing, "status {} ok, but the message {!r} does not mention {}".format(got.name, details, missing))
      return "{}: {}".format(got.name, details)
    raise CheckFailed("want status {}, but the call succeeded".format(code))

  def stats(self, model):
    reply = self.stub.ModelStatistics(self.pb.ModelStatisticsRequest(name=model), timeout=RPC_TIMEOUT_S)
    expect(len(reply.model_stats) >= 1, "ModelStatistics({}) returned no model_stats".format(model))
    for s in reply.model_stats:
      expect(s.name == model, "ModelStatistics({}) returned stats of '{}'".format(model, s.name))
    return reply.model_stats

  # -- checks --

  def server_live(self):
    reply = self.stub.ServerLive(self.pb.ServerLiveRequest(), timeout=RPC_TIMEOUT_S)
    expect(reply.live, "ServerLive: live is false")

  def server_ready(self):
    reply = self.stub.ServerReady(self.pb.ServerReadyRequest(), timeout=RPC_TIMEOUT_S)
    expect(reply.ready, "ServerReady: ready is false after 'slimserve: ready'")

  def health_check(self):
    h = self.health_pb2
    reply = self.health.Check(h.HealthCheckRequest(service=""), timeout=RPC_TIMEOUT_S)
    expect(reply.status == h.HealthCheckResponse.SERVING,
           "Health.Check: status {}, want SERVING".format(h.HealthCheckResponse.ServingStatus.Name(reply.status)))

  def server_metadata(self):
    reply = self.stub.ServerMetadata(self.pb.ServerMetadataRequest(), timeout=RPC_TIMEOUT_S)
    expect(reply.name == "slimserve", "ServerMetadata: name {!r}, want 'slimserve'".format(reply.name))
    expect(reply.version != "", "ServerMetadata: empty version")
    return "version {}, extensions {}".format(reply.version, list(reply.extensions))

  def model_ready(self):
    reply = self.stub.ModelReady(self.pb.ModelReadyRequest(name=MODEL), timeout=RPC_TIMEOUT_S)
    expect(reply.ready, "ModelReady({}): ready is false".format(MODEL))

  def model_metadata(self):
    reply = self.stub.ModelMetadata(self.pb.ModelMetadataRequest(name=MODEL), timeout=RPC_TIMEOUT_S)
    expect(reply.name == MODEL, "ModelMetadata: name {!r}".format(reply.name))
    expect("1" in reply.versions, "ModelMetadata: versions {} lack '1'".format(list(reply.versions)))
    expect(len(reply.inputs) == 1, "ModelMetadata: {} inputs, want 1".format(len(reply.inputs)))
    i = reply.inputs[0]
    expect((i.name, i.datatype, list(i.shape)) == ("input", "FP32", [-1, 1, 28, 28]),
           "ModelMetadata input: ({!r}, {!r}, {}), want ('input', 'FP32', [-1, 1, 28, 28])".format(
               i.name, i.datatype, list(i.shape)))
    expect(len(reply.outputs) == 1, "ModelMetadata: {} outputs, want 1".format(len(reply.outputs)))
    o = reply.outputs[0]
    expect((o.name, o.datatype, list(o.shape)) == ("logits", "FP32", [-1, 10]),
           "ModelMetadata output: ({!r}, {!r}, {}), want ('logits', 'FP32', [-1, 10])".format(
               o.name, o.datatype, list(o.shape)))
    return "platform {!r}, versions {}".format(reply.platform, list(reply.versions))

  def model_config(self):
    config = self.stub.ModelConfig(self.pb.ModelConfigRequest(name=MODEL), timeout=RPC_TIMEOUT_S).config
    expect(config.name == MODEL, "ModelConfig: name {!r}".format(config.name))
    expect(config.max_batch_size == 64, "ModelConfig: max_batch_size {}, want 64".format(config.max_batch_size))
    expect(len(config.input) == 1 and config.input[0].name == "input",
           "ModelConfig: inputs {}".format([i.name for i in config.input]))
    expect(config.input[0].data_type == self.mc.TYPE_FP32,
           "ModelConfig: input data_type {}".format(self.mc.DataType.Name(config.input[0].data_type)))
    expect(list(config.input[0].dims) == [1, 28, 28], "ModelConfig: input dims {}".format(list(config.input[0].dims)))
    expect(len(config.output) == 1 and config.output[0].name == "logits",
           "ModelConfig: outputs {}".format([o.name for o in config.output]))
    expect(list(config.output[0].dims) == [10], "ModelConfig: output dims {}".format(list(config.output[0].dims)))
    expect(config.HasField("dynamic_batching"), "ModelConfig: dynamic_batching missing")

  def infer_batch1(self):
    reply = self.infer(MODEL, self.sample)
    expect(reply.model_name == MODEL, "reply model_name {!r}".format(reply.model_name))
    expect(len(reply.outputs) == 1 and reply.outputs[0].name == "logits",
           "reply outputs {}".format([o.name for o in reply.outputs]))
    expect(len(reply.raw_output_contents) == 1, "raw request: reply has {} raw_output_contents, want 1".format(
        len(reply.raw_output_contents)))
    logits = self.logits(reply, expect_rows=1)
    expect(np.all(np.isfinite(logits)), "logits not finite: {}".format(logits))
    top = int(np.argmax(logits[0]))
    expect(top == ANKLE_BOOT, "argmax {} (logits {}), want {} (ankle boot)".format(
        top, np.array2string(logits[0], precision=3, max_line_width=10000), ANKLE_BOOT))
    self.reference = logits[0]
    return "argmax {}".format(top)

  def infer_batch8_copies(self):
    batch = np.repeat(self.sample, 8, axis=0)
    logits = self.logits(self.infer(MODEL, batch), expect_rows=8)
    diff = float(np.max(np.abs(logits - self.reference[None, :])))
    expect(diff <= 1e-4, "batch of 8 copies: rows differ from the single-row logits by {}".format(diff))
    return "max diff {:.2e}".format(diff)

  def infer_batch8_mixed(self):
    rng = np.random.default_rng(1234)
    batch = rng.random((8, 1, 28, 28), dtype=np.float32)
    batch[0] = self.sample[0]
    batch[5] = self.sample[0]
    logits = self.logits(self.infer(MODEL, batch), expect_rows=8)
    worst = 0.0
    for r in range(8):
      single = self.logits(self.infer(MODEL, batch[r:r + 1]), expect_rows=1)[0]
      diff = float(np.max(np.abs(logits[r] - single)))
      expect(diff <= 1e-4, "batch of 8 (sample + random): row {} differs from its batch-1 logits by {}".format(r, diff))
      worst = max(worst, diff)
    expect(int(np.argmax(logits[0])) == ANKLE_BOOT and int(np.argmax(logits[5])) == ANKLE_BOOT,
           "sample rows in the mixed batch not classed as ankle boot")
    return "max diff {:.2e}".format(worst)

  def infer_typed(self):
    reply = self.infer(MODEL, self.sample, typed=True)
    carried = "raw_output_contents" if len(reply.raw_output_contents) > 0 else "outputs[0].contents.fp32_contents"
    if carried != "raw_output_contents":
      expect(len(reply.outputs[0].contents.fp32_contents) == 10,
             "typed reply: {} fp32_contents, want 10".format(len(reply.outputs[0].contents.fp32_contents)))
    logits = self.logits(reply, expect_rows=1)
    diff = float(np.max(np.abs(logits[0] - self.reference)))
    expect(diff <= 1e-4, "typed fp32_contents: logits differ from raw by {}".format(diff))
    return "reply in {}, max diff {:.2e}".format(carried, diff)

  def infer_requested_output(self):
    reply = self.infer(MODEL, self.sample, outputs=["logits"])
    expect([o.name for o in reply.outputs] == ["logits"], "requested 'logits', reply outputs {}".format(
        [o.name for o in reply.outputs]))
    diff = float(np.max(np.abs(self.logits(reply, expect_rows=1)[0] - self.reference)))
    expect(diff <= 1e-4, "requested output: logits differ by {}".format(diff))

  def statistics(self):
    stats = self.stats(MODEL)
    count = sum(s.inference_count for s in stats)
    success = sum(s.inference_stats.success.count for s in stats)
    expect(count == self.rows_sent, "inference_count {}, want {} (rows sent)".format(count, self.rows_sent))
    expect(success == self.requests_ok, "inference_stats.success.count {}, want {} (requests)".format(
        success, self.requests_ok))
    executions = sum(s.execution_count for s in stats)
    expect(1 <= executions <= self.requests_ok, "execution_count {} not in [1, {}]".format(executions,
                                                                                          self.requests_ok))
    expect(all(s.last_inference > 0 for s in stats), "last_inference is 0")
    return "inference_count {}, success {}, executions {}".format(count, success, executions)

  def upload(self):
    with open(os.path.join(self.example_dir, "1", "model.onnx"), "rb") as f:
      onnx_bytes = f.read()
    req = self.pb.RepositoryModelLoadRequest(model_name=UPLOADED)
    req.parameters["config"].string_param = json.dumps({"name": UPLOADED, "max_batch_size": 8})
    req.parameters["file:1/model.onnx"].bytes_param = onnx_bytes
    self.stub.RepositoryModelLoad(req, timeout=RPC_TIMEOUT_S)
    ready = self.stub.ModelReady(self.pb.ModelReadyRequest(name=UPLOADED), timeout=RPC_TIMEOUT_S)
    expect(ready.ready, "ModelReady({}) false after the upload".format(UPLOADED))
    return "{} bytes".format(len(onnx_bytes))

  def infer_uploaded(self):
    reply = self.infer(UPLOADED, self.sample)
    expect(reply.model_name == UPLOADED, "reply model_name {!r}".format(reply.model_name))
    logits = self.logits(reply, expect_rows=1)
    diff = float(np.max(np.abs(logits[0] - self.reference)))
    expect(diff <= 1e-4, "uploaded model: logits differ from {} by {}".format(MODEL, diff))
    batch = np.repeat(self.sample, 8, axis=0)
    logits8 = self.logits(self.infer(UPLOADED, batch), expect_rows=8)
    diff8 = float(np.max(np.abs(logits8 - self.reference[None, :])))
    expect(diff8 <= 1e-4, "uploaded model, batch 8: rows differ by {}".format(diff8))
    return "argmax {}".format(int(np.argmax(logits[0])))

  def repository_index(self):
    reply = self.stub.RepositoryIndex(self.pb.RepositoryIndexRequest(), timeout=RPC_TIMEOUT_S)
    entries = [(m.name, m.version, m.state, m.reason) for m in reply.models]
    for name in (MODEL, UPLOADED):
      expect(any(n == name and s == "READY" for n, _, s, _ in entries),
             "RepositoryIndex: no READY entry for {}: {}".format(name, entries))
    return str(entries)

  def unload(self):
    self.stub.RepositoryModelUnload(self.pb.RepositoryModelUnloadRequest(model_name=UPLOADED), timeout=RPC_TIMEOUT_S)
    ready = self.stub.ModelReady(self.pb.ModelReadyRequest(name=UPLOADED), timeout=RPC_TIMEOUT_S)
    expect(not ready.ready, "ModelReady({}) still true after the unload".format(UPLOADED))
    still = self.stub.ModelReady(self.pb.ModelReadyRequest(name=MODEL), timeout=RPC_TIMEOUT_S)
    expect(still.ready, "ModelReady({}) false after unloading {}".format(MODEL, UPLOADED))

  def infer_unloaded(self):
    return self.expect_error(self.infer_request(UPLOADED, self.sample),
                             (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE), [UPLOADED])

  def error_unknown_model(self):
    return self.expect_error(self.infer_request("no_such_model", self.sample), grpc.StatusCode.NOT_FOUND,
                             ["no_such_model"])

  def error_wrong_datatype(self):
    return self.expect_error(self.infer_request(MODEL, self.sample.astype(np.float64), datatype="FP64"),
                             grpc.StatusCode.INVALID_ARGUMENT, ["FP64"])

  def error_wrong_shape(self):
    image = self.sample.reshape(1, 28, 28)  # the channel dimension is missing
    return self.expect_error(self.infer_request(MODEL, image), grpc.StatusCode.INVALID_ARGUMENT, ["shape"])

  def error_raw_size(self):
    raw = self.sample.tobytes()[:-4]  # one float short
    return self.expect_error(self.infer_request(MODEL, self.sample, raw=raw), grpc.StatusCode.INVALID_ARGUMENT,
                             ["bytes"])

  def error_batch_too_large(self):
    batch = np.repeat(self.sample, 65, axis=0)
    return self.expect_error(self.infer_request(MODEL, batch), grpc.StatusCode.INVALID_ARGUMENT, ["batch"])

  def error_unknown_output(self):
    return self.expect_error(self.infer_request(MODEL, self.sample, outputs=["no_such_output"]),
                             grpc.StatusCode.INVALID_ARGUMENT, ["no_such_output"])

  def error_metadata_unknown_model(self):
    return self.expect_error(self.pb.ModelMetadataRequest(name="no_such_model"), grpc.StatusCode.NOT_FOUND,
                             ["no_such_model"], rpc=self.stub.ModelMetadata)

  def infer_after_errors(self):
    logits = self.logits(self.infer(MODEL, self.sample), expect_rows=1)
    diff = float(np.max(np.abs(logits[0] - self.reference)))
    expect(int(np.argmax(logits[0])) == ANKLE_BOOT and diff <= 1e-4,
           "after the errors: argmax {}, diff {}".format(int(np.argmax(logits[0])), diff))
    self.server_ready()
    self.health_check()

  def statistics_after_errors(self):
    stats = self.stats(MODEL)
    count = sum(s.inference_count for s in stats)
    fails = sum(s.inference_stats.fail.count for s in stats)
    expect(count == self.rows_sent, "inference_count {}, want {}: failed requests must not count".format(
        count, self.rows_sent))
    # Wrong datatype, wrong shape, raw size, batch too large, unknown output: all on fashion_mnist.
    want_fails = 5
    expect(fails == want_fails, "inference_stats.fail.count {}, want {}".format(fails, want_fails))
    return "inference_count {}, fail {}".format(count, fails)

  def all(self):
    checks = [
        ("ServerLive", self.server_live),
        ("ServerReady", self.server_ready),
        ("Health.Check SERVING", self.health_check),
        ("ServerMetadata", self.server_metadata),
        ("ModelReady fashion_mnist", self.model_ready),
        ("ModelMetadata fashion_mnist", self.model_metadata),
        ("ModelConfig fashion_mnist", self.model_config),
        ("ModelInfer raw, batch 1", self.infer_batch1),
        ("ModelInfer raw, batch 8 copies", self.infer_batch8_copies),
        ("ModelInfer raw, batch 8 sample + random vs batch 1", self.infer_batch8_mixed),
        ("ModelInfer typed fp32_contents", self.infer_typed),
        ("ModelInfer requested output 'logits'", self.infer_requested_output),
        ("ModelStatistics", self.statistics),
        ("RepositoryModelLoad upload 'uploaded'", self.upload),
        ("ModelInfer on 'uploaded'", self.infer_uploaded),
        ("RepositoryIndex both READY", self.repository_index),
        ("RepositoryModelUnload 'uploaded'", self.unload),
        ("ModelInfer on unloaded model fails", self.infer_unloaded),
        ("error: unknown model", self.error_unknown_model),
        ("error: wrong datatype FP64", self.error_wrong_datatype),
        ("error: wrong shape", self.error_wrong_shape),
        ("error: raw byte size mismatch", self.error_raw_size),
        ("error: batch over max_batch_size", self.error_batch_too_large),
        ("error: unknown requested output", self.error_unknown_output),
        ("error: ModelMetadata of unknown model", self.error_metadata_unknown_model),
        ("ModelInfer after the errors", self.infer_after_errors),
        ("ModelStatistics after the errors", self.statistics_after_errors),
    ]
    for name, fn in checks:
      self.run(name, fn)


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--server", default=os.path.join(ROOT, "build/release/server/slimserve"))
  parser.add_argument("--proto-dir", default=os.path.join(ROOT, "proto"))
  parser.add_argument("--example", default=os.path.join(ROOT, "examples/fashion_mnist"))
  args = parser.parse_args()

  started = time.monotonic()
  tmp = tempfile.mkdtemp(prefix="slimserve_pytest_")
  server = None
  channel = None
  failures = []
  try:
    stubs = os.path.join(tmp, "stubs")
    os.makedirs(stubs)
    generate_stubs(args.proto_dir, stubs)
    print("ok   generated Python stubs with protoc", flush=True)

    repository = os.path.join(tmp, "models")
    os.makedirs(repository)
    shutil.copytree(args.example, os.path.join(repository, MODEL))

    server = Server(args.server, repository)
    port = server.wait_for_start()
    print("ok   server started: gRPC on 127.0.0.1:{}, metrics port {}".format(port, server.metrics_port), flush=True)

    channel = grpc.insecure_channel("127.0.0.1:{}".format(port))
    grpc.channel_ready_future(channel).result(timeout=RPC_TIMEOUT_S)
    test = ClientTest(channel, server, args.example)
    test.all()
    failures.extend(test.failed)
    channel.close()
    channel = None

    # Graceful shutdown.
    server.proc.send_signal(signal.SIGTERM)
    try:
      rc = server.proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
      for t in server.threads:
        t.join(timeout=5)
      if rc != 0:
        failures.append(("SIGTERM", "exit code {}, want 0".format(rc)))
        print("FAIL SIGTERM: exit code {}, want 0".format(rc), flush=True)
      else:
        print("ok   SIGTERM: exit code 0", flush=True)
    except subprocess.TimeoutExpired:
      failures.append(("SIGTERM", "still running {} s after SIGTERM".format(SHUTDOWN_TIMEOUT_S)))
      print("FAIL SIGTERM: still running {} s after SIGTERM".format(SHUTDOWN_TIMEOUT_S), flush=True)
    passed = len(test.passed)
  except Exception:
    failures.append(("setup", traceback.format_exc()))
    print("FAIL setup:\n" + traceback.format_exc(), flush=True)
    passed = 0
  finally:
    if channel is not None:
      channel.close()
    if server is not None:
      server.kill()
    shutil.rmtree(tmp, ignore_errors=True)

  elapsed = time.monotonic() - started
  if failures:
    if server is not None:
      print("server output:\n" + server.log(), flush=True)
    print("\n{} check(s) FAILED ({} passed, {:.1f} s):".format(len(failures), passed, elapsed))
    for name, message in failures:
      if message.startswith("Traceback"):
        message = message.strip().splitlines()[-1]
      print("  - {}: {}".format(name, " ".join(message.split())[:600]))
    return 1
  print("\nall checks passed ({} + startup/shutdown, {:.1f} s)".format(passed, elapsed))
  return 0


if __name__ == "__main__":
  sys.exit(main())
