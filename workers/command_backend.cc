#include "workers/command_backend.h"

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/hash.h"
#include "common/secret_names.h"
#include "common/status_macros.h"
#include "datasets/dataset.h"
#include "datasets/export.h"
#include "nlohmann/json.hpp"
#include "providers/http.h"
#include "providers/openai_client.h"
#include "workers/subprocess.h"

namespace ftb::workers {
namespace {

namespace fs = std::filesystem;

constexpr char kDefaultArtifactDir[] = ".ftb-artifacts";
constexpr char kCompleteMarker[] = "ftb-complete";
constexpr char kKeyVersion[] = "ftb.command_backend.v1";
constexpr size_t kErrorTailBytes = 2000;

constexpr const char* kOptionNames[] = {"answer", "answer_timeout_s", "artifact_dir", "endpoint",
                                        "env",    "format",           "snapshots",    "timeout_s",
                                        "train"};

absl::Status OptionError(std::string_view key, std::string_view expected) {
  return absl::InvalidArgumentError(absl::StrCat("command backend: model.options.",
                                                 std::string(key), ": expected ",
                                                 std::string(expected)));
}

absl::StatusOr<std::string> ReadString(const google::protobuf::Struct& s, std::string_view key,
                                       bool required) {
  auto it = s.fields().find(std::string(key));
  if (it == s.fields().end()) {
    if (required) return OptionError(key, "a command template (required)");
    return std::string();
  }
  if (it->second.kind_case() != google::protobuf::Value::kStringValue ||
      absl::StripAsciiWhitespace(it->second.string_value()).empty()) {
    return OptionError(key, "a non-empty string");
  }
  return it->second.string_value();
}

absl::StatusOr<absl::Duration> ReadSeconds(const google::protobuf::Struct& s,
                                           std::string_view key, absl::Duration fallback) {
  auto it = s.fields().find(std::string(key));
  if (it == s.fields().end()) return fallback;
  double v = -1;
  if (it->second.kind_case() == google::protobuf::Value::kNumberValue) {
    v = it->second.number_value();
  } else if (it->second.kind_case() == google::protobuf::Value::kStringValue) {
    if (!absl::SimpleAtod(it->second.string_value(), &v)) v = -1;
  }
  if (!(v > 0) || !std::isfinite(v) || v > 30 * 86400) {
    return OptionError(key, "a number of seconds in (0, 2592000]");
  }
  return absl::Seconds(v);
}

absl::Status WriteFileAtomically(const fs::path& path, std::string_view content) {
  static std::atomic<uint64_t> counter{0};
  const fs::path temp =
      absl::StrCat(path.string(), ".tmp.", ::getpid(), ".", counter.fetch_add(1));
  {
    std::ofstream f(temp, std::ios::binary | std::ios::trunc);
    f.write(content.data(), static_cast<std::streamsize>(content.size()));
    if (!f.flush()) return absl::InternalError(absl::StrCat("cannot write ", temp.string()));
  }
  std::error_code error;
  fs::rename(temp, path, error);
  if (error) {
    return absl::InternalError(absl::StrCat("cannot rename ", temp.string(), " to ",
                                            path.string(), ": ", error.message()));
  }
  return absl::OkStatus();
}

absl::Status ValidateWork(const v1::TaskAssignment& task) {
  if (task.kind() != v1::TASK_KIND_TUNE) {
    return absl::InvalidArgumentError(
        absl::StrCat("command backend: task ", task.task_id(), " is not a TUNE task"));
  }
  const v1::TuneWork& work = task.tune();
  if (work.epochs().empty() || work.epochs_size() != work.cell_ids_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "command backend: tune.epochs (", work.epochs_size(),
        ") must be non-empty and parallel to tune.cell_ids (", work.cell_ids_size(), ")"));
  }
  for (int i = 0; i < work.epochs_size(); ++i) {
    if (i > 0 && work.epochs(i) < work.epochs(i - 1)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "command backend: tune.epochs must be ascending; entry ", i, " is ", work.epochs(i)));
    }
  }
  // `auto` (0) would leave the training command without a value to use.
  if (work.learning_rate_multiplier() == 0) {
    return absl::InvalidArgumentError(
        "command backend: tune.learning_rate_multiplier is auto, but a training command has no "
        "provider default to fall back on; give a number");
  }
  if (work.batch_size() == 0) {
    return absl::InvalidArgumentError(
        "command backend: tune.batch_size is auto, but a training command has no provider "
        "default to fall back on; give a number");
  }
  return absl::OkStatus();
}

