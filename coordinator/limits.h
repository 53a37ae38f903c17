// Request limits of the coordinator: the one table of how large each string
// and repeated field of an ftb.v1.Coordinator request may be. A request over
// a limit is refused with INVALID_ARGUMENT naming the field (e.g.
// "completions[0].result.verdicts: at most 100000 entries, got 100001") and
// changes nothing. docs/architecture.md ("Request limits") shows the same
// table; keep the two in step.
//
// Why these numbers. Every limit keeps what the coordinator stores readable
// by its own clients: the server accepts messages up to kMaxMessageBytes and
// every ftb client (CLI, workers) accepts replies of that size, while the
// largest single stored record (one task's result) is capped well below it
// (kMaxResultBytes), so GetCampaign, WatchCampaign and ExportCampaign never
// hand a client more than it reads. Per-worker and per-task state is bounded
// too, so a client cannot grow the coordinator's memory without limit.
#ifndef FTB_COORDINATOR_LIMITS_H_
#define FTB_COORDINATOR_LIMITS_H_

#include <cstddef>
#include <cstdint>

namespace ftb::coordinator::limits {

// Whole messages, both directions (server receive limit = client receive
// limit of `ftb` commands and workers).
inline constexpr int kMaxMessageBytes = 64 << 20;

// Identifiers.
inline constexpr size_t kMaxWorkerIdBytes = 256;
inline constexpr size_t kMaxTaskIdBytes = 256;
inline constexpr size_t kMaxCampaignIdBytes = 128;
inline constexpr size_t kMaxLeaseTokenBytes = 64;

// RegisterWorker.
inline constexpr int kMaxBackends = 32;
inline constexpr size_t kMaxBackendNameBytes = 128;
inline constexpr int kMaxCapabilities = 32;
inline constexpr size_t kMaxCapabilityKeyBytes = 128;
inline constexpr size_t kMaxCapabilityValueBytes = 1024;
inline constexpr uint32_t kMaxSlots = 4096;

// Heartbeat, CompleteTasks.
inline constexpr int kMaxHeartbeatTasks = 10000;
inline constexpr int kMaxCompletions = 1000;

// One TaskResult (CompleteTasks.completions[i].result): its serialized size
// is what the r/ record stores.
inline constexpr size_t kMaxResultBytes = 16 << 20;
inline constexpr int kMaxVerdicts = 100000;
inline constexpr int kMaxAnswersPerCell = 100000;
inline constexpr int kMaxNotes = 64;
inline constexpr size_t kMaxNoteBytes = 4096;
inline constexpr size_t kMaxDigestBytes = 256;
inline constexpr size_t kMaxQuestionFieldBytes = 256;  // question_type, question_id, grader
inline constexpr size_t kMaxVerdictReasonBytes = 16 << 10;
// Tokens one attempt may report (2^53: exact in a double, for the metrics).
inline constexpr uint64_t kMaxTokens = uint64_t{1} << 53;

// FailTask.error.
inline constexpr size_t kMaxErrorBytes = 16 << 10;

// RecordTaskIntent: each field of the intent, and intents per task (all
// attempts together). The task's whole intent list (rewritten on every
// record, and sent with every assignment) therefore stays under ~70 KiB.
inline constexpr size_t kMaxIntentKindBytes = 64;
inline constexpr size_t kMaxIntentTagBytes = 512;
inline constexpr size_t kMaxIntentProviderIdBytes = 512;
inline constexpr int kMaxIntentsPerTask = 64;

// SubmitCampaign: what the campaign record stores (spec YAML; the parsed
// spec is smaller) and the variables sent with it.
inline constexpr size_t kMaxSpecYamlBytes = 1 << 20;
inline constexpr size_t kMaxSpecFilenameBytes = 4096;
inline constexpr size_t kMaxRequestIdBytes = 256;
inline constexpr int kMaxEnvEntries = 256;
inline constexpr size_t kMaxEnvNameBytes = 256;
inline constexpr size_t kMaxEnvValueBytes = 64 << 10;

// ListCampaigns.
inline constexpr uint32_t kDefaultPageSize = 100;
inline constexpr uint32_t kMaxPageSize = 1000;

// Workers not seen (register, lease, heartbeat) for this long are forgotten;
// a returning worker is told to register again (FAILED_PRECONDITION), as
// after a coordinator restart.
inline constexpr int64_t kWorkerEvictMs = 10 * 60 * 1000;

}  // namespace ftb::coordinator::limits

#endif  // FTB_COORDINATOR_LIMITS_H_
