#include "workers/provider_task.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/hash.h"
#include "cost/price_table.h"
#include "datasets/dataset.h"

namespace ftb::workers {

namespace fs = std::filesystem;
using Json = nlohmann::json;

std::string ProviderTaskTag(std::string_view domain, const std::string& campaign_id,
                            const std::string& task_id) {
  Sha256 h;
  h.UpdateField(std::string(domain));
  h.UpdateField(campaign_id);
  h.UpdateField(task_id);
  return absl::StrCat("ftb-", DigestHex(h.Finish(), 8));
}

std::string ProviderArtifactDir(const BackendOptions& options) {
  auto it = options.params.find("artifact_dir");
  if (it != options.params.end()) return it->second;
  if (const char* env = std::getenv("FTB_ARTIFACT_DIR"); env != nullptr && *env) return env;
  return ".ftb-artifacts";
}

absl::Status ValidateProviderTuneTask(const v1::TaskAssignment& task, std::string_view backend,
                                      uint32_t max_epochs) {
  const std::string name(backend);
  if (task.kind() != v1::TASK_KIND_TUNE) {
    return absl::InvalidArgumentError(absl::StrCat(name, " runs TUNE tasks only; task ",
                                                   task.task_id(), " is ",
                                                   v1::TaskKind_Name(task.kind())));
  }
  const v1::TuneWork& work = task.tune();
  if (work.epochs_size() == 0 || work.epochs_size() != work.cell_ids_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": epochs and cell_ids must be non-empty and parallel"));
  }
  for (int i = 0; i < work.epochs_size(); ++i) {
    if (work.epochs(i) > max_epochs || (i > 0 && work.epochs(i) <= work.epochs(i - 1))) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": epochs must be ascending, each in 0..", max_epochs,
                       " (0 = the base model; the provider trains 1..", max_epochs, ")"));
    }
  }
  if (work.learning_rate_multiplier() < 0 || !std::isfinite(work.learning_rate_multiplier())) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": learning_rate_multiplier must be > 0 or auto (0)"));
  }
  return absl::OkStatus();
}

std::string JsonString(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

uint64_t JsonUint(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return 0;
  if (it->is_number_unsigned()) return it->get<uint64_t>();
  if (it->is_number_integer()) return it->get<int64_t>() > 0 ? it->get<uint64_t>() : 0;
  if (it->is_number()) return it->get<double>() > 0 ? static_cast<uint64_t>(it->get<double>()) : 0;
  uint64_t v = 0;
  if (it->is_string() && absl::SimpleAtoi(it->get<std::string>(), &v)) return v;
  return 0;
}

namespace {

absl::Status OptionError(std::string_view backend, const std::string& name,
                         const std::string& expected) {
  return absl::InvalidArgumentError(
      absl::StrCat(std::string(backend), ": model.options.", name, ": expected ", expected));
}

}  // namespace

absl::Status OptionString(std::string_view backend, const std::string& name,
                          const google::protobuf::Value& v, std::string* out) {
  if (v.kind_case() != google::protobuf::Value::kStringValue) {
    return OptionError(backend, name, "a string");
  }
  *out = v.string_value();
  return absl::OkStatus();
}

absl::Status OptionNumber(std::string_view backend, const std::string& name,
                          const google::protobuf::Value& v, double lo, double hi, double* out) {
  double x = 0;
  const std::string expected = absl::StrCat("a number in [", lo, ", ", hi, "]");
  if (v.kind_case() == google::protobuf::Value::kNumberValue) {
    x = v.number_value();
  } else if (v.kind_case() != google::protobuf::Value::kStringValue ||
             !absl::SimpleAtod(v.string_value(), &x)) {
    return OptionError(backend, name, expected);
  }
  if (x < lo || x > hi) return OptionError(backend, name, expected);
  *out = x;
  return absl::OkStatus();
}

absl::Status OptionBool(std::string_view backend, const std::string& name,
                        const google::protobuf::Value& v, bool* out) {
  if (v.kind_case() != google::protobuf::Value::kBoolValue) {
    return OptionError(backend, name, "true or false");
  }
  *out = v.bool_value();
  return absl::OkStatus();
}

absl::Status OptionUrl(std::string_view backend, const std::string& name,
                       const google::protobuf::Value& v, std::string* out) {
  std::string url;
  if (absl::Status s = OptionString(backend, name, v, &url); !s.ok()) return s;
  while (!url.empty() && url.back() == '/') url.pop_back();
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
    return OptionError(backend, name, absl::StrCat("an http(s) URL, got \"", url, "\""));
  }
  *out = std::move(url);
  return absl::OkStatus();
}

