#include "workers/replay_backend.h"

#include <deque>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/hash.h"
#include "common/status_macros.h"
#include "datasets/csv.h"
#include "datasets/dataset.h"

namespace ftb::workers {
namespace {

namespace fs = std::filesystem;

constexpr char kResponseSuffix[] = "_response";
constexpr size_t kResponseSuffixSize = sizeof(kResponseSuffix) - 1;

// The file name part of <dataset>_<type>_w_responses.csv for a question type.
std::string FileType(v1::QuestionType type) {
  if (type == v1::QUESTION_TYPE_MEMORIZATION) return "original";
  return datasets::QuestionTypeName(type);
}

std::string Trim(std::string_view s) {
  return std::string(absl::StripAsciiWhitespace(absl::string_view(s.data(), s.size())));
}

// Prompts compared without '\r' and surrounding whitespace.
std::string PromptKey(std::string_view source_id, std::string_view prompt) {
  std::string key(source_id);
  key.push_back('\0');
  std::string cleaned;
  cleaned.reserve(prompt.size());
  for (char c : prompt) {
    if (c != '\r') cleaned.push_back(c);
  }
  key += Trim(cleaned);
  return key;
}

// "Correct" / "Incorrect" (any case, trimmed, without a final '.'), or "".
std::string RecordedVerdict(std::string_view response) {
  std::string t = Trim(response);
  if (!t.empty() && t.back() == '.') t.pop_back();
  if (absl::EqualsIgnoreCase(t, "correct") || absl::EqualsIgnoreCase(t, "incorrect")) return t;
  return "";
}

absl::StatusOr<int> RequireColumn(const datasets::CsvTable& table, std::string_view column) {
  int index = table.Column(column);
  if (index < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        table.filename, ":1:1: missing required column \"", std::string(column), "\""));
  }
  return index;
}

// Replays one question set from `path` (which exists).
absl::Status ReplaySet(const v1::QuestionSet& set, const std::string& path,
                       const std::string& model, ReplayedAnswers& out) {
  FTB_ASSIGN_OR_RETURN(datasets::CsvTable table, datasets::ReadCsvFile(path));
  FTB_ASSIGN_OR_RETURN(const int id_col, RequireColumn(table, "id"));
  FTB_ASSIGN_OR_RETURN(const int prompt_col, RequireColumn(table, "prompt"));
  const std::string column = absl::StrCat(model, kResponseSuffix);
  const int response_col = table.Column(column);
  if (response_col < 0) {
    std::vector<std::string> recorded;
    for (const std::string& name : table.header) {
      if (name.size() > kResponseSuffixSize && absl::EndsWith(name, kResponseSuffix)) {
        recorded.push_back(name.substr(0, name.size() - kResponseSuffixSize));
      }
    }
    return absl::InvalidArgumentError(absl::StrCat(
        table.filename, ":1:1: no column \"", column,
        "\"; recorded models: ", recorded.empty() ? "(none)" : absl::StrJoin(recorded, ", ")));
  }
  const std::string file = fs::path(path).filename().string();

  // Recorded rows by (id, prompt), in file order.
  absl::flat_hash_map<std::string, std::deque<size_t>> rows;
  for (size_t r = 0; r < table.rows.size(); ++r) {
    rows[PromptKey(table.rows[r][id_col], table.rows[r][prompt_col])].push_back(r);
  }

  const std::string type = datasets::QuestionTypeName(set.type());
  int matched = 0;
  int verdicts = 0;
  for (const v1::QaItem& question : set.items()) {
    v1::JudgeItem& item = out.items.emplace_back();
    item.set_question_type(type);
    item.set_question_id(question.id());
    item.set_prompt(question.prompt());
    item.set_reference(question.answer());
    item.set_answer_before(question.answer_before());
    item.set_context(question.context());
    auto it = rows.find(PromptKey(question.source_id(), question.prompt()));
    if (it == rows.end() || it->second.empty()) {
      item.set_unavailable_reason(absl::StrCat("no recorded response for this question in ", file));
      continue;
    }
    const size_t r = it->second.front();
    it->second.pop_front();
    ++matched;
    const std::string& response = table.rows[r][response_col];
    const std::string where = absl::StrCat(file, ":", table.row_lines[r]);
    if (Trim(response).empty()) {
      item.set_unavailable_reason(absl::StrCat("recorded response is empty (", where, ")"));
    } else if (std::string verdict = RecordedVerdict(response); !verdict.empty()) {
      ++verdicts;
      item.set_unavailable_reason(absl::StrCat("recorded response is a verdict (\"", verdict,
                                               "\"), not an answer (", where, ")"));
    } else {
      item.set_answer(response);
    }
  }

  size_t unused = 0;
  for (const auto& [key, left] : rows) unused += left.size();
  if (matched < set.items_size()) {
    out.notes.push_back(absl::StrCat(type, ": ", set.items_size() - matched, " of ",
                                     set.items_size(), " questions have no recorded row in ", file,
                                     " (graded no_answer)"));
  }
  if (unused > 0) {
    out.notes.push_back(
        absl::StrCat(type, ": ", unused, " recorded rows of ", file, " match no question"));
  }
  if (verdicts > 0) {
    out.notes.push_back(absl::StrCat(type, ": ", verdicts, " of ", matched, " recorded ", column,
                                     " cells in ", file,
                                     " are verdicts, not answers (graded no_answer)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> StringOption(const google::protobuf::Struct& options,
                                         const std::string& name, bool required) {
  auto it = options.fields().find(name);
  if (it == options.fields().end()) {
    if (required) {
      return absl::InvalidArgumentError(absl::StrCat("replay: model option ", name,
                                                     " is required (the directory holding ",
                                                     "model_responses/)"));
    }
    return std::string();
  }
  if (it->second.kind_case() != google::protobuf::Value::kStringValue ||
      it->second.string_value().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("replay: model option ", name, " must be a non-empty string"));
  }
  return it->second.string_value();
}

// The replay backend's model options: responses_path (required) and
// recorded_model, both non-empty strings.
absl::Status CheckReplayOptions(const google::protobuf::Struct& options) {
  for (const auto& [name, unused] : options.fields()) {
    if (name != "responses_path" && name != "recorded_model") {
      return absl::InvalidArgumentError(absl::StrCat("replay: unknown model option \"", name,
                                                     "\"; known: recorded_model, responses_path"));
    }
  }
  FTB_RETURN_IF_ERROR(StringOption(options, "responses_path", /*required=*/true).status());
  return StringOption(options, "recorded_model", /*required=*/false).status();
}

}  // namespace

absl::StatusOr<ReplayedAnswers> ReplayRecordedResponses(const v1::Dataset& dataset,
                                                        const std::string& responses_path,
                                                        const std::string& model) {
  const fs::path root = fs::path(responses_path) / "model_responses";
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    return absl::NotFoundError(absl::StrCat(
        root.string(), ": no such directory (responses_path must hold model_responses/)"));
  }
  ReplayedAnswers out;
  const fs::path dir = root / dataset.name();
  for (const v1::QuestionSet& set : dataset.tests()) {
    const std::string path =
        (dir / absl::StrCat(dataset.name(), "_", FileType(set.type()), "_w_responses.csv"))
            .string();
    if (!fs::is_regular_file(path, ec)) {
      out.notes.push_back(absl::StrCat("no recorded responses for ", dataset.name(), " ",
                                       datasets::QuestionTypeName(set.type()), " (", path,
                                       " does not exist); skipped"));
      continue;
    }
    FTB_RETURN_IF_ERROR(ReplaySet(set, path, model, out));
  }
  return out;
}

