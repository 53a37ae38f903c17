// Campaign spec parser: YAML (yaml-cpp) -> ftb::v1::CampaignSpec.
//
// Structure: a Parser walks the document top-down. Every value it looks at
// is a Field (node + field path + source position), so every error can name
// the file, line, column and field. The walk stops at the first error.
// docs/spec.md is the user-facing description of the format; keep the two in
// sync.
#include "spec/spec.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "common/secret_names.h"
#include "common/status_macros.h"
#include "ftb/v1/dataset.pb.h"
#include "google/protobuf/struct.pb.h"
#include "yaml-cpp/yaml.h"

namespace ftb::spec {
namespace {

using google::protobuf::ListValue;
using google::protobuf::Struct;
using google::protobuf::Value;

// ---------------------------------------------------------------------------
// Vocabulary. Each list is the single place its values are defined.

// Tuning backends a model may name. Adding a backend here is all the spec
// needs; the backend factory (workers/) resolves the name.
constexpr std::array<absl::string_view, 7> kBackends = {
    "local", "replay", "openai", "vertex", "together", "command", "test"};

constexpr std::array<absl::string_view, 3> kGraderKinds = {"rules", "llm", "paper"};

constexpr std::array<absl::string_view, 2> kSources = {"builtin", "finetunebench"};

struct BuiltinDataset {
  absl::string_view name;
  uint32_t default_size;
};
constexpr std::array<BuiltinDataset, 2> kBuiltinDatasets = {{
    {"people", 25},
    {"updates", 40},
}};
constexpr uint32_t kMaxBuiltinSize = 10000;

constexpr std::array<absl::string_view, 4> kFineTuneBenchDatasets = {
    "latest_news", "fictional_people", "medical", "coding"};

constexpr uint32_t kMaxEpochs = 1000;

// What each backend can do with the grid's special values (docs/spec.md,
// "Base model and auto"): evaluate the untuned model at epochs 0, and send
// nothing for an `auto` learning rate multiplier or batch size so that the
// provider picks. The backends themselves enforce the same at run time.
struct BackendAbilities {
  absl::string_view backend;
  // Epochs 0: "yes", "no", or the name of a model option it needs.
  absl::string_view base_model;
  // Why epochs 0 is refused (base_model "no" or the option missing).
  absl::string_view base_model_why;
  bool accepts_auto;
  absl::string_view auto_why;
};
constexpr std::array<BackendAbilities, 7> kBackendAbilities = {{
    {"local", "yes", "", false,
     "the local trainer has no provider default to pick; give numbers"},
    {"replay", "no",
     "the recorded responses are of fine-tuned models only; there is no base-model (epochs 0) "
     "column to replay",
     true, ""},
    {"openai", "yes", "", true, ""},
    {"vertex", "yes", "", true, ""},
    {"together", "yes", "", true, ""},
    {"command", "endpoint",
     "epochs 0 asks the base model through options.endpoint; an answering command needs a "
     "trained model",
     false, "your training command has no provider default to pick; give numbers"},
    {"test", "yes", "", true, ""},
}};

const BackendAbilities* AbilitiesOf(absl::string_view backend) {
  for (const BackendAbilities& a : kBackendAbilities) {
    if (a.backend == backend) return &a;
  }
  return nullptr;
}

// Keys of each mapping, in the order docs/spec.md lists them.
constexpr std::array<absl::string_view, 9> kTopKeys = {
    "name", "description", "datasets", "models", "grid", "judge", "budget", "retry", "limits"};
constexpr std::array<absl::string_view, 9> kDatasetKeys = {
    "source", "name",  "path",           "size",      "seed",
    "question_types",  "label", "evaluation_only", "comparison"};
// `comparison:` values; "all" is stored as "".
constexpr std::array<absl::string_view, 2> kComparisonValues = {"all", "paper"};
// The spelling of "let the provider choose" on the learning rate and batch
// size axes; stored as 0.
constexpr absl::string_view kAuto = "auto";
constexpr std::array<absl::string_view, 4> kAxisKeys = {"epochs", "learning_rate_multiplier",
                                                        "batch_size", "seed"};
constexpr std::array<absl::string_view, 7> kModelKeys = {
    "name", "backend", "options", "epochs", "learning_rate_multiplier", "batch_size", "seed"};
constexpr std::array<absl::string_view, 3> kJudgeKeys = {"grader", "graders", "batch_size"};
constexpr std::array<absl::string_view, 3> kGraderKeys = {"kind", "name", "options"};
constexpr std::array<absl::string_view, 2> kBudgetKeys = {"usd", "per_cell_usd"};
constexpr std::array<absl::string_view, 6> kRetryKeys = {"max_attempts",
                                                         "initial_backoff_seconds",
                                                         "max_backoff_seconds",
                                                         "backoff_multiplier",
                                                         "jitter",
                                                         "lease_seconds"};
constexpr std::array<absl::string_view, 4> kLimitKeys = {
    "max_concurrent_tune", "max_concurrent_judge", "requests_per_minute", "tokens_per_minute"};

// Defaults (docs/spec.md, "Defaults").
constexpr uint32_t kDefaultEpochs = 1;
constexpr double kDefaultLearningRateMultiplier = 1.0;
constexpr uint32_t kDefaultBatchSize = 1;
constexpr uint64_t kDefaultSeed = 0;
constexpr uint32_t kDefaultJudgeBatchSize = 100;
constexpr uint32_t kDefaultMaxAttempts = 3;
constexpr double kDefaultInitialBackoffSeconds = 1;
constexpr double kDefaultMaxBackoffSeconds = 60;
constexpr double kDefaultBackoffMultiplier = 2;
constexpr double kDefaultJitter = 0.2;
constexpr double kDefaultLeaseSeconds = 60;
// Accepted ranges of the retry durations, in seconds (docs/spec.md). A lease
// shorter than half a second cannot survive one slow heartbeat round trip;
// longer than a day only delays noticing a dead worker (heartbeats extend a
// lease, so long jobs do not need long leases). Backoffs from 1 ms (tests) to
// a day; the multiplier to 1000. Out-of-range values (1e-300, 1e300) would
// overflow the millisecond arithmetic of the scheduler.
constexpr double kMinLeaseSeconds = 0.5;
constexpr double kMaxLeaseSeconds = 86400;
constexpr double kMinBackoffSeconds = 0.001;
constexpr double kMaxBackoffSeconds = 86400;
constexpr double kMaxBackoffMultiplier = 1000;

constexpr absl::string_view kNamePattern = "[A-Za-z0-9._-]+";
constexpr absl::string_view kRootPath = "(document)";
constexpr size_t kMaxShownScalar = 80;
constexpr size_t kMaxOptionValues = 100000;

// Question type names derived from the proto enum ("memorization", ...), so a
// new QuestionType is accepted without touching this file.
const std::vector<std::string>& QuestionTypeNames() {
  static const std::vector<std::string>* const names = [] {
    auto* out = new std::vector<std::string>();
    const google::protobuf::EnumDescriptor* d = v1::QuestionType_descriptor();
    constexpr absl::string_view kPrefix = "QUESTION_TYPE_";
    for (int i = 0; i < d->value_count(); ++i) {
      const google::protobuf::EnumValueDescriptor* v = d->value(i);
      if (v->number() == v1::QUESTION_TYPE_UNSPECIFIED) continue;
      std::string name = v->name();
      if (absl::StartsWith(name, kPrefix)) name.erase(0, kPrefix.size());
      out->push_back(absl::AsciiStrToLower(name));
    }
    return out;
  }();
  return *names;
}

template <typename Container>
std::string OneOf(const Container& values) {
  return absl::StrCat("one of [", absl::StrJoin(values, ", "), "]");
}

template <typename Container>
bool Contains(const Container& values, absl::string_view v) {
  return std::find(std::begin(values), std::end(values), v) != std::end(values);
}

template <typename Container, typename T>
bool HasValue(const Container& values, T v) {
  return std::find(std::begin(values), std::end(values), v) != std::end(values);
}

bool IsName(absl::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

// Control characters (terminal escape codes among them) as \xNN, so an
// error message never drives the terminal it is printed on. Idempotent on
// Quote()'s output, which has none left.
std::string EscapeControl(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out += absl::StrFormat("\\x%02x", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  return out;
}

// "...": the scalar as the user sees it, escaped and shortened.
std::string Quote(absl::string_view s) {
  std::string out = "\"";
  size_t shown = 0;
  for (char c : s) {
    if (shown == kMaxShownScalar) {
      out += "...";
      break;
    }
    ++shown;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        // Other control characters (ESC of terminal escape codes, BEL, DEL)
        // as \xNN: an error message must not drive the user's terminal.
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          out += absl::StrFormat("\\x%02x", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
  out += "\"";
  return out;
}

// What the user wrote, for the "got" part of an error.
std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return Quote(node.Scalar());
    case YAML::NodeType::Sequence:
      return node.size() == 0 ? "an empty list" : "a list";
    case YAML::NodeType::Map:
      return node.size() == 0 ? "an empty mapping" : "a mapping";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

// A scalar the user quoted or tagged !!str: always a string, never a number.
bool IsStringTagged(const YAML::Node& node) {
  return node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str";
}

bool AllDigits(absl::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// YAML 1.2 core schema decimal integer: [-+]?[0-9]+.
bool IsIntegerText(absl::string_view s) {
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  return AllDigits(s);
}

// YAML 1.2 core schema float (finite forms only):
// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool IsNumberText(absl::string_view s) {
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  size_t i = 0;
  size_t int_digits = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++int_digits;
  size_t frac_digits = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++frac_digits;
  }
  if (int_digits == 0 && frac_digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    if (!AllDigits(s.substr(i))) return false;
    i = s.size();
  }
  return i == s.size();
}

std::optional<double> ParseDouble(absl::string_view s) {
  if (!IsNumberText(s)) return std::nullopt;
  if (s[0] == '+') s.remove_prefix(1);
  double v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || !std::isfinite(v)) {
    return std::nullopt;
  }
  return v;
}

// The value of an unquoted non-negative decimal integer scalar that fits in
// 64 bits; nullopt for anything else (including "-0").
std::optional<uint64_t> PlainUint(const YAML::Node& node) {
  if (!node.IsScalar() || IsStringTagged(node)) return std::nullopt;
  absl::string_view s = node.Scalar();
  if (!IsIntegerText(s) || s[0] == '-') return std::nullopt;
  if (s[0] == '+') s.remove_prefix(1);
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

bool IsBoolText(absl::string_view s, bool* value) {
  if (s == "true" || s == "True" || s == "TRUE") {
    *value = true;
    return true;
  }
  if (s == "false" || s == "False" || s == "FALSE") {
    *value = false;
    return true;
  }
  return false;
}

void SetRetryDefaults(v1::RetryPolicy* retry) {
  retry->set_max_attempts(kDefaultMaxAttempts);
  retry->set_initial_backoff_seconds(kDefaultInitialBackoffSeconds);
  retry->set_max_backoff_seconds(kDefaultMaxBackoffSeconds);
  retry->set_backoff_multiplier(kDefaultBackoffMultiplier);
  retry->set_jitter(kDefaultJitter);
  retry->set_lease_seconds(kDefaultLeaseSeconds);
}

std::string ChildPath(absl::string_view parent, absl::string_view key) {
  if (parent.empty() || parent == kRootPath) return std::string(key);
  return absl::StrCat(parent, ".", key);
}

std::string IndexPath(absl::string_view parent, size_t index) {
  return absl::StrCat(parent, "[", index, "]");
}

// A node with the path and position errors about it should name.
struct Field {
  YAML::Node node;
  std::string path;
  YAML::Mark mark;
};

Field ElementField(const Field& list, const YAML::Node& element, size_t index) {
  YAML::Mark mark = element.Mark();
  if (mark.is_null()) mark = list.mark;
  return Field{element, IndexPath(list.path, index), mark};
}

// The checked keys of one YAML mapping, in document order.
class Mapping {
 public:
  struct Entry {
    std::string key;
    Field key_field;  // The key node itself, path = the value's path.
    Field value;
  };

  explicit Mapping(Field self) : self_(std::move(self)) {}

  void Add(std::string key, Field key_field, Field value) {
    entries_.push_back(Entry{std::move(key), std::move(key_field), std::move(value)});
  }
  const std::vector<Entry>& entries() const { return entries_; }

  const Field* Find(absl::string_view key) const {
    for (const Entry& e : entries_) {
      if (e.key == key) return &e.value;
    }
    return nullptr;
  }

  // A stand-in for a required key that is absent: no node ("nothing"),
  // positioned at the mapping.
  Field Missing(absl::string_view key) const {
    return Field{YAML::Node(YAML::NodeType::Null), ChildPath(self_.path, key), self_.mark};
  }

  // The key's field, or Missing(key).
  Field Get(absl::string_view key) const {
    const Field* f = Find(key);
    return f != nullptr ? *f : Missing(key);
  }

 private:
  Field self_;
  std::vector<Entry> entries_;
};

class Parser {
 public:
  Parser(absl::string_view filename, const EnvLookup& env) : filename_(filename), env_(env) {}

  absl::StatusOr<v1::CampaignSpec> Parse(absl::string_view yaml);

 private:
  // ----- errors -----
  absl::Status ErrorAt(const YAML::Mark& mark, absl::string_view path,
                       absl::string_view message) const {
    int line = mark.is_null() ? 1 : mark.line + 1;
    int column = mark.is_null() ? 1 : mark.column + 1;
    return absl::InvalidArgumentError(
        absl::StrCat(filename_, ":", line, ":", column, ": ", EscapeControl(path), ": ",
                     EscapeControl(message)));
  }
  absl::Status Expected(const Field& f, absl::string_view expected, absl::string_view got) const {
    return ErrorAt(f.mark, f.path, absl::StrCat("expected ", expected, ", got ", got));
  }
  absl::Status Expected(const Field& f, absl::string_view expected) const {
    return Expected(f, expected, Describe(f.node));
  }

  // ----- structure -----
  absl::StatusOr<Mapping> ReadMapping(const Field& f, std::span<const absl::string_view> keys,
                                      absl::string_view expected) const;
  // Any string keys (options mappings).
  absl::StatusOr<Mapping> ReadFreeMapping(const Field& f, absl::string_view expected) const;
  absl::StatusOr<Mapping> ReadMappingImpl(const Field& f,
                                          std::optional<std::span<const absl::string_view>> keys,
                                          absl::string_view expected) const;

  // ----- scalars -----
  absl::StatusOr<std::string> Expand(const Field& f, absl::string_view raw) const;
  absl::StatusOr<std::string> ReadString(const Field& f, absl::string_view expected) const;
  // A string matching kNamePattern.
  absl::StatusOr<std::string> ReadName(const Field& f) const;
  // One of `values`; the error lists them.
  template <typename Container>
  absl::StatusOr<std::string> ReadEnum(const Field& f, const Container& values) const;
  // An integer in [min, max]; `expected` describes the range.
  absl::StatusOr<uint64_t> ReadUint(const Field& f, uint64_t min, uint64_t max,
                                    absl::string_view expected) const;
  // A finite number accepted by `ok`; `expected` describes the range.
  template <typename Pred>
  absl::StatusOr<double> ReadNumber(const Field& f, Pred ok, absl::string_view expected) const;

  // ----- values -----
  // Free-form options -> google.protobuf.Struct. `ancestors` holds the
  // collections enclosing `f`, to reject an alias that contains itself.
  absl::StatusOr<Struct> ReadOptions(const Field& f) const;
  absl::StatusOr<Struct> ToStruct(const Field& f, std::vector<YAML::Node>& ancestors) const;
  absl::StatusOr<Value> ToValue(const Field& f, std::vector<YAML::Node>& ancestors) const;
  absl::Status ReadAxes(const Mapping& m, v1::GridAxes* axes) const;
  // Integers in [min, max]; with allow_auto, also `auto`, stored as 0.
  absl::Status ReadUintAxis(const Field& f, uint64_t min, uint64_t max,
                            absl::string_view expected, absl::string_view expected_range,
                            google::protobuf::RepeatedField<uint32_t>* out32,
                            google::protobuf::RepeatedField<uint64_t>* out64,
                            bool allow_auto = false) const;
  // Positive numbers or `auto` (stored as 0).
  absl::Status ReadDoubleAxis(const Field& f, google::protobuf::RepeatedField<double>* out) const;
  // The checks of kBackendAbilities over the parsed spec: `models` and
  // `grid` are the fields they were read from (grid may be absent).
  absl::Status CheckBackendAbilities(const v1::CampaignSpec& spec, const Field& models,
                                     const Field* grid, const Field& datasets) const;
  // Checks `f` is a scalar or a non-empty list of scalars; returns the
  // element fields.
  absl::StatusOr<std::vector<Field>> AxisElements(const Field& f, absl::string_view expected) const;

  // `*label_at` = the field that gives the label (label, else name).
  absl::Status ReadDataset(const Field& f, v1::DatasetSpec* out, Field* label_at) const;
  absl::Status ReadModel(const Field& f, v1::ModelSpec* out) const;
  absl::Status ReadJudge(const Field& f, v1::JudgeSpec* out) const;
  // `*name_at` = the field that names the grader (name, else kind).
  absl::Status ReadGrader(const Field& f, v1::GraderSpec* out, Field* name_at) const;
  absl::Status ReadBudget(const Field& f, v1::BudgetSpec* out) const;
  absl::Status ReadRetry(const Field& f, v1::RetryPolicy* out) const;
  absl::Status ReadLimits(const Field& f,
                          google::protobuf::Map<std::string, v1::BackendLimits>* out) const;

  std::string filename_;
  const EnvLookup& env_;
  // Values converted into options so far (all models and graders), against
  // kMaxOptionValues: aliases can otherwise blow a small file up
  // exponentially.
  mutable size_t option_values_ = 0;
};

absl::StatusOr<Mapping> Parser::ReadMapping(const Field& f, std::span<const absl::string_view> keys,
                                            absl::string_view expected) const {
  return ReadMappingImpl(f, keys, expected);
}

absl::StatusOr<Mapping> Parser::ReadFreeMapping(const Field& f, absl::string_view expected) const {
  return ReadMappingImpl(f, std::nullopt, expected);
}

absl::StatusOr<Mapping> Parser::ReadMappingImpl(
    const Field& f, std::optional<std::span<const absl::string_view>> keys,
    absl::string_view expected) const {
  if (!f.node.IsMap()) return Expected(f, expected);
  Mapping m(f);
  for (auto it = f.node.begin(); it != f.node.end(); ++it) {
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    YAML::Mark key_mark = key.Mark().is_null() ? f.mark : key.Mark();
    if (!key.IsScalar()) {
      return Expected(Field{key, f.path, key_mark}, "a string key");
    }
    const std::string& name = key.Scalar();
    std::string path = ChildPath(f.path, name);
    Field key_field{key, path, key_mark};
    if (keys.has_value() && !Contains(*keys, name)) {
      return Expected(key_field,
                      absl::StrCat("one of the keys [", absl::StrJoin(*keys, ", "), "]"));
    }
    if (m.Find(name) != nullptr) {
      return Expected(key_field, "each key once", absl::StrCat(Quote(name), " twice"));
    }
    // An empty value (`key:`) has no useful position of its own; point at
    // its key instead.
    YAML::Mark value_mark = (value.IsNull() || value.Mark().is_null()) ? key_mark : value.Mark();
    m.Add(name, std::move(key_field), Field{value, std::move(path), value_mark});
  }
  return m;
}

absl::StatusOr<std::string> Parser::Expand(const Field& f, absl::string_view raw) const {
  std::string out;
  out.reserve(raw.size());
  size_t i = 0;
  while (i < raw.size()) {
    if (raw.compare(i, 3, "$${") == 0) {
      out += "${";
      i += 3;
      continue;
    }
    if (raw.compare(i, 2, "${") != 0) {
      out += raw[i++];
      continue;
    }
    size_t close = raw.find('}', i + 2);
    absl::string_view name =
        close == absl::string_view::npos ? absl::string_view() : raw.substr(i + 2, close - (i + 2));
    bool valid = !name.empty() && !absl::ascii_isdigit(static_cast<unsigned char>(name[0])) &&
                 std::all_of(name.begin(), name.end(), [](char c) {
                   return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_';
                 });
    if (!valid) {
      return Expected(f, "${NAME} references with NAME matching [A-Za-z_][A-Za-z0-9_]*",
                      Quote(raw));
    }
    // The expanded spec is stored with the campaign and served by
    // GetCampaign: a secret must never be expanded into it (issue 17,
    // finding 8). Refused before the lookup, so the value is never read.
    if (LooksLikeSecretName(std::string_view(name.data(), name.size()))) {
      return ErrorAt(
          f.mark, f.path,
          absl::StrCat("${", name, "} names a secret (a name containing ",
                       SecretNameWordsText(),
                       "); ftb does not expand it, because the expanded spec is stored and "
                       "served by the coordinator. Give the variable's name to the backend "
                       "instead (e.g. api_key_env: ", name,
                       "), which the worker reads from its own environment"));
    }
    std::optional<std::string> value =
        env_ ? env_(std::string_view(name.data(), name.size())) : std::nullopt;
    if (!value.has_value()) {
      return ErrorAt(f.mark, f.path, absl::StrCat("environment variable ", name, " is not set"));
    }
    out += *value;
    i = close + 1;
  }
  return out;
}

absl::StatusOr<std::string> Parser::ReadString(const Field& f, absl::string_view expected) const {
  if (!f.node.IsScalar()) return Expected(f, expected);
  return Expand(f, f.node.Scalar());
}

absl::StatusOr<std::string> Parser::ReadName(const Field& f) const {
  const std::string expected = absl::StrCat("a name matching ", kNamePattern);
  FTB_ASSIGN_OR_RETURN(std::string s, ReadString(f, expected));
  if (!IsName(s)) return Expected(f, expected, Quote(s));
  return s;
}

template <typename Container>
absl::StatusOr<std::string> Parser::ReadEnum(const Field& f, const Container& values) const {
  const std::string expected = OneOf(values);
  FTB_ASSIGN_OR_RETURN(std::string s, ReadString(f, expected));
  if (!Contains(values, s)) return Expected(f, expected, Quote(s));
  return s;
}

absl::StatusOr<uint64_t> Parser::ReadUint(const Field& f, uint64_t min, uint64_t max,
                                          absl::string_view expected) const {
  std::optional<uint64_t> v = PlainUint(f.node);
  if (!v.has_value() || *v < min || *v > max) return Expected(f, expected);
  return *v;
}

template <typename Pred>
absl::StatusOr<double> Parser::ReadNumber(const Field& f, Pred ok,
                                          absl::string_view expected) const {
  if (!f.node.IsScalar() || IsStringTagged(f.node)) {
    return Expected(f, expected);
  }
  std::optional<double> v = ParseDouble(f.node.Scalar());
  if (!v.has_value() || !ok(*v)) return Expected(f, expected);
  return *v;
}

absl::StatusOr<Value> Parser::ToValue(const Field& f, std::vector<YAML::Node>& ancestors) const {
  if (++option_values_ > kMaxOptionValues) {
    return Expected(f, absl::StrCat("options with at most ", kMaxOptionValues, " values in all"),
                    "more (check aliases)");
  }
  if (f.node.IsSequence() || f.node.IsMap()) {
    for (const YAML::Node& a : ancestors) {
      if (a.is(f.node)) {
        return Expected(f, "a value that does not contain itself",
                        "an alias of an enclosing collection");
      }
    }
  }
  Value out;
  switch (f.node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      out.set_null_value(google::protobuf::NULL_VALUE);
      return out;
    case YAML::NodeType::Scalar: {
      const std::string& raw = f.node.Scalar();
      if (!IsStringTagged(f.node)) {
        bool b = false;
        if (IsBoolText(raw, &b)) {
          out.set_bool_value(b);
          return out;
        }
        if (std::optional<double> d = ParseDouble(raw); d.has_value()) {
          out.set_number_value(*d);
          return out;
        }
      }
      FTB_ASSIGN_OR_RETURN(std::string s, Expand(f, raw));
      out.set_string_value(std::move(s));
      return out;
    }
    case YAML::NodeType::Sequence: {
      ListValue* list = out.mutable_list_value();
      ancestors.push_back(f.node);
      size_t index = 0;
      for (const YAML::Node& element : f.node) {
        FTB_ASSIGN_OR_RETURN(*list->add_values(),
                             ToValue(ElementField(f, element, index++), ancestors));
      }
      ancestors.pop_back();
      return out;
    }
    case YAML::NodeType::Map: {
      FTB_ASSIGN_OR_RETURN(*out.mutable_struct_value(), ToStruct(f, ancestors));
      return out;
    }
  }
  return Expected(f, "a YAML value");
}

absl::StatusOr<Struct> Parser::ReadOptions(const Field& f) const {
  std::vector<YAML::Node> ancestors;
  return ToStruct(f, ancestors);
}

absl::StatusOr<Struct> Parser::ToStruct(const Field& f, std::vector<YAML::Node>& ancestors) const {
  FTB_ASSIGN_OR_RETURN(Mapping m, ReadFreeMapping(f, "a mapping"));
  ancestors.push_back(f.node);
  Struct out;
  for (const Mapping::Entry& e : m.entries()) {
    FTB_ASSIGN_OR_RETURN(Value v, ToValue(e.value, ancestors));
    (*out.mutable_fields())[e.key] = std::move(v);
  }
  ancestors.pop_back();
  return out;
}

absl::StatusOr<std::vector<Field>> Parser::AxisElements(const Field& f,
                                                        absl::string_view expected) const {
  std::vector<Field> out;
  if (f.node.IsScalar()) {
    out.push_back(f);
    return out;
  }
  if (!f.node.IsSequence()) return Expected(f, expected);
  if (f.node.size() == 0) {
    // "a list of X" -> "a non-empty list of X".
    absl::string_view rest = expected;
    absl::ConsumePrefix(&rest, "a ");
    return Expected(f, absl::StrCat("a non-empty ", rest));
  }
  size_t index = 0;
  for (const YAML::Node& element : f.node) {
    Field e = ElementField(f, element, index++);
    // Elements are reported under the axis's own path: the expectation is
    // about the list, the position points at the offending element.
    e.path = f.path;
    if (!element.IsScalar()) return Expected(e, expected);
    out.push_back(std::move(e));
  }
  return out;
}

absl::Status Parser::ReadUintAxis(const Field& f, uint64_t min, uint64_t max,
                                  absl::string_view expected, absl::string_view expected_range,
                                  google::protobuf::RepeatedField<uint32_t>* out32,
                                  google::protobuf::RepeatedField<uint64_t>* out64,
                                  bool allow_auto) const {
  FTB_ASSIGN_OR_RETURN(std::vector<Field> elements, AxisElements(f, expected));
  std::vector<uint64_t> seen;
  for (const Field& e : elements) {
    std::optional<uint64_t> v = PlainUint(e.node);
    if (allow_auto && e.node.IsScalar() && e.node.Scalar() == kAuto) {
      v = 0;  // auto; min >= 1 keeps a literal 0 out
    } else if (v.has_value() && *v < min) {
      return Expected(e, expected);
    }
    if (!v.has_value()) return Expected(e, expected);
    // A well-formed integer that is merely too large gets the bound named.
    if (*v > max) return Expected(e, expected_range);
    if (std::find(seen.begin(), seen.end(), *v) != seen.end()) {
      return Expected(e, "a list without duplicates",
                      absl::StrCat(Quote(e.node.Scalar()), " twice"));
    }
    seen.push_back(*v);
    if (out32 != nullptr) out32->Add(static_cast<uint32_t>(*v));
    if (out64 != nullptr) out64->Add(*v);
  }
  return absl::OkStatus();
}

absl::Status Parser::ReadDoubleAxis(const Field& f,
                                    google::protobuf::RepeatedField<double>* out) const {
  constexpr absl::string_view kExpected = "a list of positive numbers or auto";
  FTB_ASSIGN_OR_RETURN(std::vector<Field> elements, AxisElements(f, kExpected));
  for (const Field& e : elements) {
    double v = 0;  // auto
    if (!(e.node.IsScalar() && e.node.Scalar() == kAuto)) {
      FTB_ASSIGN_OR_RETURN(v, ReadNumber(
                                  e, [](double d) { return d > 0; }, kExpected));
    }
    if (std::find(out->begin(), out->end(), v) != out->end()) {
      return Expected(e, "a list without duplicates",
                      absl::StrCat(Quote(e.node.Scalar()), " twice"));
    }
    out->Add(v);
  }
  return absl::OkStatus();
}

absl::Status Parser::ReadAxes(const Mapping& m, v1::GridAxes* axes) const {
  if (const Field* f = m.Find("epochs")) {
    // 0 is the base model, evaluated untuned.
    FTB_RETURN_IF_ERROR(ReadUintAxis(
        *f, 0, kMaxEpochs, "a list of non-negative integers (0 = the base model)",
        absl::StrCat("a list of non-negative integers no greater than ", kMaxEpochs),
        axes->mutable_epochs(), nullptr));
  }
  if (const Field* f = m.Find("learning_rate_multiplier")) {
    FTB_RETURN_IF_ERROR(ReadDoubleAxis(*f, axes->mutable_learning_rate_multiplier()));
  }
  if (const Field* f = m.Find("batch_size")) {
    FTB_RETURN_IF_ERROR(ReadUintAxis(*f, 1, std::numeric_limits<uint32_t>::max(),
                                     "a list of positive integers or auto",
                                     "a list of positive integers or auto",
                                     axes->mutable_batch_size(), nullptr, /*allow_auto=*/true));
  }
  if (const Field* f = m.Find("seed")) {
    FTB_RETURN_IF_ERROR(ReadUintAxis(*f, 0, std::numeric_limits<uint64_t>::max(),
                                     "a list of non-negative integers",
                                     "a list of non-negative integers", nullptr,
                                     axes->mutable_seed()));
  }
  return absl::OkStatus();
}

absl::Status Parser::CheckBackendAbilities(const v1::CampaignSpec& spec, const Field& models,
                                           const Field* grid, const Field& datasets) const {
  // The element of axis `f` written as `special` ("0" or "auto"), for the
  // error's position; `f` itself when none is found.
  const auto element = [](const Field& f, absl::string_view special) -> Field {
    if (f.node.IsSequence()) {
      size_t index = 0;
      for (const YAML::Node& e : f.node) {
        Field ef = ElementField(f, e, index++);
        ef.path = f.path;
        if (e.IsScalar() && (e.Scalar() == special || (special == "0" && PlainUint(e) == 0u))) {
          return ef;
        }
      }
    }
    return f;
  };
  // The field axis `key` of models[i] was read from: its own, else the grid's.
  const auto axis_field = [&](size_t i, absl::string_view key, bool own) -> std::optional<Field> {
    if (own) {
      absl::StatusOr<Mapping> m =
          ReadMapping(ElementField(models, models.node[i], i), kModelKeys, "a mapping");
      if (m.ok() && m->Find(key) != nullptr) return *m->Find(key);
      return std::nullopt;
    }
    if (grid == nullptr) return std::nullopt;
    absl::StatusOr<Mapping> m = ReadMapping(*grid, kAxisKeys, "a mapping");
    if (m.ok() && m->Find(key) != nullptr) return *m->Find(key);
    return std::nullopt;
  };
  const auto can_query_base = [](const BackendAbilities& a, const v1::ModelSpec& model) {
    if (a.base_model == "yes") return true;
    if (a.base_model == "no") return false;
    return model.options().fields().contains(std::string(a.base_model));
  };
  const auto refuse = [&](const Field& f, size_t i, bool own, absl::string_view expected,
                          absl::string_view why, absl::string_view key,
                          absl::string_view got) -> absl::Status {
    const v1::ModelSpec& model = spec.models(static_cast<int>(i));
    if (own) {
      return Expected(f, absl::StrCat(expected, " for backend ", model.backend(), " (", why, ")"),
                      got);
    }
    return Expected(f,
                    absl::StrCat(expected, " for models[", i, "] (backend ", model.backend(),
                                 ": ", why, "; or set ", key, " in models[", i, "])"),
                    got);
  };
  for (size_t i = 0; i < static_cast<size_t>(spec.models_size()); ++i) {
    const v1::ModelSpec& model = spec.models(static_cast<int>(i));
    const BackendAbilities* a = AbilitiesOf(model.backend());
    if (a == nullptr) continue;
    const v1::GridAxes& own = model.grid();
    {
      const bool is_own = !own.epochs().empty();
      const auto& epochs = is_own ? own.epochs() : spec.grid().epochs();
      if (HasValue(epochs, 0u) && !can_query_base(*a, model)) {
        std::optional<Field> f = axis_field(i, "epochs", is_own);
        if (f.has_value()) {
          return refuse(element(*f, "0"), i, is_own, "epochs of at least 1", a->base_model_why,
                        "epochs", "\"0\"");
        }
      }
    }
    if (a->accepts_auto) continue;
    for (absl::string_view key : {"learning_rate_multiplier", "batch_size"}) {
      const bool lr = key == "learning_rate_multiplier";
      const bool is_own =
          lr ? !own.learning_rate_multiplier().empty() : !own.batch_size().empty();
      const bool has_auto =
          lr ? HasValue(is_own ? own.learning_rate_multiplier()
                               : spec.grid().learning_rate_multiplier(),
                        0.0)
             : HasValue(is_own ? own.batch_size() : spec.grid().batch_size(), 0u);
      if (!has_auto) continue;
      std::optional<Field> f = axis_field(i, key, is_own);
      if (f.has_value()) {
        return refuse(element(*f, kAuto), i, is_own, "numbers", a->auto_why, key,
                      Quote(kAuto));
      }
    }
  }
  // An evaluation-only dataset runs at epochs 0 on every model.
  for (int d = 0; d < spec.datasets_size(); ++d) {
    if (!spec.datasets(d).evaluation_only()) continue;
    for (int i = 0; i < spec.models_size(); ++i) {
      const v1::ModelSpec& model = spec.models(i);
      const BackendAbilities* a = AbilitiesOf(model.backend());
      if (a == nullptr || can_query_base(*a, model)) continue;
      absl::StatusOr<Mapping> m = ReadMapping(
          ElementField(datasets, datasets.node[static_cast<size_t>(d)], static_cast<size_t>(d)),
          kDatasetKeys, "a mapping");
      Field f = m.ok() ? m->Get("evaluation_only") : datasets;
      return Expected(f,
                      absl::StrCat("false while models[", i, "] uses backend ", model.backend(),
                                   " (an evaluation-only dataset runs at epochs 0: ",
                                   a->base_model_why, ")"),
                      Quote("true"));
    }
  }
  return absl::OkStatus();
}

absl::Status Parser::ReadDataset(const Field& f, v1::DatasetSpec* out, Field* label_at) const {
  FTB_ASSIGN_OR_RETURN(Mapping m, ReadMapping(f, kDatasetKeys, "a mapping"));
  FTB_ASSIGN_OR_RETURN(std::string source, ReadEnum(m.Get("source"), kSources));
  const bool builtin = source == "builtin";
  out->set_source(builtin ? v1::DATASET_SOURCE_BUILTIN : v1::DATASET_SOURCE_FINETUNEBENCH);

  if (builtin) {
    std::array<absl::string_view, kBuiltinDatasets.size()> names;
    for (size_t i = 0; i < names.size(); ++i) {
      names[i] = kBuiltinDatasets[i].name;
    }
    FTB_ASSIGN_OR_RETURN(std::string name, ReadEnum(m.Get("name"), names));
    out->set_name(name);
    if (const Field* path = m.Find("path")) {
      return Expected(*path, "no path (builtin datasets are generated)");
    }
    uint32_t size = 0;
    for (const BuiltinDataset& d : kBuiltinDatasets) {
      if (d.name == name) size = d.default_size;
    }
    if (const Field* s = m.Find("size")) {
      FTB_ASSIGN_OR_RETURN(
          uint64_t v,
          ReadUint(*s, 1, kMaxBuiltinSize, absl::StrCat("an integer from 1 to ", kMaxBuiltinSize)));
      size = static_cast<uint32_t>(v);
    }
    out->set_size(size);
    uint64_t seed = 0;
    if (const Field* s = m.Find("seed")) {
      FTB_ASSIGN_OR_RETURN(
          seed, ReadUint(*s, 0, std::numeric_limits<uint64_t>::max(), "a non-negative integer"));
    }
    out->set_seed(seed);
  } else {
    FTB_ASSIGN_OR_RETURN(std::string name, ReadEnum(m.Get("name"), kFineTuneBenchDatasets));
    out->set_name(name);
    for (absl::string_view key : {"size", "seed"}) {
      if (const Field* s = m.Find(key)) {
        return Expected(*s, absl::StrCat("no ", key, " (only builtin datasets have one)"));
      }
    }
    constexpr absl::string_view kPathExpected = "a FineTuneBench checkout directory";
    Field path_field = m.Get("path");
    FTB_ASSIGN_OR_RETURN(std::string path, ReadString(path_field, kPathExpected));
    if (path.empty()) return Expected(path_field, kPathExpected, Quote(path));
    out->set_path(path);
  }

  if (const Field* qt = m.Find("question_types")) {
    constexpr absl::string_view kListExpected =
        "a non-empty list of question types (omit the key for all types)";
    if (!qt->node.IsSequence() || qt->node.size() == 0) {
      return Expected(*qt, kListExpected);
    }
    size_t index = 0;
    for (const YAML::Node& element : qt->node) {
      Field e = ElementField(*qt, element, index++);
      FTB_ASSIGN_OR_RETURN(std::string type, ReadEnum(e, QuestionTypeNames()));
      if (Contains(out->question_types(), type)) {
        return Expected(e, "each question type once", absl::StrCat(Quote(type), " twice"));
      }
      out->add_question_types(type);
    }
  }

  if (const Field* e = m.Find("evaluation_only")) {
    bool value = false;
    if (!e->node.IsScalar() || IsStringTagged(e->node) || !IsBoolText(e->node.Scalar(), &value)) {
      return Expected(*e, "true or false");
    }
    out->set_evaluation_only(value);
  }
  if (const Field* c = m.Find("comparison")) {
    FTB_ASSIGN_OR_RETURN(std::string value, ReadEnum(*c, kComparisonValues));
    if (value == "paper" && (builtin || out->name() != "fictional_people")) {
      return Expected(*c, "all (the paper's comparison set is fictional_people's)",
                      Quote(value));
    }
    out->set_comparison(value == "all" ? "" : value);
  }

  if (const Field* label = m.Find("label")) {
    FTB_ASSIGN_OR_RETURN(std::string l, ReadName(*label));
    out->set_label(l);
    *label_at = *label;
  } else {
    out->set_label(out->name());
    *label_at = m.Get("name");
  }
  return absl::OkStatus();
}

ModelOptionsValidator& OptionsValidatorSlot() {
  static ModelOptionsValidator* validator = new ModelOptionsValidator;
  return *validator;
}

// The option of `f` (an options mapping, nested under `prefix`) that
// `message` names: the longest dotted key path P with "options.P" in the
// message (followed by a non-name character), else a key quoted as "K".
void LocateOption(const Field& f, absl::string_view prefix, absl::string_view message,
                  std::optional<Field>* best, size_t* best_score) {
  if (!f.node.IsMap()) return;
  for (auto it = f.node.begin(); it != f.node.end(); ++it) {
    if (!it->first.IsScalar()) continue;
    const std::string key = it->first.Scalar();
    const std::string dotted = prefix.empty() ? key : absl::StrCat(prefix, ".", key);
    const std::string named = absl::StrCat("options.", dotted);
    size_t score = 0;
    for (size_t pos = message.find(named); pos != absl::string_view::npos;
         pos = message.find(named, pos + 1)) {
      const size_t end = pos + named.size();
      if (end == message.size() ||
          !(absl::ascii_isalnum(static_cast<unsigned char>(message[end])) || message[end] == '_')) {
        score = 2 * dotted.size() + 2;
        break;
      }
    }
    if (score == 0 && absl::StrContains(message, absl::StrCat("\"", key, "\""))) {
      score = 2 * dotted.size() + 1;
    }
    YAML::Mark mark = it->first.Mark();
    if (mark.is_null()) mark = f.mark;
    Field field{it->second, ChildPath(f.path, key), mark};
    if (score > *best_score) {
      *best = field;
      *best_score = score;
    }
    LocateOption(field, dotted, message, best, best_score);
  }
}

absl::Status Parser::ReadModel(const Field& f, v1::ModelSpec* out) const {
  FTB_ASSIGN_OR_RETURN(Mapping m, ReadMapping(f, kModelKeys, "a mapping"));
  constexpr absl::string_view kNameExpected = "a model name";
  Field name_field = m.Get("name");
  FTB_ASSIGN_OR_RETURN(std::string name, ReadString(name_field, kNameExpected));
  if (name.empty()) return Expected(name_field, kNameExpected, Quote(name));
  out->set_name(name);
  FTB_ASSIGN_OR_RETURN(std::string backend, ReadEnum(m.Get("backend"), kBackends));
  out->set_backend(backend);
  if (const Field* options = m.Find("options")) {
    FTB_ASSIGN_OR_RETURN(*out->mutable_options(), ReadOptions(*options));
  }
  if (const ModelOptionsValidator& validate = OptionsValidatorSlot()) {
    const absl::Status s = validate(backend, out->options());
    if (!s.ok() && !absl::IsNotFound(s)) {
      const Field options = m.Get("options");
      std::optional<Field> at;
      size_t score = 0;
      LocateOption(options, "", s.message(), &at, &score);
      const Field& where = at ? *at : options;
      return ErrorAt(where.mark, where.path, s.message());
    }
  }
  // Only overrides are stored: a model without any keeps grid unset.
  v1::GridAxes axes;
  FTB_RETURN_IF_ERROR(ReadAxes(m, &axes));
  if (axes.ByteSizeLong() > 0) *out->mutable_grid() = std::move(axes);
  return absl::OkStatus();
}

absl::Status Parser::ReadGrader(const Field& f, v1::GraderSpec* out, Field* name_at) const {
  FTB_ASSIGN_OR_RETURN(Mapping m, ReadMapping(f, kGraderKeys, "a mapping"));
  FTB_ASSIGN_OR_RETURN(std::string kind, ReadEnum(m.Get("kind"), kGraderKinds));
  out->set_kind(kind);
  if (const Field* name = m.Find("name")) {
    FTB_ASSIGN_OR_RETURN(std::string n, ReadName(*name));
    out->set_name(n);
    *name_at = *name;
  } else {
    out->set_name(kind);
    *name_at = m.Get("kind");
  }
  if (const Field* options = m.Find("options")) {
    FTB_ASSIGN_OR_RETURN(*out->mutable_options(), ReadOptions(*options));
  }
  return absl::OkStatus();
}

absl::Status Parser::ReadJudge(const Field& f, v1::JudgeSpec* out) const {
  FTB_ASSIGN_OR_RETURN(Mapping m, ReadMapping(f, kJudgeKeys, "a mapping"));
  const Field* grader = m.Find("grader");
  const Field* graders = m.Find("graders");
  if (grader != nullptr && graders != nullptr) {
    return Expected(*graders, "either grader or graders", "both");
  }
  if (grader != nullptr) {
    FTB_ASSIGN_OR_RETURN(std::string kind, ReadEnum(*grader, kGraderKinds));
    v1::GraderSpec* g = out->add_graders();
    g->set_kind(kind);
    g->set_name(kind);
  } else if (graders != nullptr) {
    constexpr absl::string_view kExpected = "a non-empty list of graders";
    if (!graders->node.IsSequence() || graders->node.size() == 0) {
      return Expected(*graders, kExpected);
    }
    size_t index = 0;
    for (const YAML::Node& element : graders->node) {
      Field e = ElementField(*graders, element, index++);
      v1::GraderSpec g;
      Field name_at;
      FTB_RETURN_IF_ERROR(ReadGrader(e, &g, &name_at));
      for (const v1::GraderSpec& prior : out->graders()) {
        if (prior.name() == g.name()) {
          return Expected(name_at,
                          "a grader name unique within the judge (set name: "
                          "to tell graders apart)",
                          Quote(g.name()));
        }
      }
      *out->add_graders() = std::move(g);
    }
  } else {
    v1::GraderSpec* g = out->add_graders();
    g->set_kind("rules");
    g->set_name("rules");
  }
  uint32_t batch_size = kDefaultJudgeBatchSize;
  if (const Field* b = m.Find("batch_size")) {
    FTB_ASSIGN_OR_RETURN(
        uint64_t v, ReadUint(*b, 1, std::numeric_limits<uint32_t>::max(), "a positive integer"));
    batch_size = static_cast<uint32_t>(v);
  }
  out->set_batch_size(batch_size);
  return absl::OkStatus();
}

absl::Status Parser::ReadBudget(const Field& f, v1::BudgetSpec* out) const {
  FTB_ASSIGN_OR_RETURN(Mapping m, ReadMapping(f, kBudgetKeys, "a mapping"));
  auto positive = [](double d) { return d > 0; };
  if (const Field* usd = m.Find("usd")) {
    FTB_ASSIGN_OR_RETURN(double v, ReadNumber(*usd, positive, "a positive number"));
    out->set_usd(v);
  }
  if (const Field* cell = m.Find("per_cell_usd")) {
    FTB_ASSIGN_OR_RETURN(double v, ReadNumber(*cell, positive, "a positive number"));
    if (out->has_usd() && v > out->usd()) {
      return Expected(*cell,
                      absl::StrCat("a number no greater than budget.usd (", out->usd(), ")"));
    }
    out->set_per_cell_usd(v);
  }
  return absl::OkStatus();
}

absl::Status Parser::ReadRetry(const Field& f, v1::RetryPolicy* out) const {
  FTB_ASSIGN_OR_RETURN(Mapping m, ReadMapping(f, kRetryKeys, "a mapping"));
  auto backoff = [](double d) { return d >= kMinBackoffSeconds && d <= kMaxBackoffSeconds; };
  const std::string backoff_range =
      absl::StrCat("a number of seconds from ", kMinBackoffSeconds, " to ", kMaxBackoffSeconds);
  if (const Field* v = m.Find("max_attempts")) {
    FTB_ASSIGN_OR_RETURN(
        uint64_t n, ReadUint(*v, 1, std::numeric_limits<uint32_t>::max(), "a positive integer"));
    out->set_max_attempts(static_cast<uint32_t>(n));
  }
  const Field* initial = m.Find("initial_backoff_seconds");
  if (initial != nullptr) {
    FTB_ASSIGN_OR_RETURN(double d, ReadNumber(*initial, backoff, backoff_range));
    out->set_initial_backoff_seconds(d);
  }
  const Field* max = m.Find("max_backoff_seconds");
  if (max != nullptr) {
    FTB_ASSIGN_OR_RETURN(double d, ReadNumber(*max, backoff, backoff_range));
    out->set_max_backoff_seconds(d);
  }
  if (out->max_backoff_seconds() < out->initial_backoff_seconds()) {
    // Blame whichever of the two the user wrote (max if both).
    if (max != nullptr) {
      return Expected(*max, absl::StrCat("a number no less than "
                                         "retry.initial_backoff_seconds (",
                                         out->initial_backoff_seconds(), ")"));
    }
    return Expected(*initial, absl::StrCat("a number no greater than "
                                           "retry.max_backoff_seconds (",
                                           out->max_backoff_seconds(), ")"));
  }
  if (const Field* v = m.Find("backoff_multiplier")) {
    FTB_ASSIGN_OR_RETURN(
        double d, ReadNumber(
                      *v, [](double x) { return x >= 1 && x <= kMaxBackoffMultiplier; },
                      absl::StrCat("a number from 1 to ", kMaxBackoffMultiplier)));
    out->set_backoff_multiplier(d);
  }
  if (const Field* v = m.Find("jitter")) {
    FTB_ASSIGN_OR_RETURN(
        double d, ReadNumber(
                      *v, [](double x) { return x >= 0 && x <= 1; }, "a number from 0 to 1"));
    out->set_jitter(d);
  }
  if (const Field* v = m.Find("lease_seconds")) {
    FTB_ASSIGN_OR_RETURN(
        double d, ReadNumber(
                      *v, [](double x) { return x >= kMinLeaseSeconds && x <= kMaxLeaseSeconds; },
                      absl::StrCat("a number of seconds from ", kMinLeaseSeconds, " to ",
                                   kMaxLeaseSeconds)));
    out->set_lease_seconds(d);
  }
  return absl::OkStatus();
}

absl::Status Parser::ReadLimits(const Field& f,
                                google::protobuf::Map<std::string, v1::BackendLimits>* out) const {
  FTB_ASSIGN_OR_RETURN(Mapping m, ReadFreeMapping(f, "a mapping from backend to limits"));
  for (const Mapping::Entry& e : m.entries()) {
    if (!Contains(kBackends, e.key)) {
      return Expected(e.key_field, absl::StrCat("a backend, ", OneOf(kBackends)));
    }
    FTB_ASSIGN_OR_RETURN(Mapping lm, ReadMapping(e.value, kLimitKeys, "a mapping"));
    v1::BackendLimits limits;
    constexpr absl::string_view kExpected = "a non-negative integer (0 means unlimited)";
    constexpr uint64_t kMax32 = std::numeric_limits<uint32_t>::max();
    if (const Field* v = lm.Find("max_concurrent_tune")) {
      FTB_ASSIGN_OR_RETURN(uint64_t n, ReadUint(*v, 0, kMax32, kExpected));
      limits.set_max_concurrent_tune(static_cast<uint32_t>(n));
    }
    if (const Field* v = lm.Find("max_concurrent_judge")) {
      FTB_ASSIGN_OR_RETURN(uint64_t n, ReadUint(*v, 0, kMax32, kExpected));
      limits.set_max_concurrent_judge(static_cast<uint32_t>(n));
    }
    if (const Field* v = lm.Find("requests_per_minute")) {
      FTB_ASSIGN_OR_RETURN(uint64_t n, ReadUint(*v, 0, kMax32, kExpected));
      limits.set_requests_per_minute(static_cast<uint32_t>(n));
    }
    if (const Field* v = lm.Find("tokens_per_minute")) {
      FTB_ASSIGN_OR_RETURN(uint64_t n,
                           ReadUint(*v, 0, std::numeric_limits<uint64_t>::max(), kExpected));
      limits.set_tokens_per_minute(n);
    }
    (*out)[e.key] = std::move(limits);
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::CampaignSpec> Parser::Parse(absl::string_view yaml) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(yaml));
  } catch (const YAML::Exception& e) {
    std::string message = e.msg;
    // `${NAME}` unquoted inside [...] or {...} is the most likely cause of a
    // flow error: '{' is a flow indicator there, so say how to fix it.
    if (e.mark.pos > 0 && static_cast<size_t>(e.mark.pos) < yaml.size() &&
        yaml[e.mark.pos] == '{' && yaml[e.mark.pos - 1] == '$') {
      absl::StrAppend(&message,
                      " (inside [...] or {...}, quote values that use "
                      "${NAME}: \"${NAME}\")");
    }
    return ErrorAt(e.mark, "YAML syntax error", message);
  }
  const Field root_missing{YAML::Node(YAML::NodeType::Null), std::string(kRootPath),
                           YAML::Mark::null_mark()};
  if (docs.empty()) return Expected(root_missing, "a mapping");
  if (docs.size() > 1) {
    return Expected(Field{docs[1], std::string(kRootPath), docs[1].Mark()},
                    "a single YAML document", "a second document");
  }
  Field root{docs[0], std::string(kRootPath), docs[0].Mark()};
  if (root.mark.is_null()) root.mark = YAML::Mark();

  v1::CampaignSpec spec;
  FTB_ASSIGN_OR_RETURN(Mapping top, ReadMapping(root, kTopKeys, "a mapping"));

  FTB_ASSIGN_OR_RETURN(*spec.mutable_name(), ReadName(top.Get("name")));
  if (const Field* d = top.Find("description")) {
    FTB_ASSIGN_OR_RETURN(*spec.mutable_description(), ReadString(*d, "a string"));
  }

  {
    Field datasets = top.Get("datasets");
    constexpr absl::string_view kExpected = "a non-empty list of datasets";
    if (!datasets.node.IsSequence() || datasets.node.size() == 0) {
      return Expected(datasets, kExpected);
    }
    // Label -> field that first used it.
    std::vector<std::pair<std::string, std::string>> labels;
    size_t index = 0;
    for (const YAML::Node& element : datasets.node) {
      Field e = ElementField(datasets, element, index++);
      v1::DatasetSpec* d = spec.add_datasets();
      Field label_at;
      FTB_RETURN_IF_ERROR(ReadDataset(e, d, &label_at));
      for (const auto& [label, first] : labels) {
        if (label != d->label()) continue;
        return Expected(label_at,
                        absl::StrCat("a label unique across datasets (", first,
                                     " already uses it; set label: to tell them apart)"),
                        Quote(d->label()));
      }
      labels.emplace_back(d->label(), e.path);
    }
  }

  {
    Field models = top.Get("models");
    constexpr absl::string_view kExpected = "a non-empty list of models";
    if (!models.node.IsSequence() || models.node.size() == 0) {
      return Expected(models, kExpected);
    }
    size_t index = 0;
    for (const YAML::Node& element : models.node) {
      FTB_RETURN_IF_ERROR(ReadModel(ElementField(models, element, index++), spec.add_models()));
    }
  }

  v1::GridAxes* grid = spec.mutable_grid();
  if (const Field* g = top.Find("grid")) {
    FTB_ASSIGN_OR_RETURN(Mapping m, ReadMapping(*g, kAxisKeys, "a mapping"));
    FTB_RETURN_IF_ERROR(ReadAxes(m, grid));
  }
  FTB_RETURN_IF_ERROR(
      CheckBackendAbilities(spec, top.Get("models"), top.Find("grid"), top.Get("datasets")));
  if (grid->epochs().empty()) grid->add_epochs(kDefaultEpochs);
  if (grid->learning_rate_multiplier().empty()) {
    grid->add_learning_rate_multiplier(kDefaultLearningRateMultiplier);
  }
  if (grid->batch_size().empty()) grid->add_batch_size(kDefaultBatchSize);
  if (grid->seed().empty()) grid->add_seed(kDefaultSeed);

  if (const Field* j = top.Find("judge")) {
    FTB_RETURN_IF_ERROR(ReadJudge(*j, spec.mutable_judge()));
  } else {
    v1::GraderSpec* g = spec.mutable_judge()->add_graders();
    g->set_kind("rules");
    g->set_name("rules");
    spec.mutable_judge()->set_batch_size(kDefaultJudgeBatchSize);
  }

  if (const Field* b = top.Find("budget")) {
    FTB_RETURN_IF_ERROR(ReadBudget(*b, spec.mutable_budget()));
  }

  SetRetryDefaults(spec.mutable_retry());
  if (const Field* r = top.Find("retry")) {
    FTB_RETURN_IF_ERROR(ReadRetry(*r, spec.mutable_retry()));
  }

  if (const Field* l = top.Find("limits")) {
    FTB_RETURN_IF_ERROR(ReadLimits(*l, spec.mutable_limits()));
  }
  return spec;
}

}  // namespace

EnvLookup ProcessEnv() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* value = std::getenv(std::string(name).c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

EnvLookup MapEnv(std::map<std::string, std::string> values) {
  return [values = std::move(values)](std::string_view name) -> std::optional<std::string> {
    auto it = values.find(std::string(name));
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
}

EnvLookup RecordingEnv(EnvLookup base, std::map<std::string, std::string>* used) {
  return [base = std::move(base), used](std::string_view name) -> std::optional<std::string> {
    std::optional<std::string> value = base(name);
    if (value) (*used)[std::string(name)] = *value;
    return value;
  };
}

void SetModelOptionsValidator(ModelOptionsValidator validator) {
  OptionsValidatorSlot() = std::move(validator);
}

absl::StatusOr<v1::CampaignSpec> ParseCampaignSpec(std::string_view yaml, std::string_view filename,
                                                   const EnvLookup& env) {
  return Parser(absl::string_view(filename.data(), filename.size()), env)
      .Parse(absl::string_view(yaml.data(), yaml.size()));
}

absl::StatusOr<v1::CampaignSpec> LoadCampaignSpecFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read campaign spec ", path, ": ", std::strerror(errno)));
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) {
    return absl::NotFoundError(absl::StrCat("cannot read campaign spec ", path));
  }
  return ParseCampaignSpec(contents.str(), path, ProcessEnv());
}

}  // namespace ftb::spec
