#include "tests/test_process.h"

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
#include <stdexcept>
#include <thread>

namespace ftb::testing {

std::string FtbBinary() {
  const char* dir = std::getenv("FTB_BINARY_DIR");
  return std::string(dir ? dir : "build") + "/cli/ftb";
}

std::string MakeTempDir(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp ? tmp : "/tmp") + "/" + prefix + "XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return templ;
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

ChildProcess::ChildProcess(std::vector<std::string> argv, std::string log_path)
    : argv_(std::move(argv)), log_path_(std::move(log_path)) {}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

void ChildProcess::Start() {
  pid_ = fork();
  if (pid_ == 0) {
    int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> args;
    for (auto& a : argv_) args.push_back(a.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
}

void ChildProcess::Signal(int sig) {
  if (pid_ > 0) kill(pid_, sig);
}

int ChildProcess::Wait() {
  if (pid_ <= 0) return -1;
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return status;
}

bool ChildProcess::WaitFor(double seconds, int* status) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (pid_ > 0) {
    int s = 0;
    pid_t r = waitpid(pid_, &s, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      if (status) *status = s;
      return true;
    }
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

bool ChildProcess::running() {
  if (pid_ <= 0) return false;
  return !WaitFor(0);
}

std::string TestBackendSpec(const std::string& name, int runs, int sleep_min, int sleep_max) {
  std::string seeds;
  for (int s = 0; s < runs; ++s) seeds += (s ? ", " : "") + std::to_string(s);
  return "name: " + name + R"(
datasets:
  - {source: builtin, name: people, size: 2, seed: 1}
models:
  - name: fixture
    backend: test
    options: {sleep_ms_min: )" + std::to_string(sleep_min) + ", sleep_ms_max: " +
         std::to_string(sleep_max) + R"(}
grid:
  epochs: [1, 2]
  seed: [)" + seeds + R"(]
retry:
  max_attempts: 50
  initial_backoff_seconds: 0.05
  max_backoff_seconds: 0.5
  backoff_multiplier: 2
  jitter: 0.2
  lease_seconds: 2
)";
}

}  // namespace ftb::testing