absl::StatusOr<v1::TaskResult> ReplayBackend::Run(const v1::TaskAssignment& task,
                                                  TaskContext& ctx) {
  if (task.kind() != v1::TASK_KIND_TUNE) {
    return absl::InvalidArgumentError(absl::StrCat("replay runs TUNE tasks only; task ",
                                                   task.task_id(), " is ",
                                                   v1::TaskKind_Name(task.kind())));
  }
  const v1::TuneWork& work = task.tune();
  for (uint32_t e : work.epochs()) {
    if (e == 0) {
      return absl::InvalidArgumentError(
          "replay: epochs 0 (the untuned base model) cannot be replayed: the recorded files hold "
          "one \"<model>_response\" column per fine-tuned model and no base-model column; use "
          "epochs of at least 1 (the spec refuses epochs 0 for replay at plan time)");
    }
  }
  const google::protobuf::Struct& options = work.model().options();
  FTB_RETURN_IF_ERROR(CheckReplayOptions(options));
  FTB_ASSIGN_OR_RETURN(const std::string responses_path,
                       StringOption(options, "responses_path", /*required=*/true));
  FTB_ASSIGN_OR_RETURN(std::string model,
                       StringOption(options, "recorded_model", /*required=*/false));
  if (model.empty()) model = work.model().name();

  FTB_ASSIGN_OR_RETURN(const v1::Dataset dataset, datasets::LoadDataset(work.dataset()));
  if (ctx.cancelled()) return absl::CancelledError("replay cancelled");
  FTB_ASSIGN_OR_RETURN(ReplayedAnswers replayed,
                       ReplayRecordedResponses(dataset, responses_path, model));
  if (ctx.cancelled()) return absl::CancelledError("replay cancelled");
  for (const std::string& note : replayed.notes) ctx.Log(absl::StrCat("replay: ", note));

  v1::TaskResult result;
  Sha256 digest;
  digest.UpdateField("ftb.workers.replay.v1");
  digest.UpdateField(model);
  digest.UpdateField(dataset.name());
  for (const v1::JudgeItem& item : replayed.items) {
    digest.UpdateField(item.question_type());
    digest.UpdateField(item.question_id());
    digest.UpdateField(item.answer());
    digest.UpdateField(item.unavailable_reason());
  }
  for (const std::string& cell_id : work.cell_ids()) {
    digest.UpdateField(cell_id);
    v1::CellAnswers* cell = result.add_answers();
    cell->set_cell_id(cell_id);
    cell->mutable_items()->Reserve(static_cast<int>(replayed.items.size()));
    for (const v1::JudgeItem& item : replayed.items) {
      v1::JudgeItem* copy = cell->add_items();
      *copy = item;
      copy->set_cell_id(cell_id);
    }
  }
  for (const std::string& note : replayed.notes) result.add_notes(note);
  result.set_digest(DigestHex(digest.Finish()));
  ctx.SetProgress(1, "replayed");
  return result;
}

absl::Status RegisterReplayBackend(BackendRegistry& registry) {
  return registry.Register(
      ReplayBackend::kName,
      [](const BackendOptions&) -> absl::StatusOr<std::unique_ptr<TuningBackend>> {
        return std::make_unique<ReplayBackend>();
      },
      CheckReplayOptions);
}

}  // namespace ftb::workers
