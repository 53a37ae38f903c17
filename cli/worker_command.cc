// ftb worker.
#include "absl/strings/str_join.h"
#include "cli/commands.h"
#include "common/status_macros.h"
#include "workers/worker.h"

namespace ftb::cli {

absl::Status RunWorker(const WorkerCommandOptions& options) {
  workers::WorkerOptions o;
  o.coordinator = options.coordinator;
  FTB_ASSIGN_OR_RETURN(o.role, workers::ParseWorkerRole(options.role));
  o.backends = options.backends;
  if (o.backends.empty()) {
    if (o.role == v1::WORKER_ROLE_JUDGE) {
      o.backends = {"rules"};
    } else {
      return absl::InvalidArgumentError("--backends: name at least one backend (e.g. local)");
    }
  }
  o.slots = options.slots;
  o.worker_id = options.worker_id;
  o.max_tasks = options.max_tasks;
  FTB_ASSIGN_OR_RETURN(auto worker, workers::Worker::Create(std::move(o)));
  FTB_ASSIGN_OR_RETURN(auto signals, workers::InstallSignalHandlers(worker.get()));
  return worker->Run();
}

}  // namespace ftb::cli
