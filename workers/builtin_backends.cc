// The backend factory: the one place that knows every built-in backend.
#include "common/status_macros.h"
#include "workers/backend.h"
#include "workers/command_backend.h"
#include "workers/local_backend.h"
#include "workers/openai_backend.h"
#include "workers/replay_backend.h"
#include "workers/test_backend.h"
#include "workers/vertex_backend.h"

namespace ftb::workers {

absl::Status RegisterBuiltinBackends(BackendRegistry& registry) {
  FTB_RETURN_IF_ERROR(RegisterCommandBackend(registry));
  FTB_RETURN_IF_ERROR(RegisterLocalBackend(registry));
  FTB_RETURN_IF_ERROR(RegisterOpenAiBackend(registry));
  FTB_RETURN_IF_ERROR(RegisterReplayBackend(registry));
  FTB_RETURN_IF_ERROR(RegisterTestBackend(registry));
  FTB_RETURN_IF_ERROR(RegisterVertexBackend(registry));
  return absl::OkStatus();
}

}  // namespace ftb::workers