absl::Status RecordProviderIntent(TaskContext& ctx, std::string_view backend,
                                  const std::string& kind, const std::string& tag,
                                  const std::string& id) {
  v1::TaskIntent intent;
  intent.set_kind(kind);
  intent.set_tag(tag);
  intent.set_provider_id(id);
  absl::StatusOr<v1::RecordTaskIntentResponse> r = ctx.RecordIntent(intent);
  if (r.status().code() == absl::StatusCode::kUnimplemented) return absl::OkStatus();
  if (!r.ok()) {
    // Without a durable intent a billable call must not go out.
    return absl::UnavailableError(absl::StrCat(std::string(backend), ": cannot record the ", kind,
                                               " intent at the coordinator: ",
                                               std::string(r.status().message())));
  }
  if (r->outcome() != v1::COMPLETION_OUTCOME_ACCEPTED &&
      r->outcome() != v1::COMPLETION_OUTCOME_UNSPECIFIED) {
    // The coordinator did not store it: this attempt no longer holds the
    // task (re-leased, finished, cancelled), so it must not pay.
    return absl::AbortedError(absl::StrCat(std::string(backend), ": the ", kind,
                                           " intent was refused (",
                                           v1::CompletionOutcome_Name(r->outcome()),
                                           "): this attempt no longer holds the task"));
  }
  return absl::OkStatus();
}

std::string RecordedProviderId(const v1::TaskAssignment& task, const std::string& kind,
                               const std::string& tag) {
  std::string id;
  for (const v1::TaskIntent& i : task.intents()) {
    if (i.kind() == kind && i.tag() == tag && !i.provider_id().empty()) id = i.provider_id();
  }
  return id;
}

bool CampaignCancelled(TaskContext& ctx, const std::string& tag) {
  v1::TaskIntent intent;
  intent.set_kind("cancel");
  intent.set_tag(tag);
  absl::StatusOr<v1::RecordTaskIntentResponse> r = ctx.RecordIntent(intent);
  return r.ok() && r->campaign_cancelled();
}

// --- AnswerCache ----------------------------------------------------------------

AnswerCache::AnswerCache(std::string path) : path_(std::move(path)) {
  if (path_.empty()) return;
  std::ifstream in(path_);
  std::string line;
  while (std::getline(in, line)) {
    Json j = Json::parse(line, nullptr, false);
    if (!j.is_object()) continue;  // a torn last line after a crash
    entries_[Key(JsonString(j, "model"), JsonString(j, "type"), JsonString(j, "id"))] =
        Entry{JsonString(j, "answer"), JsonUint(j, "prompt_tokens"),
              JsonUint(j, "completion_tokens")};
  }
  std::error_code ec;
  fs::create_directories(fs::path(path_).parent_path(), ec);
  out_.open(path_, std::ios::app);
}

std::string AnswerCache::Key(const std::string& m, const std::string& t, const std::string& i) {
  return absl::StrCat(m, "\n", t, "\n", i);
}

const AnswerCache::Entry* AnswerCache::Find(const std::string& model, const std::string& type,
                                            const std::string& id) {
  auto it = entries_.find(Key(model, type, id));
  return it == entries_.end() ? nullptr : &it->second;
}

void AnswerCache::Add(const std::string& model, const std::string& type, const std::string& id,
                      const Entry& e) {
  entries_[Key(model, type, id)] = e;
  if (!out_) return;
  Json j{{"model", model},
         {"type", type},
         {"id", id},
         {"answer", e.answer},
         {"prompt_tokens", e.prompt_tokens},
         {"completion_tokens", e.completion_tokens}};
  out_ << j.dump(-1, ' ', false, Json::error_handler_t::replace) << '\n';
  out_.flush();
}

// --- answering ------------------------------------------------------------------

absl::StatusOr<AnswerTotals> AnswerAllCells(const v1::TuneWork& work, const v1::Dataset& dataset,
                                            const std::map<uint32_t, std::string>& model_for_epoch,
                                            AnswerCache& cache, const AskFn& ask,
                                            TaskContext& ctx, std::string_view digest_domain,
                                            v1::TaskResult* result) {
  AnswerTotals totals;
  size_t total_questions = 0;
  for (const v1::QuestionSet& set : dataset.tests()) total_questions += set.items_size();
  const size_t total = total_questions * static_cast<size_t>(work.cell_ids_size());
  size_t done = 0;
  Sha256 digest;
  digest.UpdateField(std::string(digest_domain));
  for (int c = 0; c < work.cell_ids_size(); ++c) {
    auto m = model_for_epoch.find(work.epochs(c));
    if (m == model_for_epoch.end()) {
      return absl::InternalError(absl::StrCat("no tuned model for ", work.epochs(c), " epochs"));
    }
    const std::string& model = m->second;
    v1::CellAnswers* cell = result->add_answers();
    cell->set_cell_id(work.cell_ids(c));
    digest.UpdateField(work.cell_ids(c));
    for (const v1::QuestionSet& set : dataset.tests()) {
      const std::string type = datasets::QuestionTypeName(set.type());
      for (const v1::QaItem& q : set.items()) {
        if (ctx.cancelled()) return absl::CancelledError("cancelled while answering");
        AnswerCache::Entry entry;
        if (const AnswerCache::Entry* hit = cache.Find(model, type, q.id())) {
          entry = *hit;
          ++totals.reused;
        } else {
          absl::StatusOr<AnswerCache::Entry> asked = ask(model, q);
          if (!asked.ok()) {
            if (ctx.cancelled()) return absl::CancelledError("cancelled while answering");
            return asked.status();
          }
          entry = *std::move(asked);
          cache.Add(model, type, q.id(), entry);
          ++totals.asked;
        }
        totals.prompt_tokens += entry.prompt_tokens;
        totals.completion_tokens += entry.completion_tokens;
        if (work.epochs(c) == 0) {
          totals.base_prompt_tokens += entry.prompt_tokens;
          totals.base_completion_tokens += entry.completion_tokens;
        }
        v1::JudgeItem* item = cell->add_items();
        item->set_cell_id(work.cell_ids(c));
        item->set_question_type(type);
        item->set_question_id(q.id());
        item->set_prompt(q.prompt());
        item->set_reference(q.answer());
        item->set_answer_before(q.answer_before());
        item->set_context(q.context());
        item->set_answer(std::string(absl::StripAsciiWhitespace(entry.answer)));
        digest.UpdateField(q.id());
        digest.UpdateField(item->answer());
        ++done;
        if (done % 10 == 0 || done == total) {
          ctx.SetProgress(0.8 + 0.2 * static_cast<double>(done) / static_cast<double>(total),
                          absl::StrCat("answered ", done, "/", total));
        }
      }
    }
  }
  result->set_digest(DigestHex(digest.Finish()));
  return totals;
}

