// The "test" backend: a scheduling fixture for integration tests and
// benchmarks, NOT a product feature. It trains nothing and answers nothing;
// it only behaves like a backend as far as the runtime and the coordinator
// can tell (takes time, can be cancelled, can fail, returns a deterministic
// result), so sweeps of any size can be scheduled end to end in seconds.
//
// Per-task options (TuneWork.model.options; numbers, or strings holding
// integers):
//   sleep_ms_min, sleep_ms_max   sleep a uniformly random time in this range
//                                (defaults 1 and 5; 0/0 = no sleep, for
//                                benchmarks). Cancellation ends the sleep.
//   fail_first_attempts: N       attempts 1..N fail with kUnavailable
//                                (retryable), for retry tests.
// Result: digest = SHA-256 hex over the model name, cell_ids and epochs
// (not the attempt, worker or timing), tokens = a count derived from the
// same inputs; cost 0 unless model.options.cost_usd_per_task sets a price
// per task (for cost-accounting tests); no answers unless
// model.options.answers_per_cell: N asks for N synthetic answers per cell
// (even-numbered ones right), for pipeline tests that need judging.
//
// Thread-safe.
#ifndef FTB_WORKERS_TEST_BACKEND_H_
#define FTB_WORKERS_TEST_BACKEND_H_

#include <atomic>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "workers/backend.h"

namespace ftb::workers {

class TestBackend : public TuningBackend {
 public:
  static constexpr char kName[] = "test";

  absl::StatusOr<v1::TaskResult> Run(const v1::TaskAssignment& task, TaskContext& ctx) override;

  // The deterministic result for `work` (what Run returns on success).
  static v1::TaskResult ExpectedResult(const v1::TuneWork& work);

  // Observations for tests: calls of Run() so far, in total and per task id.
  int runs() const { return runs_.load(); }
  int runs_of(const std::string& task_id) const;

 private:
  std::atomic<int> runs_{0};
  mutable absl::Mutex mu_;
  std::map<std::string, int> runs_by_task_ ABSL_GUARDED_BY(mu_);
};

// Registers "test" in `registry`. Errors: as BackendRegistry::Register.
absl::Status RegisterTestBackend(BackendRegistry& registry);

}  // namespace ftb::workers

#endif  // FTB_WORKERS_TEST_BACKEND_H_
