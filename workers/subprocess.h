// Runs a shell command as a child process for a backend: output streamed
// line by line, a timeout, cancellation, and the tail of stderr kept for the
// error message. Used by the `command` backend (bring-your-own trainer).
//
// The child runs `/bin/sh -c COMMAND` in its own process group with stdin
// from /dev/null. On timeout or cancellation the whole group gets SIGTERM,
// then SIGKILL after `kill_grace`. When the shell exits, whatever it left
// running in its group is killed too (a trainer's data-loader workers must
// not outlive the attempt and hold the GPU).
#ifndef FTB_WORKERS_SUBPROCESS_H_
#define FTB_WORKERS_SUBPROCESS_H_

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ftb::workers {

struct SubprocessOptions {
  std::string command;  // for /bin/sh -c
  // Empty: the worker's current directory.
  std::string working_dir;
  // Which of the worker's environment variables the child inherits, by
  // name; null = all of them.
  std::function<bool(std::string_view name)> inherit_env;
  // Added to (or replacing in) the inherited environment.
  std::vector<std::pair<std::string, std::string>> env;
  absl::Duration timeout = absl::InfiniteDuration();
  absl::Duration kill_grace = absl::Seconds(10);
  // Polled about every 100 ms; true stops the child.
  std::function<bool()> cancelled;
  // Each output line without its newline (lines over 64 KiB are split).
  std::function<void(std::string_view line, bool from_stderr)> on_line;
  // How much of the end of stderr to keep.
  size_t stderr_tail_bytes = 4096;
};

struct SubprocessResult {
  // The exit status when the shell exited normally, else -1.
  int exit_code = -1;
  // The signal that ended it, else 0.
  int signal = 0;
  bool timed_out = false;
  bool cancelled = false;
  // The last stderr_tail_bytes of stderr, cut at a line start when possible.
  std::string stderr_tail;
  double seconds = 0;

  bool ok() const { return exit_code == 0 && !timed_out && !cancelled; }
};

// Runs the command to completion (or timeout/cancellation). Errors only when
// the child cannot be started (kInternal, naming the system call); a failing
// command is an OK status with a non-zero exit_code.
absl::StatusOr<SubprocessResult> RunSubprocess(const SubprocessOptions& options);

// `value` quoted for /bin/sh: '...' with embedded quotes escaped.
std::string ShellQuote(std::string_view value);

}  // namespace ftb::workers

#endif  // FTB_WORKERS_SUBPROCESS_H_
