#include "providers/vertex_client.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace ftb::providers {

absl::StatusOr<std::string> RunTokenCommand(const std::string& command, absl::Duration timeout) {
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) return absl::InternalError("token_command: pipe failed");
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    return absl::InternalError("token_command: pipe failed");
  }
  const pid_t pid = fork();
  if (pid < 0) {
    for (int fd : {out[0], out[1], err[0], err[1]}) close(fd);
    return absl::InternalError("token_command: fork failed");
  }
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  std::string stdout_text, stderr_text;
  const absl::Time deadline = absl::Now() + timeout;
  bool timed_out = false;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0) {
    const int64_t left_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left_ms <= 0) {
      timed_out = true;
      break;
    }
    if (poll(fds, 2, static_cast<int>(left_ms)) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      char buf[4096];
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        (i == 0 ? stdout_text : stderr_text).append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (const pollfd& p : fds) {
    if (p.fd >= 0) close(p.fd);
  }
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::string tail(absl::StripAsciiWhitespace(stderr_text));
  if (tail.size() > 300) tail = tail.substr(tail.size() - 300);
  if (timed_out) {
    return absl::UnauthenticatedError(absl::StrCat("token_command timed out after ",
                                                   absl::FormatDuration(timeout)));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::UnauthenticatedError(
        absl::StrCat("token_command failed (",
                     WIFEXITED(status) ? absl::StrCat("exit ", WEXITSTATUS(status))
                                       : std::string("killed by a signal"),
                     ")", tail.empty() ? "" : ": ", tail));
  }
  std::string token(absl::StripAsciiWhitespace(stdout_text));
  if (token.empty()) {
    return absl::UnauthenticatedError(
        absl::StrCat("token_command printed no token", tail.empty() ? "" : ": ", tail));
  }
  return token;
}

namespace {

VertexClientOptions WithDefaults(VertexClientOptions o) {
  if (o.rest.provider.empty()) o.rest.provider = "vertex";
  while (!o.base_url.empty() && o.base_url.back() == '/') o.base_url.pop_back();
  return o;
}

}  // namespace

VertexClient::VertexClient(VertexClientOptions options, std::unique_ptr<HttpTransport> transport)
    : options_(WithDefaults(std::move(options))),
      base_url_(options_.base_url.empty()
                    ? absl::StrCat("https://", options_.location, "-aiplatform.googleapis.com")
                    : options_.base_url),
      rest_(options_.rest, std::move(transport)) {
  if (options_.token_command.empty() && !options_.access_token.empty()) {
    absl::MutexLock lock(&mu_);
    token_ = options_.access_token;
    used_tokens_.push_back(token_);
  }
}

std::string VertexClient::Parent() const {
  return absl::StrCat("projects/", options_.project, "/locations/", options_.location);
}

std::string VertexClient::JobName(const std::string& name_or_id) const {
  if (name_or_id.rfind("projects/", 0) == 0) return name_or_id;
  return absl::StrCat(Parent(), "/tuningJobs/", name_or_id);
}

absl::StatusOr<std::string> VertexClient::Token(bool refresh) {
  absl::MutexLock lock(&mu_);
  if (!token_.empty() && !refresh) return token_;
  if (options_.token_command.empty()) {
    if (token_.empty()) {
      return absl::UnauthenticatedError("vertex: no access token (set one, or a token_command)");
    }
    return token_;
  }
  // Held while the command runs: concurrent callers wait for one refresh.
  absl::StatusOr<std::string> token =
      RunTokenCommand(options_.token_command, options_.token_command_timeout);
  if (!token.ok()) {
    absl::Status s = token.status();
    for (const std::string& t : used_tokens_) s = RedactStatus(s, t);
    return s;
  }
  token_ = *token;
  used_tokens_.push_back(token_);
  if (used_tokens_.size() > 8) used_tokens_.erase(used_tokens_.begin());
  return token_;
}

absl::Status VertexClient::RedactAll(absl::Status status) {
  absl::MutexLock lock(&mu_);
  for (const std::string& t : used_tokens_) status = RedactStatus(status, t);
  return status;
}

absl::StatusOr<Json> VertexClient::Call(const std::string& method, const std::string& path,
                                        const std::string& body, double estimated_tokens,
                                        const Sleeper& sleep, bool idempotent) {
  absl::StatusOr<std::string> token = Token(false);
  if (!token.ok()) return token.status();
  const std::string url = base_url_ + path;
  const std::string content_type = method == "POST" ? "application/json" : "";
  absl::StatusOr<Json> reply =
      rest_.Call(method, url, *token, body, content_type, estimated_tokens, sleep, idempotent);
  if (reply.status().code() == absl::StatusCode::kUnauthenticated &&
      !options_.token_command.empty()) {
    // Expired (tokens live about an hour): one fresh token, one more try.
    absl::StatusOr<std::string> fresh = Token(true);
    if (!fresh.ok()) return fresh.status();
    reply = rest_.Call(method, url, *fresh, body, content_type, estimated_tokens, sleep,
                       idempotent);
  }
  if (!reply.ok()) return RedactAll(reply.status());
  return reply;
}

absl::StatusOr<Json> VertexClient::CreateTuningJob(const Json& job, const Sleeper& sleep) {
  return Call("POST", absl::StrCat("/v1/", Parent(), "/tuningJobs"), job.dump(), 0, sleep,
              /*idempotent=*/false);
}

absl::StatusOr<Json> VertexClient::GetTuningJob(const std::string& name_or_id,
                                                const Sleeper& sleep) {
  return Call("GET", absl::StrCat("/v1/", JobName(name_or_id)), "", 0, sleep);
}

absl::StatusOr<std::vector<Json>> VertexClient::ListTuningJobs(const std::string& filter,
                                                               const Sleeper& sleep) {
  std::vector<Json> out;
  std::string page_token;
  for (int page = 0; page < 1000; ++page) {
    std::string path = absl::StrCat("/v1/", Parent(), "/tuningJobs?pageSize=100");
    if (!filter.empty()) absl::StrAppend(&path, "&filter=", UrlEncode(filter));
    if (!page_token.empty()) absl::StrAppend(&path, "&pageToken=", UrlEncode(page_token));
    absl::StatusOr<Json> reply = Call("GET", path, "", 0, sleep);
    if (!reply.ok()) return reply.status();
    // An empty list is an empty object: no "tuningJobs" key at all.
    auto jobs = reply->find("tuningJobs");
    if (jobs != reply->end()) {
      if (!jobs->is_array()) {
        return absl::InternalError("GET .../tuningJobs: \"tuningJobs\" is not a list");
      }
      for (Json& j : *jobs) out.push_back(std::move(j));
    }
    auto next = reply->find("nextPageToken");
    if (next == reply->end() || !next->is_string() || next->get<std::string>().empty()) break;
    page_token = next->get<std::string>();
  }
  return out;
}

absl::Status VertexClient::CancelTuningJob(const std::string& name_or_id, const Sleeper& sleep) {
  return Call("POST", absl::StrCat("/v1/", JobName(name_or_id), ":cancel"), "{}", 0, sleep)
      .status();
}

absl::StatusOr<Json> VertexClient::GenerateContent(const std::string& endpoint,
                                                   const Json& request, double estimated_tokens,
                                                   const Sleeper& sleep) {
  return Call("POST", absl::StrCat("/v1/", endpoint, ":generateContent"), request.dump(),
              estimated_tokens, sleep);
}

}  // namespace ftb::providers
