// Child processes for cross-process tests: start the ftb binary with
// arguments, send signals (SIGKILL for crash tests), wait. Output goes to a
// log file so a failing test can show it.
#ifndef FTB_TESTS_TEST_PROCESS_H_
#define FTB_TESTS_TEST_PROCESS_H_

#include <string>
#include <vector>

namespace ftb::testing {

// Path of the ftb binary under test (FTB_BINARY_DIR/cli/ftb).
std::string FtbBinary();
// A fresh directory under TMPDIR; removed by the caller if wanted.
std::string MakeTempDir(const std::string& prefix);
// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();
std::string ReadFile(const std::string& path);
// A campaign named `name` on the `test` backend: `runs` training runs (seeds
// 0..runs-1) x epochs {1, 2} of a 2-person `people` dataset, each task
// sleeping sleep_min..sleep_max ms, with retries generous enough to outlast
// the kills and failures the process tests inject (lease 2 s, 50 attempts).
std::string TestBackendSpec(const std::string& name, int runs, int sleep_min, int sleep_max);

class ChildProcess {
 public:
  ChildProcess(std::vector<std::string> argv, std::string log_path);
  ~ChildProcess();  // SIGKILLs and reaps if still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  void Start();
  void Signal(int sig);
  void Kill() { Signal(9); }
  // Waits for exit; returns the exit status as from waitpid (or -1).
  int Wait();
  // Waits up to `seconds`; true if it exited.
  bool WaitFor(double seconds, int* status = nullptr);
  bool running();
  int pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }

 private:
  std::vector<std::string> argv_;
  std::string log_path_;
  int pid_ = -1;
};

}  // namespace ftb::testing

#endif  // FTB_TESTS_TEST_PROCESS_H_