// The failure of a command as an attempt error: exit status and stderr tail.
absl::Status CommandFailure(std::string_view what, const SubprocessResult& r,
                            absl::Duration timeout) {
  std::string tail(absl::StripAsciiWhitespace(r.stderr_tail));
  if (tail.size() > kErrorTailBytes) tail = tail.substr(tail.size() - kErrorTailBytes);
  const std::string stderr_part = tail.empty() ? "" : absl::StrCat("; stderr tail:\n", tail);
  if (r.timed_out) {
    return absl::DeadlineExceededError(absl::StrCat("command backend: ", std::string(what),
                                                    " command timed out after ",
                                                    absl::FormatDuration(timeout), stderr_part));
  }
  const std::string how = r.signal != 0 ? absl::StrCat("was killed by signal ", r.signal)
                                        : absl::StrCat("exited with status ", r.exit_code);
  return absl::InternalError(
      absl::StrCat("command backend: ", std::string(what), " command ", how, stderr_part));
}

std::string LineId(const v1::QuestionSet& set, const v1::QaItem& item) {
  return absl::StrCat(datasets::QuestionTypeName(set.type()), "/", item.id());
}

// A task id as one path component.
std::string PathSafe(std::string_view id) {
  std::string out(id);
  for (char& c : out) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') c = '_';
  }
  return out;
}

}  // namespace

absl::StatusOr<CommandModelOptions> ParseCommandModelOptions(
    const google::protobuf::Struct& options) {
  for (const auto& [name, unused] : options.fields()) {
    bool known = false;
    for (std::string_view k : kOptionNames) known = known || k == name;
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat(
          "command backend: unknown model option \"", name,
          "\"; known: ", absl::StrJoin(std::begin(kOptionNames), std::end(kOptionNames), ", ")));
    }
  }
  CommandModelOptions o;
  FTB_ASSIGN_OR_RETURN(o.train, ReadString(options, "train", true));
  FTB_ASSIGN_OR_RETURN(o.answer, ReadString(options, "answer", false));
  if (auto it = options.fields().find("endpoint"); it != options.fields().end()) {
    if (it->second.kind_case() != google::protobuf::Value::kStructValue) {
      return OptionError("endpoint", "a map with base_url and model");
    }
    const google::protobuf::Struct& e = it->second.struct_value();
    for (const auto& [name, unused] : e.fields()) {
      if (name != "base_url" && name != "model" && name != "api_key_env" && name != "max_tokens") {
        return absl::InvalidArgumentError(absl::StrCat(
            "command backend: unknown option model.options.endpoint.", name,
            "; known: api_key_env, base_url, max_tokens, model"));
      }
    }
    CommandEndpoint endpoint;
    FTB_ASSIGN_OR_RETURN(endpoint.base_url, ReadString(e, "base_url", true));
    while (!endpoint.base_url.empty() && endpoint.base_url.back() == '/') {
      endpoint.base_url.pop_back();
    }
    if (!absl::StartsWith(endpoint.base_url, "http://") &&
        !absl::StartsWith(endpoint.base_url, "https://")) {
      return OptionError("endpoint.base_url", "an http:// or https:// URL");
    }
    FTB_ASSIGN_OR_RETURN(endpoint.model, ReadString(e, "model", true));
    FTB_ASSIGN_OR_RETURN(endpoint.api_key_env, ReadString(e, "api_key_env", false));
    if (auto mt = e.fields().find("max_tokens"); mt != e.fields().end()) {
      const double v = mt->second.kind_case() == google::protobuf::Value::kNumberValue
                           ? mt->second.number_value()
                           : -1;
      if (!(v >= 1 && v <= 4096) || v != std::floor(v)) {
        return OptionError("endpoint.max_tokens", "an integer in [1, 4096]");
      }
      endpoint.max_tokens = static_cast<int>(v);
    }
    o.endpoint = std::move(endpoint);
  }
  if (o.answer.empty() == !o.endpoint.has_value()) {
    return absl::InvalidArgumentError(
        o.answer.empty()
            ? "command backend: model.options: give `answer` (a command) or `endpoint` (an "
              "OpenAI-compatible server) to answer the questions"
            : "command backend: model.options: give `answer` or `endpoint`, not both");
  }
  FTB_ASSIGN_OR_RETURN(o.artifact_dir, ReadString(options, "artifact_dir", false));
  if (auto it = options.fields().find("snapshots"); it != options.fields().end()) {
    if (it->second.kind_case() != google::protobuf::Value::kBoolValue) {
      return OptionError("snapshots", "true or false");
    }
    o.snapshots = it->second.bool_value();
  }
  if (auto it = options.fields().find("format"); it != options.fields().end()) {
    if (it->second.kind_case() != google::protobuf::Value::kStringValue ||
        !datasets::ParseExportFormat(it->second.string_value())) {
      return OptionError("format", "\"openai\" or \"vertex\"");
    }
    o.format = it->second.string_value();
  }
  FTB_ASSIGN_OR_RETURN(o.timeout, ReadSeconds(options, "timeout_s", o.timeout));
  FTB_ASSIGN_OR_RETURN(o.answer_timeout,
                       ReadSeconds(options, "answer_timeout_s", o.answer_timeout));
  if (auto it = options.fields().find("env"); it != options.fields().end()) {
    if (it->second.kind_case() != google::protobuf::Value::kStructValue) {
      return OptionError("env", "a map of variable names to strings");
    }
    for (const auto& [k, v] : it->second.struct_value().fields()) {
      bool name_ok = !k.empty() && !absl::ascii_isdigit(static_cast<unsigned char>(k[0]));
      for (char c : k) name_ok = name_ok && (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_');
      if (!name_ok || v.kind_case() != google::protobuf::Value::kStringValue) {
        return OptionError(absl::StrCat("env.", k), "a variable name mapped to a string");
      }
      o.env[k] = v.string_value();
    }
  }
  return o;
}

