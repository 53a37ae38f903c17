// The verdict cache: verdicts of graders that cost money (Grader::
// cache_verdicts(), i.e. `llm`) kept on disk, so a re-run of a campaign, a
// retried JUDGE task or a second campaign over the same answers never asks
// the judge model again.
//
// KEY. SHA-256 over the item's question (prompt), reference, answer_before,
// context and answer, and the grader's id, which carries the judge model and
// the rubric version ("llm/<model>/r1"); VerdictCache::Key. Cell, question
// ids and the base URL are not part of it: the same texts graded by the same
// model under the same rubric get the same verdict.
//
// LAYOUT. One small JSON file per verdict, DIR/<first two hex digits>/<the
// 64 hex digits>.json = {"verdict", "reason", "grader"}, written to a
// temporary file in the same directory and renamed into place, so a reader
// (another judge worker sharing the directory, or this one after a crash)
// sees a whole file or none. Directories are created on the first store.
//
// WHAT IS KEPT: correct, incorrect, stale and abstained verdicts. `error`
// verdicts (e.g. unparseable replies) are not kept, so a re-run asks again;
// `no_answer` and the grader's no-call cases cost nothing.
//
// Thread-safe: any number of threads and processes may share a directory.
#ifndef FTB_JUDGE_VERDICT_CACHE_H_
#define FTB_JUDGE_VERDICT_CACHE_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "judge/grader.h"

namespace ftb::judge {

class VerdictCache {
 public:
  explicit VerdictCache(std::string dir) : dir_(std::move(dir)) {}

  // 64 lower-case hex digits (see KEY).
  static std::string Key(const v1::JudgeItem& item, std::string_view grader_id);

  // The stored verdict, or nullopt when there is none or it is unreadable
  // (a damaged file is a miss, and is overwritten by the next Store).
  std::optional<Verdict> Lookup(const std::string& key) const;
  // Stores `verdict` under `key` if it is worth keeping (see WHAT IS KEPT);
  // OK without writing otherwise. Errors: kInternal naming the path when the
  // directory or file cannot be written.
  absl::Status Store(const std::string& key, const Verdict& verdict) const;

  // The file a key is stored in.
  std::string PathOf(const std::string& key) const;
  const std::string& dir() const { return dir_; }

 private:
  const std::string dir_;
};

// What a caching grade did, for logs.
struct CachedGradeStats {
  size_t hits = 0;    // verdicts read from the cache
  size_t graded = 0;  // items given to the grader
  size_t stored = 0;  // verdicts written to the cache
};

// Grades `items` with `grader`, reading verdicts from `cache` first and
// storing new ones as they arrive, so those obtained before a batch error
// are kept (when `cache` is non-null and grader.cache_verdicts(); otherwise
// plain grader.GradeAll). Result as Grader::GradeAll. A failure to
// store is not an error (the verdict is still returned); it is counted out
// of `stats->stored` and the first such error is put in `*store_error` if
// given.
absl::StatusOr<std::vector<Verdict>> GradeWithCache(
    const Grader& grader, const VerdictCache* cache, absl::Span<const v1::JudgeItem* const> items,
    const Grader::GradeAllOptions& options, CachedGradeStats* stats = nullptr,
    absl::Status* store_error = nullptr);

// The default cache directory of judge workers: $FTB_ARTIFACT_DIR/verdicts,
// else .ftb-artifacts/verdicts (relative to the working directory).
std::string DefaultVerdictCacheDir();

}  // namespace ftb::judge

#endif  // FTB_JUDGE_VERDICT_CACHE_H_
