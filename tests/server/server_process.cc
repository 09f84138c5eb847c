#include "tests/server/server_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace slimserve::testing {

namespace {

sockaddr_in Loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  return addr;
}

}  // namespace

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = Loopback(0);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

std::string TempDir() {
  std::string pattern = "/tmp/slimserve_test_XXXXXX";
  return mkdtemp(pattern.data());
}

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(const std::string& binary,
                                                                    std::vector<std::string> args) {
  auto server = std::unique_ptr<ServerProcess>(new ServerProcess());
  server->metrics_port_ = FreePort();
  server->log_path_ = TempDir() + "/server.log";
  args.insert(args.end(), {"--grpc-address", "127.0.0.1", "--grpc-port", "0", "--metrics-port",
                           std::to_string(server->metrics_port_)});
  std::vector<char*> argv = {const_cast<char*>(binary.c_str())};
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  server->pid_ = fork();
  if (server->pid_ == 0) {
    const int fd = open(server->log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string out = server->output();
    for (absl::string_view line : absl::StrSplit(out, '\n')) {
      constexpr absl::string_view kPort = "slimserve: gRPC on port ";
      if (absl::StartsWith(line, kPort)) {
        absl::SimpleAtoi(line.substr(kPort.size(), line.find(',') - kPort.size()), &server->grpc_port_);
      }
      if (line == "slimserve: ready" || absl::StartsWith(line, "slimserve: serving, but not ready")) {
        return server;
      }
    }
    int status = 0;
    if (waitpid(server->pid_, &status, WNOHANG) == server->pid_) {
      server->pid_ = -1;
      return absl::InternalError(absl::StrCat("slimserve exited at start:\n", out));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return absl::DeadlineExceededError(absl::StrCat("slimserve did not get ready:\n", server->output()));
}

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::ServeRepository(
    const std::string& binary, const std::string& repository, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"--model-repository", repository, "--model-control-mode", "explicit",
                                   "--load-model", "*", "--threads", "2"};
  args.insert(args.end(), extra.begin(), extra.end());
  return Start(binary, std::move(args));
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

std::unique_ptr<inference::GRPCInferenceService::Stub> ServerProcess::Stub(int max_message_bytes) const {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(max_message_bytes);
  return inference::GRPCInferenceService::NewStub(
      grpc::CreateCustomChannel(address(), grpc::InsecureChannelCredentials(), args));
}

absl::StatusOr<std::string> ServerProcess::ScrapeMetrics() const {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  const sockaddr_in addr = Loopback(metrics_port_);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return absl::UnavailableError("cannot connect to the metrics port");
  }
  const std::string request = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return absl::UnavailableError("cannot send the metrics request");
  }
  std::string response;
  char buffer[65536];
  for (ssize_t n; (n = read(fd, buffer, sizeof(buffer))) > 0;) response.append(buffer, n);
  close(fd);
  const size_t body = response.find("\r\n\r\n");
  if (response.rfind("HTTP/1.", 0) != 0 || body == std::string::npos) {
    return absl::InternalError("not an HTTP response from the metrics port");
  }
  return response.substr(body + 4);
}

int ServerProcess::Terminate(int timeout_s) {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

std::string ServerProcess::output() const {
  std::ifstream in(log_path_);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

double MetricValue(const std::string& text, const std::string& name, const std::string& labels) {
  double sum = -1;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, name + "{") || line.find(labels) == absl::string_view::npos) continue;
    double v = 0;
    if (absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &v)) sum = (sum < 0 ? 0 : sum) + v;
  }
  return sum;
}

}  // namespace slimserve::testing
