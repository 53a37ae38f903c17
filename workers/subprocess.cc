#include "workers/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

extern char** environ;

namespace ftb::workers {
namespace {

constexpr size_t kMaxLine = 64 << 10;

absl::Status Errno(std::string_view what) {
  return absl::InternalError(absl::StrCat(std::string(what), ": ", std::strerror(errno)));
}

// Splits a stream into lines for on_line and keeps a tail (stderr).
class LineBuffer {
 public:
  LineBuffer(bool from_stderr, const SubprocessOptions& options)
      : from_stderr_(from_stderr), options_(options) {}

  void Append(const char* data, size_t n) {
    if (from_stderr_) {
      tail_.append(data, n);
      if (tail_.size() > 2 * options_.stderr_tail_bytes) {
        tail_.erase(0, tail_.size() - options_.stderr_tail_bytes);
      }
    }
    partial_.append(data, n);
    size_t start = 0;
    for (size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1) {
      Emit(std::string_view(partial_).substr(start, nl - start));
    }
    partial_.erase(0, start);
    while (partial_.size() > kMaxLine) {
      Emit(std::string_view(partial_).substr(0, kMaxLine));
      partial_.erase(0, kMaxLine);
    }
  }

  void Flush() {
    if (!partial_.empty()) Emit(partial_);
    partial_.clear();
  }

  std::string Tail() const {
    if (tail_.size() <= options_.stderr_tail_bytes) return tail_;
    std::string t = tail_.substr(tail_.size() - options_.stderr_tail_bytes);
    size_t nl = t.find('\n');
    if (nl != std::string::npos && nl + 1 < t.size()) t.erase(0, nl + 1);
    return t;
  }

 private:
  void Emit(std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (options_.on_line) options_.on_line(line, from_stderr_);
  }

  const bool from_stderr_;
  const SubprocessOptions& options_;
  std::string partial_;
  std::string tail_;
};

}  // namespace

std::string ShellQuote(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += "'";
  return out;
}

absl::StatusOr<SubprocessResult> RunSubprocess(const SubprocessOptions& options) {
  // Everything the child needs is built before fork(): after it, only
  // async-signal-safe calls.
  std::map<std::string, std::string> env_map;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    size_t eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    if (options.inherit_env && !options.inherit_env(kv.substr(0, eq))) continue;
    env_map[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
  }
  for (const auto& [k, v] : options.env) env_map[k] = v;
  std::vector<std::string> env_strings;
  env_strings.reserve(env_map.size());
  for (const auto& [k, v] : env_map) env_strings.push_back(absl::StrCat(k, "=", v));
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string command = options.command;
  char sh[] = "/bin/sh";
  char dash_c[] = "-c";
  char* argv[] = {sh, dash_c, command.data(), nullptr};
  const char* dir = options.working_dir.empty() ? nullptr : options.working_dir.c_str();

  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return Errno("pipe2");
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return Errno("pipe2");
  }
  const auto started = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid < 0) {
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) close(fd);
    return Errno("fork");
  }
  if (pid == 0) {
    setpgid(0, 0);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    if (dir != nullptr && chdir(dir) != 0) {
      static const char msg[] = "ftb: cannot change to the working directory\n";
      (void)!write(2, msg, sizeof(msg) - 1);
      _exit(126);
    }
    execve(sh, argv, envp.data());
    _exit(127);
  }
  setpgid(pid, pid);  // also from the parent, so kill(-pid) works at once
  close(out_pipe[1]);
  close(err_pipe[1]);

  SubprocessResult result;
  LineBuffer out(false, options), err(true, options);
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  bool exited = false;
  int status = 0;
  bool term_sent = false;
  std::chrono::steady_clock::time_point term_time, exit_time;
  const bool has_timeout = options.timeout != absl::InfiniteDuration();
  const auto deadline =
      has_timeout ? started + absl::ToChronoMilliseconds(options.timeout)
                  : std::chrono::steady_clock::time_point::max();
  char buffer[16384];
  while (true) {
    if (open_fds > 0) {
      int n = poll(fds, 2, 100);
      if (n < 0 && errno != EINTR) break;
      for (pollfd& p : fds) {
        if (p.fd < 0 || (p.revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        ssize_t got = read(p.fd, buffer, sizeof(buffer));
        if (got > 0) {
          (p.fd == out_pipe[0] ? out : err).Append(buffer, static_cast<size_t>(got));
        } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
          close(p.fd);
          p.fd = -1;
          --open_fds;
        }
      }
    } else if (!exited) {
      usleep(20'000);
    }
    const auto now = std::chrono::steady_clock::now();
    if (!exited) {
      pid_t w = waitpid(pid, &status, WNOHANG);
      if (w == pid) {
        exited = true;
        exit_time = now;
        kill(-pid, SIGKILL);  // whatever the shell left behind
      }
    }
    if (exited && (open_fds == 0 || now - exit_time > std::chrono::seconds(2))) break;
    if (!exited && !term_sent) {
      if (now >= deadline) result.timed_out = true;
      if (options.cancelled && options.cancelled()) result.cancelled = true;
      if (result.timed_out || result.cancelled) {
        kill(-pid, SIGTERM);
        term_sent = true;
        term_time = now;
      }
    } else if (!exited && term_sent &&
               now - term_time >= absl::ToChronoMilliseconds(options.kill_grace)) {
      kill(-pid, SIGKILL);
    }
  }
  for (pollfd& p : fds) {
    if (p.fd >= 0) close(p.fd);
  }
  if (!exited) {
    kill(-pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  out.Flush();
  err.Flush();
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  result.stderr_tail = err.Tail();
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

}  // namespace ftb::workers
