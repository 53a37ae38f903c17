// Helpers shared by the workers tests (test-only).
#ifndef FTB_WORKERS_TESTING_UTIL_H_
#define FTB_WORKERS_TESTING_UTIL_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ftb/v1/coordinator.pb.h"

namespace ftb::workers::testing {

// A TUNE task for the "test" backend sleeping [min_ms, max_ms].
inline v1::TaskAssignment MakeTestTask(const std::string& task_id, int min_ms = 1, int max_ms = 5) {
  v1::TaskAssignment task;
  task.set_task_id(task_id);
  task.set_attempt(1);
  task.set_kind(v1::TASK_KIND_TUNE);
  task.set_backend("test");
  task.set_campaign_id("c1");
  v1::TuneWork* work = task.mutable_tune();
  work->mutable_model()->set_name("tiny-model");
  work->mutable_model()->set_backend("test");
  auto& fields = *work->mutable_model()->mutable_options()->mutable_fields();
  fields["sleep_ms_min"].set_number_value(min_ms);
  fields["sleep_ms_max"].set_number_value(max_ms);
  for (uint32_t epochs : {1u, 2u, 4u}) {
    work->add_epochs(epochs);
    work->add_cell_ids(task_id + "-cell-" + std::to_string(epochs));
  }
  return task;
}

// Polls `done` every millisecond until it holds or `timeout` passes.
inline bool WaitUntil(const std::function<bool()>& done,
                      absl::Duration timeout = absl::Seconds(5)) {
  absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

}  // namespace ftb::workers::testing

#endif  // FTB_WORKERS_TESTING_UTIL_H_