bool CommandInheritsVariable(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "PATH",          "HOME",        "USER",         "LOGNAME",    "SHELL",
      "LANG",          "LANGUAGE",    "TZ",           "TERM",       "TMPDIR",
      "TMP",           "TEMP",        "LD_LIBRARY_PATH", "PYTHONPATH", "VIRTUAL_ENV",
      "CONDA_PREFIX",  "HF_HOME",     "XDG_CACHE_HOME", "OMP_NUM_THREADS"};
  static constexpr std::string_view kPrefixes[] = {"LC_", "CUDA_", "NVIDIA_", "ROCR_", "HIP_"};
  if (LooksLikeSecretName(name)) return false;
  for (std::string_view n : kNames) {
    if (name == n) return true;
  }
  for (std::string_view p : kPrefixes) {
    if (name.substr(0, p.size()) == p) return true;
  }
  return false;
}

absl::StatusOr<std::string> ExpandTemplate(std::string_view tmpl,
                                           const std::map<std::string, std::string>& values,
                                           std::string_view option_name, bool quote) {
  std::string out;
  for (size_t i = 0; i < tmpl.size(); ++i) {
    const char c = tmpl[i];
    if (c == '{' && i + 1 < tmpl.size() && tmpl[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    if (c == '}' && i + 1 < tmpl.size() && tmpl[i + 1] == '}') {
      out += '}';
      ++i;
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    const size_t close = tmpl.find('}', i);
    if (close == std::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "command backend: model.options.", std::string(option_name),
          ": unclosed '{' at offset ", i, " (write {{ for a literal brace)"));
    }
    const std::string name(tmpl.substr(i + 1, close - i - 1));
    auto it = values.find(name);
    if (it == values.end()) {
      std::vector<std::string> known;
      for (const auto& [k, unused] : values) known.push_back(absl::StrCat("{", k, "}"));
      return absl::InvalidArgumentError(absl::StrCat(
          "command backend: model.options.", std::string(option_name), ": unknown placeholder {",
          name, "}; known: ", absl::StrJoin(known, " ")));
    }
    out += quote ? ShellQuote(it->second) : it->second;
    i = close;
  }
  return out;
}

CommandBackend::CommandBackend(std::string artifact_dir) : artifact_dir_(std::move(artifact_dir)) {}

std::unique_ptr<CommandBackend> CommandBackend::Create(const BackendOptions& options) {
  auto it = options.params.find("artifact_dir");
  if (it != options.params.end() && !it->second.empty()) {
    return std::make_unique<CommandBackend>(it->second);
  }
  const char* env = std::getenv("FTB_ARTIFACT_DIR");
  return std::make_unique<CommandBackend>(env && *env ? env : kDefaultArtifactDir);
}

absl::StatusOr<v1::TaskResult> CommandBackend::Run(const v1::TaskAssignment& task,
                                                   TaskContext& ctx) {
  FTB_RETURN_IF_ERROR(ValidateWork(task));
  const v1::TuneWork& work = task.tune();
  FTB_ASSIGN_OR_RETURN(const CommandModelOptions options,
                       ParseCommandModelOptions(work.model().options()));
  // Templates are checked before anything runs.
  const std::map<std::string, std::string> train_names = {
      {"train_jsonl", ""}, {"epochs", ""},  {"snapshot_epochs", ""}, {"learning_rate_multiplier", ""},
      {"batch_size", ""},  {"seed", ""},    {"base_model", ""},      {"artifact_dir", ""},
      {"dataset", ""}};
  const std::map<std::string, std::string> answer_names = {
      {"model_dir", ""}, {"questions_jsonl", ""}, {"answers_jsonl", ""},
      {"epochs", ""},    {"base_model", ""},      {"seed", ""}};
  FTB_RETURN_IF_ERROR(ExpandTemplate(options.train, train_names, "train").status());
  if (work.epochs(0) == 0 && !options.endpoint) {
    return absl::InvalidArgumentError(
        "command backend: epochs 0 (the base model) needs model.options.endpoint to ask the "
        "untuned model; an answering command needs a trained model");
  }
  if (options.endpoint) {
    FTB_RETURN_IF_ERROR(ExpandTemplate(options.endpoint->model, answer_names, "endpoint.model",
                                       /*quote=*/false)
                            .status());
  } else {
    FTB_RETURN_IF_ERROR(ExpandTemplate(options.answer, answer_names, "answer").status());
  }
  std::unique_ptr<providers::OpenAiClient> client;
  if (options.endpoint) {
    providers::OpenAiClientOptions co;
    co.base_url = options.endpoint->base_url;
    co.provider = "command-endpoint";
    if (!options.endpoint->api_key_env.empty()) {
      const char* key = std::getenv(options.endpoint->api_key_env.c_str());
      if (key == nullptr || *key == '\0') {
        return absl::FailedPreconditionError(absl::StrCat(
            "command backend: model.options.endpoint.api_key_env: $",
            options.endpoint->api_key_env, " is not set on this worker"));
      }
      co.api_key = key;
    }
    client = std::make_unique<providers::OpenAiClient>(std::move(co),
                                                       providers::NewCurlTransport());
  }

  FTB_ASSIGN_OR_RETURN(const v1::Dataset dataset, datasets::LoadDataset(work.dataset()));
  if (ctx.cancelled()) return absl::CancelledError("command backend: cancelled");
  const std::string train_jsonl =
      datasets::ExportTrainingJsonl(dataset, *datasets::ParseExportFormat(options.format));

  // Distinct epoch counts, ascending.
  std::vector<uint32_t> epochs;
  for (uint32_t e : work.epochs()) {
    if (epochs.empty() || epochs.back() != e) epochs.push_back(e);
  }
  const fs::path root = options.artifact_dir.empty() ? artifact_dir_ : options.artifact_dir;
  std::error_code error;
  fs::create_directories(root, error);
  if (error) {
    return absl::FailedPreconditionError(absl::StrCat(
        "command backend: cannot create artifact directory ", root.string(), ": ",
        error.message()));
  }
  const std::vector<std::pair<std::string, std::string>> env(options.env.begin(),
                                                             options.env.end());
  const auto log_line = [&ctx](std::string_view prefix) {
    return [&ctx, prefix = std::string(prefix)](std::string_view line, bool from_stderr) {
      ctx.Log(absl::StrCat(prefix, from_stderr ? " stderr: " : ": ", std::string(line)));
    };
  };
  const auto cancelled = [&ctx] { return ctx.cancelled(); };

  // One training run: to `run_epochs` (a list of one, or every snapshot).
  // Returns the model directory.
  const auto train = [&](const std::vector<uint32_t>& run_epochs) -> absl::StatusOr<fs::path> {
    const uint32_t last = run_epochs.back();
    Sha256 key;
    key.UpdateField(kKeyVersion);
    key.UpdateField(datasets::DatasetFingerprint(dataset));
    key.UpdateField(work.model().name());
    key.UpdateField(options.train);
    key.UpdateField(options.format);
    for (const auto& [k, v] : options.env) key.UpdateField(absl::StrCat(k, "=", v));
    key.UpdateField(absl::StrFormat("%.17g", work.learning_rate_multiplier()));
    key.UpdateField(absl::StrCat(work.batch_size()));
    key.UpdateField(absl::StrCat(work.seed()));
    key.UpdateField(options.snapshots ? absl::StrJoin(run_epochs, ",") : absl::StrCat(last));
    const fs::path dir = root / DigestHex(key.Finish());
    if (fs::exists(dir / kCompleteMarker)) {
      reuses_.fetch_add(1);
      ctx.Log(absl::StrCat("command: reusing trained model ", dir.string()));
      return dir;
    }
    static std::atomic<uint64_t> counter{0};
    const fs::path temp =
        absl::StrCat(dir.string(), ".tmp.", ::getpid(), ".", counter.fetch_add(1));
    fs::create_directories(temp, error);
    if (error) {
      return absl::InternalError(
          absl::StrCat("command backend: cannot create ", temp.string(), ": ", error.message()));
    }
    const fs::path data = temp / "train.jsonl";
    FTB_RETURN_IF_ERROR(WriteFileAtomically(data, train_jsonl));
    std::map<std::string, std::string> values = {
        {"train_jsonl", data.string()},
        {"epochs", absl::StrCat(last)},
        {"snapshot_epochs", absl::StrJoin(run_epochs, ",")},
        {"learning_rate_multiplier", absl::StrFormat("%g", work.learning_rate_multiplier())},
        {"batch_size", absl::StrCat(work.batch_size())},
        {"seed", absl::StrCat(work.seed())},
        {"base_model", work.model().name()},
        {"artifact_dir", temp.string()},
        {"dataset", dataset.name()}};
    SubprocessOptions run;
    FTB_ASSIGN_OR_RETURN(run.command, ExpandTemplate(options.train, values, "train"));
    run.env = env;
    run.inherit_env = CommandInheritsVariable;  // never the worker's token or keys
    run.timeout = options.timeout;
    run.cancelled = cancelled;
    run.on_line = log_line("train");
    trainings_.fetch_add(1);
    ctx.Log(absl::StrCat("command: training to epoch ", last, ": ", run.command));
    FTB_ASSIGN_OR_RETURN(const SubprocessResult r, RunSubprocess(run));
    const auto cleanup = [&] { fs::remove_all(temp, error); };
    if (r.cancelled) {
      cleanup();
      return absl::CancelledError("command backend: cancelled");
    }
    if (!r.ok()) {
      cleanup();
      return CommandFailure("training", r, options.timeout);
    }
    if (options.snapshots) {
      for (uint32_t e : run_epochs) {
        if (!fs::is_directory(temp / absl::StrCat("epoch-", e))) {
          cleanup();
          return absl::InternalError(absl::StrCat(
              "command backend: model.options.snapshots is true but the training command did not "
              "create {artifact_dir}/epoch-",
              e, "/ (snapshot_epochs ", absl::StrJoin(run_epochs, ","), ")"));
        }
      }
    }
    FTB_RETURN_IF_ERROR(WriteFileAtomically(temp / kCompleteMarker, run.command + "\n"));
    fs::rename(temp, dir, error);
    if (error) {
      // Another worker finished the same model first: use theirs.
      cleanup();
      if (!fs::exists(dir / kCompleteMarker)) {
        return absl::InternalError(absl::StrCat("command backend: cannot rename ", temp.string(),
                                                " to ", dir.string(), ": ", error.message()));
      }
    }
    ctx.Log(absl::StrFormat("command: trained in %.1f s into %s", r.seconds, dir.string()));
    return dir;
  };

  // Questions in dataset order, written once.
  struct Question {
    const v1::QuestionSet* set;
    const v1::QaItem* item;
  };
  std::vector<Question> questions;
  std::string questions_jsonl;
  for (const v1::QuestionSet& set : dataset.tests()) {
    for (const v1::QaItem& item : set.items()) {
      questions.push_back({&set, &item});
      // Ids repeat across question types (a rephrased question keeps the id
      // of the one it rephrases), so the file's id carries the type too.
      nlohmann::json line = {{"id", LineId(set, item)},
                             {"type", datasets::QuestionTypeName(set.type())},
                             {"prompt", item.prompt()}};
      absl::StrAppend(&questions_jsonl,
                      line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "\n");
    }
  }

  v1::TaskResult result;
  for (const std::string& cell_id : work.cell_ids()) result.add_answers()->set_cell_id(cell_id);
  // Fills the cells of `epoch` from answers keyed by LineId.
  const auto FillCells = [&](uint32_t epoch,
                             const std::map<std::string, std::string>& answers) -> absl::Status {
    size_t missing = 0;
    for (int c = 0; c < work.cell_ids_size(); ++c) {
      if (work.epochs(c) != epoch) continue;
      v1::CellAnswers* cell = result.mutable_answers(c);
      for (const Question& q : questions) {
        v1::JudgeItem* out = cell->add_items();
        out->set_cell_id(cell->cell_id());
        out->set_question_type(datasets::QuestionTypeName(q.set->type()));
        out->set_question_id(q.item->id());
        out->set_prompt(q.item->prompt());
        out->set_reference(q.item->answer());
        out->set_answer_before(q.item->answer_before());
        out->set_context(q.item->context());
        auto it = answers.find(LineId(*q.set, *q.item));
        if (it == answers.end()) {
          out->set_unavailable_reason(client ? "the endpoint gave no answer" : "the answering command gave no answer");
          ++missing;
        } else {
          out->set_answer(std::string(absl::StripAsciiWhitespace(it->second)));
        }
      }
    }
    if (missing > 0) {
      result.add_notes(absl::StrCat("epoch ", epoch, ": ", missing,
                                    client ? " question(s) without an answer from the endpoint" : " question(s) without an answer from the answering command"));
    }
    return absl::OkStatus();
  };
  // Asks the endpoint every question with the model named by the template.
  // At epochs 0 the untuned model, served under the model's own name.
  const auto AskEndpoint = [&](providers::OpenAiClient& c, const CommandEndpoint& endpoint,
                               const std::map<std::string, std::string>& values, uint32_t epoch)
      -> absl::StatusOr<std::map<std::string, std::string>> {
    std::string model = work.model().name();
    if (epoch > 0) {
      FTB_ASSIGN_OR_RETURN(model,
                           ExpandTemplate(endpoint.model, values, "endpoint.model", false));
    }
    ctx.Log(absl::StrCat("command: answering through ", endpoint.base_url, " with model ", model));
    const providers::Sleeper sleep = [&ctx](absl::Duration d) { return ctx.SleepFor(d); };
    std::map<std::string, std::string> answers;
    for (const Question& q : questions) {
      if (ctx.cancelled()) return absl::CancelledError("command backend: cancelled");
      nlohmann::json request = {
          {"model", model},
          {"messages", nlohmann::json::array({{{"role", "user"}, {"content", q.item->prompt()}}})},
          {"temperature", 0},
          {"seed", static_cast<int64_t>(work.seed() % 2147483648ULL)},
          {"max_tokens", endpoint.max_tokens}};
      const double estimate =
          static_cast<double>(q.item->prompt().size() / 4 + endpoint.max_tokens + 10);
      absl::StatusOr<nlohmann::json> reply = c.ChatCompletion(request, estimate, sleep);
      if (!reply.ok()) {
        return absl::Status(reply.status().code(),
                            absl::StrCat("command backend: endpoint ", endpoint.base_url, ": ",
                                         reply.status().message()));
      }
      const nlohmann::json& choices = (*reply)["choices"];
      if (!choices.is_array() || choices.empty() || !choices[0].is_object() ||
          !choices[0].contains("message") || !choices[0]["message"].is_object()) {
        return absl::InternalError(absl::StrCat("command backend: endpoint ", endpoint.base_url,
                                                ": a chat completion without choices"));
      }
      const nlohmann::json& content = choices[0]["message"]["content"];
      if (content.is_string()) answers[LineId(*q.set, *q.item)] = content.get<std::string>();
    }
    return answers;
  };
  // Answers with the model in `model_dir` into the cells of `epoch`.
  const auto answer = [&](uint32_t epoch, const fs::path& model_dir) -> absl::Status {
    const fs::path scratch = root / absl::StrCat("answers.", PathSafe(task.task_id()), ".",
                                                 task.attempt(), ".", epoch, ".", ::getpid());
    fs::create_directories(scratch, error);
    absl::Cleanup remove_scratch = [&scratch] {
      std::error_code ignored;
      fs::remove_all(scratch, ignored);
    };
    const fs::path qpath = scratch / "questions.jsonl";
    const fs::path apath = scratch / "answers.jsonl";
    FTB_RETURN_IF_ERROR(WriteFileAtomically(qpath, questions_jsonl));
    fs::remove(apath, error);
    std::map<std::string, std::string> values = {
        {"model_dir", model_dir.string()}, {"questions_jsonl", qpath.string()},
        {"answers_jsonl", apath.string()}, {"epochs", absl::StrCat(epoch)},
        {"base_model", work.model().name()}, {"seed", absl::StrCat(work.seed())}};
    if (client) {
      FTB_ASSIGN_OR_RETURN(const auto asked,
                           AskEndpoint(*client, *options.endpoint, values, epoch));
      return FillCells(epoch, asked);
    }
    SubprocessOptions run;
    FTB_ASSIGN_OR_RETURN(run.command, ExpandTemplate(options.answer, values, "answer"));
    run.env = env;
    run.inherit_env = CommandInheritsVariable;  // never the worker's token or keys
    run.timeout = options.answer_timeout;
    run.cancelled = cancelled;
    run.on_line = log_line("answer");
    ctx.Log(absl::StrCat("command: answering with epoch ", epoch, ": ", run.command));
    FTB_ASSIGN_OR_RETURN(const SubprocessResult r, RunSubprocess(run));
    if (r.cancelled) return absl::CancelledError("command backend: cancelled");
    if (!r.ok()) return CommandFailure("answering", r, options.answer_timeout);
    std::ifstream in(apath);
    if (!in) {
      return absl::InternalError(absl::StrCat(
          "command backend: the answering command exited 0 but wrote no ", apath.string()));
    }
    std::map<std::string, std::string> answers;
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      if (absl::StripAsciiWhitespace(line).empty()) continue;
      nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (!j.is_object() || !j.contains("id") || !j["id"].is_string() || !j.contains("answer") ||
          !(j["answer"].is_string() || j["answer"].is_null())) {
        return absl::InvalidArgumentError(absl::StrCat(
            "command backend: ", apath.string(), ":", n,
            ": expected {\"id\": string, \"answer\": string}, got ", line.substr(0, 200)));
      }
      answers[j["id"].get<std::string>()] = j["answer"].is_null() ? "" : j["answer"].get<std::string>();
    }
    return FillCells(epoch, answers);
  };

  // Epochs 0 first: the base model, through the endpoint, nothing trained.
  if (epochs.front() == 0) {
    ctx.Log("command: epochs 0: asking the base model; no training command for it");
    FTB_RETURN_IF_ERROR(answer(0, fs::path()));
    epochs.erase(epochs.begin());
  }
  if (epochs.empty()) {
    // Nothing else to do: no training run at all.
  } else if (options.snapshots) {
    FTB_ASSIGN_OR_RETURN(const fs::path dir, train(epochs));
    for (size_t i = 0; i < epochs.size(); ++i) {
      if (ctx.cancelled()) return absl::CancelledError("command backend: cancelled");
      FTB_RETURN_IF_ERROR(answer(epochs[i], dir / absl::StrCat("epoch-", epochs[i])));
      ctx.SetProgress(double(i + 1) / double(epochs.size()), "answered");
    }
  } else {
    for (size_t i = 0; i < epochs.size(); ++i) {
      if (ctx.cancelled()) return absl::CancelledError("command backend: cancelled");
      FTB_ASSIGN_OR_RETURN(const fs::path dir, train({epochs[i]}));
      FTB_RETURN_IF_ERROR(answer(epochs[i], dir));
      ctx.SetProgress(double(i + 1) / double(epochs.size()), "trained and answered");
    }
  }

  Sha256 digest;
  digest.UpdateField(kKeyVersion);
  for (const v1::CellAnswers& cell : result.answers()) {
    digest.UpdateField(cell.cell_id());
    for (const v1::JudgeItem& item : cell.items()) {
      digest.UpdateField(item.question_id());
      digest.UpdateField(item.answer());
      digest.UpdateField(item.unavailable_reason());
    }
  }
  result.set_digest(DigestHex(digest.Finish()));
  result.set_cost_usd(0);
  return result;
}

absl::Status RegisterCommandBackend(BackendRegistry& registry) {
  return registry.Register(
      CommandBackend::kName,
      [](const BackendOptions& options) -> absl::StatusOr<std::unique_ptr<TuningBackend>> {
        return CommandBackend::Create(options);
      },
      [](const google::protobuf::Struct& s) { return ParseCommandModelOptions(s).status(); });
}

}  // namespace ftb::workers