void PriceProviderResult(std::string_view backend, const std::string& model,
                         uint64_t trained_tokens, const AnswerTotals& totals, TaskContext& ctx,
                         v1::TaskResult* result) {
  result->set_tokens(trained_tokens + totals.prompt_tokens + totals.completion_tokens);
  const cost::ModelPrice* price = cost::PriceTable::Builtin().Find(backend, model);
  if (price == nullptr) {
    ctx.Log(absl::StrCat(std::string(backend), ": no price for model ", model,
                         " in the price tables; cost recorded as 0"));
    return;
  }
  const uint64_t tuned_prompt = totals.prompt_tokens - totals.base_prompt_tokens;
  const uint64_t tuned_completion = totals.completion_tokens - totals.base_completion_tokens;
  result->set_cost_usd(
      (static_cast<double>(trained_tokens) * price->training_per_1m_tokens +
       static_cast<double>(tuned_prompt) * price->input_per_1m_tokens +
       static_cast<double>(tuned_completion) * price->output_per_1m_tokens +
       static_cast<double>(totals.base_prompt_tokens) * price->base_input_per_1m_tokens +
       static_cast<double>(totals.base_completion_tokens) * price->base_output_per_1m_tokens) /
      1e6);
}

absl::StatusOr<v1::TaskResult> AnswerAndPrice(
    std::string_view backend, const v1::TuneWork& work, const v1::Dataset& dataset,
    const std::map<uint32_t, std::string>& model_for_epoch, AnswerCache& cache, const AskFn& ask,
    uint64_t trained_tokens, TaskContext& ctx, std::string_view digest_domain) {
  v1::TaskResult result;
  absl::StatusOr<AnswerTotals> totals =
      AnswerAllCells(work, dataset, model_for_epoch, cache, ask, ctx, digest_domain, &result);
  if (!totals.ok()) {
    if (totals.status().code() == absl::StatusCode::kCancelled) {
      return absl::CancelledError(
          absl::StrCat(std::string(backend), ": cancelled while answering"));
    }
    return totals.status();
  }
  ctx.Log(absl::StrCat(std::string(backend), ": ", totals->asked, " answers asked, ",
                       totals->reused, " reused from the answer cache; trained tokens ",
                       trained_tokens, ", prompt ", totals->prompt_tokens, ", completion ",
                       totals->completion_tokens));
  PriceProviderResult(backend, work.model().name(), trained_tokens, *totals, ctx, &result);
  ctx.SetProgress(1, "answered");
  return result;
}

absl::Status PauseWatch::Observe(TaskContext& ctx, bool paused, absl::Duration limit,
                                 absl::string_view job, absl::string_view state,
                                 absl::string_view how_to_resume) {
  if (!paused) {
    since_ = absl::InfiniteFuture();
    return absl::OkStatus();
  }
  const absl::Time now = absl::Now();
  if (since_ == absl::InfiniteFuture()) {
    since_ = now;
    ctx.Log(absl::StrCat(job, " is ", state, "; waiting up to ", absl::FormatDuration(limit),
                         " (model.options.paused_timeout_seconds) for it to be resumed"));
    return absl::OkStatus();
  }
  if (now - since_ < limit) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      job, " has been in state \"", state, "\" for ", absl::FormatDuration(now - since_),
      ", longer than model.options.paused_timeout_seconds (", absl::FormatDuration(limit),
      "); ", how_to_resume, ", then retry the cell"));
}

}  // namespace ftb::workers
