#include "judge/verdict_cache.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/hash.h"
#include "nlohmann/json.hpp"

namespace ftb::judge {
namespace {

std::optional<VerdictKind> KindFromName(std::string_view name) {
  for (VerdictKind k : {VerdictKind::kCorrect, VerdictKind::kIncorrect, VerdictKind::kStale,
                        VerdictKind::kAbstained, VerdictKind::kNoAnswer, VerdictKind::kError}) {
    if (VerdictName(k) == name) return k;
  }
  return std::nullopt;
}

bool Worth(VerdictKind kind) {
  return kind == VerdictKind::kCorrect || kind == VerdictKind::kIncorrect ||
         kind == VerdictKind::kStale || kind == VerdictKind::kAbstained;
}

}  // namespace

std::string VerdictCache::Key(const v1::JudgeItem& item, std::string_view grader_id) {
  Sha256 h;
  h.UpdateField("ftb.judge.verdict_cache.v1");
  h.UpdateField(item.prompt());
  h.UpdateField(item.reference());
  h.UpdateField(item.answer_before());
  h.UpdateField(item.context());
  h.UpdateField(item.answer());
  h.UpdateField(grader_id);
  return DigestHex(h.Finish());
}

std::string VerdictCache::PathOf(const std::string& key) const {
  return absl::StrCat(dir_, "/", key.substr(0, 2), "/", key, ".json");
}

std::optional<Verdict> VerdictCache::Lookup(const std::string& key) const {
  std::ifstream in(PathOf(key), std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto field = [&](const char* name) -> std::optional<std::string> {
    auto it = j.find(name);
    if (it == j.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  std::optional<std::string> name = field("verdict"), reason = field("reason"),
                             grader = field("grader");
  if (!name || !reason || !grader) return std::nullopt;
  std::optional<VerdictKind> kind = KindFromName(*name);
  if (!kind || !Worth(*kind)) return std::nullopt;
  Verdict v;
  v.kind = *kind;
  v.reason = std::move(*reason);
  v.grader = std::move(*grader);
  return v;
}

absl::Status VerdictCache::Store(const std::string& key, const Verdict& verdict) const {
  if (!Worth(verdict.kind)) return absl::OkStatus();
  namespace fs = std::filesystem;
  const std::string path = PathOf(key);
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("verdict cache: cannot create ",
                                            fs::path(path).parent_path().string(), ": ",
                                            ec.message()));
  }
  static std::atomic<uint64_t> counter{0};
  const std::string temp = absl::StrCat(path, ".tmp.", getpid(), ".", counter++);
  nlohmann::json j = {{"verdict", std::string(verdict.name())},
                      {"reason", verdict.reason},
                      {"grader", verdict.grader}};
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    out.flush();
    if (!out) {
      fs::remove(temp, ec);
      return absl::InternalError(absl::StrCat("verdict cache: cannot write ", temp));
    }
  }
  fs::rename(temp, path, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(temp, ignored);
    return absl::InternalError(
        absl::StrCat("verdict cache: cannot rename ", temp, " to ", path, ": ", ec.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Verdict>> GradeWithCache(const Grader& grader,
                                                    const VerdictCache* cache,
                                                    absl::Span<const v1::JudgeItem* const> items,
                                                    const Grader::GradeAllOptions& options,
                                                    CachedGradeStats* stats,
                                                    absl::Status* store_error) {
  CachedGradeStats local;
  if (stats == nullptr) stats = &local;
  if (cache == nullptr || !grader.cache_verdicts()) {
    stats->graded += items.size();
    return grader.GradeAll(items, options);
  }
  std::vector<Verdict> out(items.size());
  std::vector<std::string> keys(items.size());
  std::vector<size_t> missing;
  std::vector<const v1::JudgeItem*> to_grade;
  for (size_t i = 0; i < items.size(); ++i) {
    keys[i] = VerdictCache::Key(*items[i], grader.id());
    if (std::optional<Verdict> hit = cache->Lookup(keys[i])) {
      out[i] = *std::move(hit);
      ++stats->hits;
    } else {
      missing.push_back(i);
      to_grade.push_back(items[i]);
    }
  }
  if (to_grade.empty()) return out;
  stats->graded += to_grade.size();
  // Stored as they arrive, so what was paid for is kept even if the batch
  // fails later.
  absl::Mutex mu;
  Grader::GradeAllOptions with_store = options;
  with_store.on_verdict = [&](size_t k, const Verdict& v) {
    if (options.on_verdict) options.on_verdict(missing[k], v);
    if (!Worth(v.kind)) return;
    absl::Status s = cache->Store(keys[missing[k]], v);
    absl::MutexLock lock(&mu);
    if (s.ok()) {
      ++stats->stored;
    } else if (store_error != nullptr && store_error->ok()) {
      *store_error = s;
    }
  };
  absl::StatusOr<std::vector<Verdict>> graded = grader.GradeAll(to_grade, with_store);
  if (!graded.ok()) return graded.status();
  for (size_t k = 0; k < missing.size(); ++k) out[missing[k]] = std::move((*graded)[k]);
  return out;
}

std::string DefaultVerdictCacheDir() {
  const char* env = std::getenv("FTB_ARTIFACT_DIR");
  if (env != nullptr && *env != '\0') return absl::StrCat(env, "/verdicts");
  return ".ftb-artifacts/verdicts";
}

}  // namespace ftb::judge
