#include "spec/spec.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace ftb::spec {
namespace {

using ::ftb::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// An EnvLookup over a fixed map.
EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

// Environment for the error table: FINETUNEBENCH_DIR deliberately unset.
EnvLookup ErrorEnv() { return FakeEnv({{"HOME", "/home/u"}}); }

EnvLookup FullEnv() {
  return FakeEnv(
      {{"HOME", "/home/u"}, {"FINETUNEBENCH_DIR", "/data/FineTuneBench"}, {"EMPTY", ""}});
}

v1::CampaignSpec TextProto(const std::string& text) {
  v1::CampaignSpec out;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &out)) << text;
  return out;
}

void ExpectProtoEq(const google::protobuf::Message& actual,
                   const google::protobuf::Message& expected) {
  google::protobuf::util::MessageDifferencer diff;
  std::string report;
  diff.ReportDifferencesToString(&report);
  EXPECT_TRUE(diff.Compare(expected, actual)) << report << "\nactual:\n" << actual.DebugString();
}

// ---------------------------------------------------------------------------
// Malformed specs: the exact error for each.

struct ErrorCase {
  std::string test_name;
  std::string yaml;
  std::string error;
};

std::ostream& operator<<(std::ostream& os, const ErrorCase& c) { return os << c.test_name; }

// Lines 1-5 of most cases: a minimal valid spec.
constexpr char kHead[] =
    "name: c\n"
    "datasets:\n"
    "- {source: builtin, name: people}\n"
    "models:\n"
    "- {name: m, backend: local}\n";

std::vector<ErrorCase> ErrorCases() {
  const std::string head = kHead;
  return {
      // ----- document level -----
      {"EmptyDocument", "", "campaign.yaml:1:1: (document): expected a mapping, got nothing"},
      {"OnlyComments", "# nothing here\n",
       "campaign.yaml:1:1: (document): expected a mapping, got nothing"},
      {"TopLevelList", "- name: c\n- name: d\n",
       "campaign.yaml:1:1: (document): expected a mapping, got a list"},
      {"TopLevelScalar", "hello\n",
       "campaign.yaml:1:1: (document): expected a mapping, got \"hello\""},
      {"TwoDocuments", head + "---\nname: d\n",
       "campaign.yaml:7:1: (document): expected a single YAML document, got a "
       "second document"},
      {"SyntaxErrorUnclosedBracket",
       "name: c\n"
       "datasets: [{source: builtin, name: people}\n"
       "models:\n"
       "- {name: m, backend: local}\n",
       "campaign.yaml:3:1: YAML syntax error: end of sequence flow not found"},
      {"SyntaxErrorBadIndentation", "name: c\n  bad: x\n",
       "campaign.yaml:2:6: YAML syntax error: illegal map value"},
      {"UnknownTopLevelKey", head + "grids: {epochs: 1}\n",
       "campaign.yaml:6:1: grids: expected one of the keys [name, description, "
       "datasets, models, grid, judge, budget, retry, limits], got \"grids\""},
      {"DuplicateTopLevelKey", head + "name: d\n",
       "campaign.yaml:6:1: name: expected each key once, got \"name\" twice"},
      {"DuplicateNestedKey",
       "name: c\n"
       "datasets:\n"
       "- {source: builtin, name: people, name: updates}\n",
       "campaign.yaml:3:35: datasets[0].name: expected each key once, got "
       "\"name\" twice"},

      // ----- name, datasets, models presence -----
      {"MissingName",
       "datasets:\n"
       "- {source: builtin, name: people}\n"
       "models:\n"
       "- {name: m, backend: local}\n",
       "campaign.yaml:1:1: name: expected a name matching [A-Za-z0-9._-]+, got "
       "nothing"},
      {"NameWithSpace", "name: \"my campaign\"\n",
       "campaign.yaml:1:7: name: expected a name matching [A-Za-z0-9._-]+, got "
       "\"my campaign\""},
      {"NameEmptyString", "name: ''\n",
       "campaign.yaml:1:7: name: expected a name matching [A-Za-z0-9._-]+, got "
       "\"\""},
      {"NameIsList", "name: [a]\n",
       "campaign.yaml:1:7: name: expected a name matching [A-Za-z0-9._-]+, got "
       "a list"},
      {"EmptyDatasets",
       "name: c\n"
       "datasets: []\n"
       "models:\n"
       "- {name: m, backend: local}\n",
       "campaign.yaml:2:11: datasets: expected a non-empty list of datasets, "
       "got an empty list"},
      {"DatasetsIsMapping",
       "name: c\n"
       "datasets: {source: builtin}\n",
       "campaign.yaml:2:11: datasets: expected a non-empty list of datasets, "
       "got a mapping"},
      {"DatasetsEmptyValue", "name: c\ndatasets:\n",
       "campaign.yaml:2:1: datasets: expected a non-empty list of datasets, got "
       "nothing"},
      {"MissingModels",
       "name: c\n"
       "datasets:\n"
       "- {source: builtin, name: people}\n",
       "campaign.yaml:1:1: models: expected a non-empty list of models, got "
       "nothing"},

      // ----- datasets -----
      {"DatasetIsScalar", "name: c\ndatasets:\n- people\n",
       "campaign.yaml:3:3: datasets[0]: expected a mapping, got \"people\""},
      {"UnknownDatasetKey",
       "name: c\n"
       "datasets:\n"
       "- {source: builtin, name: people, sise: 3}\n",
       "campaign.yaml:3:35: datasets[0].sise: expected one of the keys [source, "
       "name, path, size, seed, question_types, label, evaluation_only, comparison], got "
       "\"sise\""},
      {"MissingSource", "name: c\ndatasets:\n- {name: people}\n",
       "campaign.yaml:3:3: datasets[0].source: expected one of [builtin, "
       "finetunebench], got nothing"},
      {"BadSource",
       "name: c\n"
       "datasets:\n"
       "- {source: huggingface, name: people}\n",
       "campaign.yaml:3:12: datasets[0].source: expected one of [builtin, "
       "finetunebench], got \"huggingface\""},
      {"UnknownBuiltinName",
       "name: c\n"
       "datasets:\n"
       "- {source: builtin, name: animals}\n",
       "campaign.yaml:3:27: datasets[0].name: expected one of [people, "
       "updates], got \"animals\""},
      {"UnknownFineTuneBenchName",
       "name: c\n"
       "datasets:\n"
       "- {source: finetunebench, name: people, path: /x}\n",
       "campaign.yaml:3:33: datasets[0].name: expected one of [latest_news, "
       "fictional_people, medical, coding], got \"people\""},
      {"SizeZero",
       "name: c\n"
       "datasets:\n"
       "  - source: builtin\n"
       "    name: people\n"
       "    size: 0\n",
       "campaign.yaml:5:11: datasets[0].size: expected an integer from 1 to "
       "10000, got \"0\""},
      {"SizeTen",
       "name: c\n"
       "datasets:\n"
       "  - source: builtin\n"
       "    name: people\n"
       "    size: ten\n",
       "campaign.yaml:5:11: datasets[0].size: expected an integer from 1 to "
       "10000, got \"ten\""},
      {"SizeQuotedNumber",
       "name: c\n"
       "datasets:\n"
       "  - source: builtin\n"
       "    name: people\n"
       "    size: \"25\"\n",
       "campaign.yaml:5:11: datasets[0].size: expected an integer from 1 to "
       "10000, got \"25\""},
      {"SizeTooLarge",
       "name: c\n"
       "datasets:\n"
       "  - source: builtin\n"
       "    name: updates\n"
       "    size: 10001\n",
       "campaign.yaml:5:11: datasets[0].size: expected an integer from 1 to "
       "10000, got \"10001\""},
      {"NegativeSeed",
       "name: c\n"
       "datasets:\n"
       "  - source: builtin\n"
       "    name: people\n"
       "    seed: -1\n",
       "campaign.yaml:5:11: datasets[0].seed: expected a non-negative integer, "
       "got \"-1\""},
      {"BuiltinWithPath",
       "name: c\n"
       "datasets:\n"
       "- {source: builtin, name: people, path: /x}\n",
       "campaign.yaml:3:41: datasets[0].path: expected no path (builtin "
       "datasets are generated), got \"/x\""},
      {"MissingPathForFineTuneBench",
       "name: c\n"
       "datasets:\n"
       "- {source: finetunebench, name: medical}\n",
       "campaign.yaml:3:3: datasets[0].path: expected a FineTuneBench checkout "
       "directory, got nothing"},
      {"FineTuneBenchWithSize",
       "name: c\n"
       "datasets:\n"
       "- {source: finetunebench, name: medical, path: /x, size: 5}\n",
       "campaign.yaml:3:58: datasets[0].size: expected no size (only builtin "
       "datasets have one), got \"5\""},
      {"UnsetEnvVar",
       "name: c\n"
       "datasets:\n"
       "- {source: builtin, name: people}\n"
       "- {source: builtin, name: updates}\n"
       "- source: finetunebench\n"
       "  name: fictional_people\n"
       "  path: ${FINETUNEBENCH_DIR}\n"
       "models:\n"
       "- {name: m, backend: local}\n",
       "campaign.yaml:7:9: datasets[2].path: environment variable "
       "FINETUNEBENCH_DIR is not set"},
      {"UnclosedEnvReference",
       "name: c\n"
       "datasets:\n"
       "- {source: finetunebench, name: medical, path: \"${HOME/x\"}\n",
       "campaign.yaml:3:48: datasets[0].path: expected ${NAME} references with "
       "NAME matching [A-Za-z_][A-Za-z0-9_]*, got \"${HOME/x\""},
      {"UnquotedEnvReferenceInFlowMapping",
       "name: c\n"
       "datasets:\n"
       "- {source: finetunebench, name: medical, path: ${FINETUNEBENCH_DIR}}\n",
       "campaign.yaml:3:49: YAML syntax error: end of map flow not found "
       "(inside [...] or {...}, quote values that use ${NAME}: \"${NAME}\")"},
      {"BadQuestionType",
       "name: c\n"
       "datasets:\n"
       "- {source: builtin, name: people, question_types: [memorization, "
       "paraphrased]}\n",
       "campaign.yaml:3:66: datasets[0].question_types[1]: expected one of "
       "[memorization, rephrased, date_changed, secondary, comparison, "
       "vignette, code], got \"paraphrased\""},
      {"DuplicateQuestionType",
       "name: c\n"
       "datasets:\n"
       "- {source: builtin, name: people, question_types: [rephrased, "
       "rephrased]}\n",
       "campaign.yaml:3:63: datasets[0].question_types[1]: expected each "
       "question type once, got \"rephrased\" twice"},
      {"QuestionTypesScalar",
       "name: c\n"
       "datasets:\n"
       "- {source: builtin, name: people, question_types: rephrased}\n",
       "campaign.yaml:3:51: datasets[0].question_types: expected a non-empty "
       "list of question types (omit the key for all types), got "
       "\"rephrased\""},
      {"DuplicateDatasetLabelByName",
       "name: c\n"
       "datasets:\n"
       "- {source: builtin, name: people}\n"
       "- {source: builtin, name: people, seed: 2}\n",
       "campaign.yaml:4:27: datasets[1].name: expected a label unique across "
       "datasets (datasets[0] already uses it; set label: to tell them apart), "
       "got \"people\""},
      {"DuplicateDatasetLabelByLabel",
       "name: c\n"
       "datasets:\n"
       "- {source: builtin, name: people}\n"
       "- {source: builtin, name: updates, label: people}\n",
       "campaign.yaml:4:43: datasets[1].label: expected a label unique across "
       "datasets (datasets[0] already uses it; set label: to tell them apart), "
       "got \"people\""},
      {"BadLabel",
       "name: c\n"
       "datasets:\n"
       "- {source: builtin, name: people, label: a/b}\n",
       "campaign.yaml:3:42: datasets[0].label: expected a name matching "
       "[A-Za-z0-9._-]+, got \"a/b\""},

      // ----- models -----
      {"MissingModelName", head.substr(0, head.rfind("- {")) + "- {backend: local}\n",
       "campaign.yaml:5:3: models[0].name: expected a model name, got "
       "nothing"},
      {"MissingBackend", head.substr(0, head.rfind("- {")) + "- {name: m}\n",
       "campaign.yaml:5:3: models[0].backend: expected one of [local, replay, "
       "openai, vertex, together, command, test], got nothing"},
      {"UnknownBackend", head.substr(0, head.rfind("- {")) + "- {name: m, backend: azure}\n",
       "campaign.yaml:5:22: models[0].backend: expected one of [local, replay, "
       "openai, vertex, together, command, test], got \"azure\""},
      {"UnknownModelKey",
       head.substr(0, head.rfind("- {")) + "- {name: m, backend: local, epoch: 3}\n",
       "campaign.yaml:5:29: models[0].epoch: expected one of the keys [name, "
       "backend, options, epochs, learning_rate_multiplier, batch_size, seed], "
       "got \"epoch\""},
      {"OptionsNotMapping",
       head.substr(0, head.rfind("- {")) + "- {name: m, backend: local, options: [1, 2]}\n",
       "campaign.yaml:5:38: models[0].options: expected a mapping, got a "
       "list"},
      {"OptionsDuplicateKey",
       head.substr(0, head.rfind("- {")) + "- {name: m, backend: local, options: {a: 1, a: 2}}\n",
       "campaign.yaml:5:45: models[0].options.a: expected each key once, got "
       "\"a\" twice"},
      // An alias is the anchored node itself, so it reports the anchor's
      // position (yaml-cpp keeps one mark per node).
      {"OptionsAliasContainsItself",
       head.substr(0, head.rfind("- {")) +
           "- {name: m, backend: local, options: &o {self: [*o]}}\n",
       "campaign.yaml:5:38: models[0].options.self[0]: expected a value that "
       "does not contain itself, got an alias of an enclosing collection"},
      {"UnsetEnvVarInOptions",
       head.substr(0, head.rfind("- {")) + "- name: m\n"
                                           "  backend: openai\n"
                                           "  options:\n"
                                           "    endpoints: [{url: \"${API_URL}/v1\"}]\n",
       "campaign.yaml:8:23: models[0].options.endpoints[0].url: environment "
       "variable API_URL is not set"},
      {"ModelEpochsTen",
       "name: c\n"
       "datasets:\n"
       "- {source: builtin, name: people}\n"
       "models:\n"
       "- name: a\n"
       "  backend: local\n"
       "  epochs: [1, 5]\n"
       "- name: b\n"
       "  backend: local\n"
       "  epochs:\n"
       "  - 1\n"
       "  - ten\n",
       "campaign.yaml:12:5: models[1].epochs: expected a list of non-negative "
       "integers (0 = the base model), got \"ten\""},
      {"ModelEpochsQuotedNumber",
       head.substr(0, head.rfind("- {")) + "- {name: m, backend: local, epochs: [\"10\"]}\n",
       "campaign.yaml:5:38: models[0].epochs: expected a list of non-negative "
       "integers (0 = the base model), got \"10\""},

      // ----- grid -----
      {"EpochsNegative", head + "grid: {epochs: [0, -1]}\n",
       "campaign.yaml:6:20: grid.epochs: expected a list of non-negative integers "
       "(0 = the base model), got \"-1\""},
      {"EpochsTooMany", head + "grid: {epochs: 1001}\n",
       "campaign.yaml:6:16: grid.epochs: expected a list of non-negative integers "
       "no greater than 1000, got \"1001\""},
      {"EpochsMapping", head + "grid:\n  epochs: {min: 1, max: 30}\n",
       "campaign.yaml:7:11: grid.epochs: expected a list of non-negative integers "
       "(0 = the base model), got a mapping"},
      {"EpochsNestedList", head + "grid:\n  epochs: [1, [2, 3]]\n",
       "campaign.yaml:7:15: grid.epochs: expected a list of non-negative integers "
       "(0 = the base model), got a list"},
      {"EpochsEmptyList", head + "grid: {epochs: []}\n",
       "campaign.yaml:6:16: grid.epochs: expected a non-empty list of non-negative "
       "integers (0 = the base model), got an empty list"},
      {"EpochsAuto", head + "grid: {epochs: [auto]}\n",
       "campaign.yaml:6:17: grid.epochs: expected a list of non-negative integers "
       "(0 = the base model), got \"auto\""},
      // Epochs 0 where the backend cannot ask an untuned model.
      {"EpochsZeroOnReplayModel",
       head.substr(0, head.rfind("- {")) + "- {name: m, backend: replay, epochs: [0, 1]}\n",
       "campaign.yaml:5:39: models[0].epochs: expected epochs of at least 1 for backend replay "
       "(the recorded responses are of fine-tuned models only; there is no base-model (epochs 0) "
       "column to replay), got \"0\""},
      {"EpochsZeroInGridForReplay",
       head.substr(0, head.rfind("- {")) + "- {name: m, backend: replay}\n" +
           "grid: {epochs: [1, 0]}\n",
       "campaign.yaml:6:20: grid.epochs: expected epochs of at least 1 for models[0] (backend "
       "replay: the recorded responses are of fine-tuned models only; there is no base-model "
       "(epochs 0) column to replay; or set epochs in models[0]), got \"0\""},
      {"EpochsZeroCommandWithoutEndpoint",
       head.substr(0, head.rfind("- {")) +
           "- {name: m, backend: command, options: {train: t, answer: a}, epochs: [0]}\n",
       "campaign.yaml:5:72: models[0].epochs: expected epochs of at least 1 for backend command "
       "(epochs 0 asks the base model through options.endpoint; an answering command needs a "
       "trained model), got \"0\""},
      {"EvaluationOnlyDatasetWithReplay",
       "name: c\n"
       "datasets:\n"
       "- {source: builtin, name: people, evaluation_only: true}\n"
       "models:\n"
       "- {name: m, backend: replay}\n",
       "campaign.yaml:3:52: datasets[0].evaluation_only: expected false while models[0] uses "
       "backend replay (an evaluation-only dataset runs at epochs 0: the recorded responses are "
       "of fine-tuned models only; there is no base-model (epochs 0) column to replay), got "
       "\"true\""},
      {"EvaluationOnlyNotBool",
       "name: c\n"
       "datasets:\n"
       "- {source: builtin, name: people, evaluation_only: yes}\n",
       "campaign.yaml:3:52: datasets[0].evaluation_only: expected true or false, got \"yes\""},
      {"ComparisonUnknown",
       "name: c\n"
       "datasets:\n"
       "- {source: finetunebench, name: fictional_people, path: /d, comparison: first25}\n",
       "campaign.yaml:3:73: datasets[0].comparison: expected one of [all, paper], got "
       "\"first25\""},
      {"ComparisonPaperOnBuiltin",
       "name: c\n"
       "datasets:\n"
       "- {source: builtin, name: people, comparison: paper}\n",
       "campaign.yaml:3:47: datasets[0].comparison: expected all (the paper's comparison set is "
       "fictional_people's), got \"paper\""},
      {"ComparisonPaperOnMedical",
       "name: c\n"
       "datasets:\n"
       "- {source: finetunebench, name: medical, path: /d, comparison: paper}\n",
       "campaign.yaml:3:64: datasets[0].comparison: expected all (the paper's comparison set is "
       "fictional_people's), got \"paper\""},
      {"DuplicateEpochs", head + "grid: {epochs: [1, 5, 1]}\n",
       "campaign.yaml:6:23: grid.epochs: expected a list without duplicates, "
       "got \"1\" twice"},
      {"LearningRateNegative", head + "grid: {learning_rate_multiplier: [1.0, 2, -0.5]}\n",
       "campaign.yaml:6:43: grid.learning_rate_multiplier: expected a list of "
       "positive numbers or auto, got \"-0.5\""},
      {"LearningRateZero", head + "grid: {learning_rate_multiplier: [0]}\n",
       "campaign.yaml:6:35: grid.learning_rate_multiplier: expected a list of "
       "positive numbers or auto, got \"0\""},
      {"LearningRateAutoTwice", head + "grid: {learning_rate_multiplier: [auto, 1, auto]}\n",
       "campaign.yaml:6:44: grid.learning_rate_multiplier: expected a list "
       "without duplicates, got \"auto\" twice"},
      {"LearningRateAutomatic", head + "grid: {learning_rate_multiplier: automatic}\n",
       "campaign.yaml:6:34: grid.learning_rate_multiplier: expected a list of "
       "positive numbers or auto, got \"automatic\""},
      // auto where no provider picks: local and command.
      {"AutoLearningRateInGridForLocal", head + "grid: {learning_rate_multiplier: [1, auto]}\n",
       "campaign.yaml:6:38: grid.learning_rate_multiplier: expected numbers for models[0] "
       "(backend local: the local trainer has no provider default to pick; give numbers; or set "
       "learning_rate_multiplier in models[0]), got \"auto\""},
      {"AutoBatchSizeOnLocalModel",
       head.substr(0, head.rfind("- {")) + "- {name: m, backend: local, batch_size: auto}\n",
       "campaign.yaml:5:41: models[0].batch_size: expected numbers for backend local (the local "
       "trainer has no provider default to pick; give numbers), got \"auto\""},
      {"AutoBatchSizeOnCommandModel",
       head.substr(0, head.rfind("- {")) +
           "- {name: m, backend: command, options: {train: t, answer: a}}\n" +
           "grid: {batch_size: [auto]}\n",
       "campaign.yaml:6:21: grid.batch_size: expected numbers for models[0] (backend command: "
       "your training command has no provider default to pick; give numbers; or set batch_size "
       "in models[0]), got \"auto\""},
      {"BatchSizeZero", head + "grid: {batch_size: [0]}\n",
       "campaign.yaml:6:21: grid.batch_size: expected a list of positive "
       "integers or auto, got \"0\""},
      {"LearningRateDuplicate", head + "grid: {learning_rate_multiplier: [1, 1.0]}\n",
       "campaign.yaml:6:38: grid.learning_rate_multiplier: expected a list "
       "without duplicates, got \"1.0\" twice"},
      {"BatchSizeFraction", head + "grid: {batch_size: 1.5}\n",
       "campaign.yaml:6:20: grid.batch_size: expected a list of positive "
       "integers or auto, got \"1.5\""},
      {"SeedNegative", head + "grid: {seed: [0, -1]}\n",
       "campaign.yaml:6:18: grid.seed: expected a list of non-negative "
       "integers, got \"-1\""},
      {"GridEmptyValue", head + "grid:\n",
       "campaign.yaml:6:1: grid: expected a mapping, got nothing"},
      {"UnknownGridKey", head + "grid:\n  epochs: 1\n  lr: 0.5\n",
       "campaign.yaml:8:3: grid.lr: expected one of the keys [epochs, "
       "learning_rate_multiplier, batch_size, seed], got \"lr\""},

      // ----- judge -----
      {"GraderUnknownKind", head + "judge: {graders: [{kind: rules}, {kind: human}]}\n",
       "campaign.yaml:6:41: judge.graders[1].kind: expected one of [rules, "
       "llm, paper], got \"human\""},
      {"GraderShorthandUnknownKind", head + "judge: {grader: human}\n",
       "campaign.yaml:6:17: judge.grader: expected one of [rules, llm, paper], got "
       "\"human\""},
      {"GraderAndGraders", head + "judge: {grader: rules, graders: [{kind: llm}]}\n",
       "campaign.yaml:6:33: judge.graders: expected either grader or graders, "
       "got both"},
      {"DuplicateGraderName", head + "judge: {graders: [{kind: llm}, {kind: llm}]}\n",
       "campaign.yaml:6:39: judge.graders[1].kind: expected a grader name "
       "unique within the judge (set name: to tell graders apart), got "
       "\"llm\""},
      {"JudgeBatchSizeZero", head + "judge: {batch_size: 0}\n",
       "campaign.yaml:6:21: judge.batch_size: expected a positive integer, got "
       "\"0\""},

      // ----- budget, retry, limits -----
      {"BudgetUsdNegative", head + "budget: {usd: -5}\n",
       "campaign.yaml:6:15: budget.usd: expected a positive number, got "
       "\"-5\""},
      {"BudgetPerCellAboveTotal", head + "budget: {usd: 10, per_cell_usd: 20}\n",
       "campaign.yaml:6:33: budget.per_cell_usd: expected a number no greater "
       "than budget.usd (10), got \"20\""},
      {"RetryJitterTwo", head + "retry: {jitter: 2}\n",
       "campaign.yaml:6:17: retry.jitter: expected a number from 0 to 1, got "
       "\"2\""},
      {"RetryMaxAttemptsZero", head + "retry: {max_attempts: 0}\n",
       "campaign.yaml:6:23: retry.max_attempts: expected a positive integer, "
       "got \"0\""},
      {"RetryMultiplierBelowOne", head + "retry: {backoff_multiplier: 0.5}\n",
       "campaign.yaml:6:29: retry.backoff_multiplier: expected a number from 1 "
       "to 1000, got \"0.5\""},
      // Issue 17, finding 12: durations were only required to be positive,
      // so 1e-300 and 1e300 were accepted (and overflowed the scheduler's
      // millisecond arithmetic).
      {"RetryLeaseTiny", head + "retry: {lease_seconds: 1e-300}\n",
       "campaign.yaml:6:24: retry.lease_seconds: expected a number of seconds "
       "from 0.5 to 86400, got \"1e-300\""},
      {"RetryLeaseHuge", head + "retry: {lease_seconds: 1e300}\n",
       "campaign.yaml:6:24: retry.lease_seconds: expected a number of seconds "
       "from 0.5 to 86400, got \"1e300\""},
      {"RetryLeaseInfinite", head + "retry: {lease_seconds: .inf}\n",
       "campaign.yaml:6:24: retry.lease_seconds: expected a number of seconds "
       "from 0.5 to 86400, got \".inf\""},
      {"RetryInitialBackoffHuge",
       head + "retry: {initial_backoff_seconds: 1e300, max_backoff_seconds: 1e300}\n",
       "campaign.yaml:6:34: retry.initial_backoff_seconds: expected a number of "
       "seconds from 0.001 to 86400, got \"1e300\""},
      {"RetryMaxBackoffTiny", head + "retry: {max_backoff_seconds: 1e-300}\n",
       "campaign.yaml:6:30: retry.max_backoff_seconds: expected a number of "
       "seconds from 0.001 to 86400, got \"1e-300\""},
      {"RetryMultiplierHuge", head + "retry: {backoff_multiplier: 1e300}\n",
       "campaign.yaml:6:29: retry.backoff_multiplier: expected a number from 1 "
       "to 1000, got \"1e300\""},
      {"RetryMaxBelowInitial",
       head + "retry: {initial_backoff_seconds: 10, max_backoff_seconds: 5}\n",
       "campaign.yaml:6:59: retry.max_backoff_seconds: expected a number no "
       "less than retry.initial_backoff_seconds (10), got \"5\""},
      {"RetryInitialAboveDefaultMax", head + "retry: {initial_backoff_seconds: 120}\n",
       "campaign.yaml:6:34: retry.initial_backoff_seconds: expected a number "
       "no greater than retry.max_backoff_seconds (60), got \"120\""},
      {"LimitsUnknownBackend", head + "limits:\n  azure: {}\n",
       "campaign.yaml:7:3: limits.azure: expected a backend, one of [local, "
       "replay, openai, vertex, together, command, test], got \"azure\""},
      // Terminal escape codes in a value are shown escaped, never raw
      // (ESC [2J would clear the terminal the error is printed on).
      {"LimitsBackendWithTerminalEscape", head + "limits:\n  \"\\e[2Jx\\a\": {}\n",
       "campaign.yaml:7:3: limits.\\x1b[2Jx\\x07: expected a backend, one of [local, "
       "replay, openai, vertex, together, command, test], got \"\\x1b[2Jx\\x07\""},
      {"LimitsNegative", head + "limits:\n  openai: {max_concurrent_tune: -1}\n",
       "campaign.yaml:7:33: limits.openai.max_concurrent_tune: expected a "
       "non-negative integer (0 means unlimited), got \"-1\""},
  };
}

class SpecErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(SpecErrorTest, ExactMessage) {
  const ErrorCase& c = GetParam();
  absl::StatusOr<v1::CampaignSpec> spec = ParseCampaignSpec(c.yaml, "campaign.yaml", ErrorEnv());
  EXPECT_THAT(spec, StatusIs(absl::StatusCode::kInvalidArgument, c.error))
      << "parsed:\n" << (spec.ok() ? spec->DebugString() : "");
}

INSTANTIATE_TEST_SUITE_P(Malformed, SpecErrorTest, ::testing::ValuesIn(ErrorCases()),
                         [](const ::testing::TestParamInfo<ErrorCase>& info) {
                           return info.param.test_name;
                         });

// ---------------------------------------------------------------------------
// Well-formed specs.

TEST(SpecTest, FullSpecRoundTrips) {
  constexpr char kYaml[] = R"yaml(
name: full-1.0
description: Every field, spelled out
datasets:
  - {source: builtin, name: people, size: 10, seed: 7, label: people-small}
  - source: finetunebench
    name: latest_news
    path: ${FINETUNEBENCH_DIR}/checkout
    question_types: [memorization, date_changed]
models:
  - name: tiny
    backend: local
    options:
      layers: 2
      width: 128
      dropout: 0.1
      tie_embeddings: true
      tokenizer: "bytes"
      version: "3"
      missing: ~
      nested: {schedule: [cosine, 100, {warmup: 1e2}], enabled: False}
    epochs: [1, 5]
    seed: 3
  - name: gpt-4o-mini-2024-07-18
    backend: openai
    options: {base_url: "https://api.openai.com/v1"}
grid:
  epochs: [1, 5, 10, 30]
  learning_rate_multiplier: [0.5, 1, 2.0]
  batch_size: [4, 8]
  seed: [0, 1]
judge:
  graders:
    - {kind: rules}
    - {kind: llm, name: gpt4o-judge, options: {model: gpt-4o, temperature: 0}}
  batch_size: 50
budget: {usd: 250, per_cell_usd: 20.5}
retry: {max_attempts: 5, initial_backoff_seconds: 0.5, max_backoff_seconds: 30,
        backoff_multiplier: 1.5, jitter: 0, lease_seconds: 120}
limits:
  openai: {max_concurrent_tune: 3, requests_per_minute: 500, tokens_per_minute: 200000}
  vertex: {max_concurrent_judge: 2}
)yaml";
  absl::StatusOr<v1::CampaignSpec> spec = ParseCampaignSpec(kYaml, "full.yaml", FullEnv());
  ASSERT_TRUE(spec.ok()) << spec.status();

  ExpectProtoEq(*spec, TextProto(R"pb(
    name: "full-1.0"
    description: "Every field, spelled out"
    datasets {
      name: "people"
      source: DATASET_SOURCE_BUILTIN
      size: 10
      seed: 7
      label: "people-small"
    }
    datasets {
      name: "latest_news"
      source: DATASET_SOURCE_FINETUNEBENCH
      path: "/data/FineTuneBench/checkout"
      question_types: "memorization"
      question_types: "date_changed"
      label: "latest_news"
    }
    models {
      name: "tiny"
      backend: "local"
      options {
        fields {
          key: "layers"
          value { number_value: 2 }
        }
        fields {
          key: "width"
          value { number_value: 128 }
        }
        fields {
          key: "dropout"
          value { number_value: 0.1 }
        }
        fields {
          key: "tie_embeddings"
          value { bool_value: true }
        }
        fields {
          key: "tokenizer"
          value { string_value: "bytes" }
        }
        fields {
          key: "version"
          value { string_value: "3" }
        }
        fields {
          key: "missing"
          value { null_value: NULL_VALUE }
        }
        fields {
          key: "nested"
          value {
            struct_value {
              fields {
                key: "schedule"
                value {
                  list_value {
                    values { string_value: "cosine" }
                    values { number_value: 100 }
                    values {
                      struct_value {
                        fields {
                          key: "warmup"
                          value { number_value: 100 }
                        }
                      }
                    }
                  }
                }
              }
              fields {
                key: "enabled"
                value { bool_value: false }
              }
            }
          }
        }
      }
      grid { epochs: 1 epochs: 5 seed: 3 }
    }
    models {
      name: "gpt-4o-mini-2024-07-18"
      backend: "openai"
      options {
        fields {
          key: "base_url"
          value { string_value: "https://api.openai.com/v1" }
        }
      }
    }
    grid {
      epochs: [ 1, 5, 10, 30 ]
      learning_rate_multiplier: [ 0.5, 1, 2 ]
      batch_size: [ 4, 8 ]
      seed: [ 0, 1 ]
    }
    judge {
      graders { kind: "rules" name: "rules" }
      graders {
        kind: "llm"
        name: "gpt4o-judge"
        options {
          fields {
            key: "model"
            value { string_value: "gpt-4o" }
          }
          fields {
            key: "temperature"
            value { number_value: 0 }
          }
        }
      }
      batch_size: 50
    }
    budget { usd: 250 per_cell_usd: 20.5 }
    retry {
      max_attempts: 5
      initial_backoff_seconds: 0.5
      max_backoff_seconds: 30
      backoff_multiplier: 1.5
      jitter: 0
      lease_seconds: 120
    }
    limits {
      key: "openai"
      value { max_concurrent_tune: 3 requests_per_minute: 500 tokens_per_minute: 200000 }
    }
    limits {
      key: "vertex"
      value { max_concurrent_judge: 2 }
    }
  )pb"));

  // The same facts, asserted directly on the fields users care most about.
  const v1::ModelSpec& tiny = spec->models(0);
  EXPECT_THAT(tiny.grid().epochs(), ElementsAre(1, 5));
  EXPECT_TRUE(tiny.grid().learning_rate_multiplier().empty());
  EXPECT_TRUE(tiny.grid().batch_size().empty());
  EXPECT_THAT(tiny.grid().seed(), ElementsAre(3));
  EXPECT_EQ(tiny.options().fields().at("width").number_value(), 128);
  EXPECT_EQ(tiny.options().fields().at("version").string_value(), "3");
  EXPECT_TRUE(tiny.options().fields().at("tie_embeddings").bool_value());
  EXPECT_FALSE(spec->models(1).has_grid());
  EXPECT_TRUE(spec->budget().has_usd());
  EXPECT_EQ(spec->budget().usd(), 250);
}

TEST(SpecTest, MinimalSpecGetsDefaults) {
  absl::StatusOr<v1::CampaignSpec> spec = ParseCampaignSpec(
      "name: c\n"
      "datasets:\n"
      "- {source: builtin, name: people}\n"
      "- {source: builtin, name: updates}\n"
      "models:\n"
      "- {name: m, backend: test}\n",
      "min.yaml", FullEnv());
  ASSERT_TRUE(spec.ok()) << spec.status();
  ExpectProtoEq(*spec, TextProto(R"pb(
    name: "c"
    datasets { name: "people" source: DATASET_SOURCE_BUILTIN size: 25 seed: 0 label: "people" }
    datasets { name: "updates" source: DATASET_SOURCE_BUILTIN size: 40 seed: 0 label: "updates" }
    models { name: "m" backend: "test" }
    grid { epochs: 1 learning_rate_multiplier: 1.0 batch_size: 1 seed: 0 }
    judge {
      graders { kind: "rules" name: "rules" }
      batch_size: 100
    }
    retry {
      max_attempts: 3
      initial_backoff_seconds: 1
      max_backoff_seconds: 60
      backoff_multiplier: 2
      jitter: 0.2
      lease_seconds: 60
    }
  )pb"));
  EXPECT_FALSE(spec->budget().has_usd());
  EXPECT_FALSE(spec->budget().has_per_cell_usd());
  EXPECT_TRUE(spec->limits().empty());
}

TEST(SpecTest, PartialSectionsKeepOtherDefaults) {
  absl::StatusOr<v1::CampaignSpec> spec = ParseCampaignSpec(std::string(kHead) +
                                                                "grid: {epochs: [2, 4]}\n"
                                                                "judge: {batch_size: 10}\n"
                                                                "retry: {jitter: 1}\n"
                                                                "budget: {per_cell_usd: 3}\n",
                                                            "p.yaml", FullEnv());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_THAT(spec->grid().epochs(), ElementsAre(2, 4));
  EXPECT_THAT(spec->grid().learning_rate_multiplier(), ElementsAre(1.0));
  EXPECT_THAT(spec->grid().batch_size(), ElementsAre(1));
  EXPECT_THAT(spec->grid().seed(), ElementsAre(0));
  ASSERT_EQ(spec->judge().graders_size(), 1);
  EXPECT_EQ(spec->judge().graders(0).kind(), "rules");
  EXPECT_EQ(spec->judge().batch_size(), 10);
  EXPECT_EQ(spec->retry().jitter(), 1.0);
  EXPECT_EQ(spec->retry().max_attempts(), 3);
  EXPECT_EQ(spec->retry().lease_seconds(), 60);
  EXPECT_FALSE(spec->budget().has_usd());
  EXPECT_EQ(spec->budget().per_cell_usd(), 3);
}

// Epochs 0 (the base model) and `auto` (stored as 0) where the backends
// take them; a local model's own numbers override an auto grid.
TEST(SpecTest, BaseModelEpochsAndAutoHyperparameters) {
  absl::StatusOr<v1::CampaignSpec> spec = ParseCampaignSpec(
      "name: c\n"
      "datasets:\n"
      "- {source: finetunebench, name: coding, path: /d, evaluation_only: true}\n"
      "- {source: finetunebench, name: fictional_people, path: /d, comparison: paper}\n"
      "- {source: finetunebench, name: medical, path: /d, comparison: all}\n"
      "models:\n"
      "- {name: gpt, backend: openai}\n"
      "- {name: gemini, backend: vertex}\n"
      "- {name: l, backend: local, learning_rate_multiplier: 1, batch_size: [4, 8]}\n"
      "- {name: c, backend: command, options: {train: t, endpoint: {base_url: u, model: m}}, "
      "learning_rate_multiplier: 2, batch_size: 1}\n"
      "grid: {epochs: [0, 1, 5, 10, 30], learning_rate_multiplier: [auto], batch_size: auto}\n",
      "campaign.yaml", ErrorEnv());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_THAT(spec->grid().epochs(), ElementsAre(0, 1, 5, 10, 30));
  EXPECT_THAT(spec->grid().learning_rate_multiplier(), ElementsAre(0.0));
  EXPECT_THAT(spec->grid().batch_size(), ElementsAre(0u));
  EXPECT_THAT(spec->models(2).grid().batch_size(), ElementsAre(4u, 8u));
  EXPECT_TRUE(spec->datasets(0).evaluation_only());
  EXPECT_FALSE(spec->datasets(1).evaluation_only());
  EXPECT_EQ(spec->datasets(1).comparison(), "paper");
  EXPECT_EQ(spec->datasets(2).comparison(), "");  // all
}

TEST(SpecTest, ScalarAxisIsOneElementList) {
  absl::StatusOr<v1::CampaignSpec> spec = ParseCampaignSpec(
      "name: c\n"
      "datasets:\n"
      "- {source: builtin, name: people}\n"
      "models:\n"
      "- {name: m, backend: local, epochs: 7, learning_rate_multiplier: 3}\n"
      "grid: {epochs: 30, learning_rate_multiplier: 0.25, batch_size: 16, "
      "seed: 42}\n",
      "s.yaml", FullEnv());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_THAT(spec->grid().epochs(), ElementsAre(30));
  EXPECT_THAT(spec->grid().learning_rate_multiplier(), ElementsAre(0.25));
  EXPECT_THAT(spec->grid().batch_size(), ElementsAre(16));
  EXPECT_THAT(spec->grid().seed(), ElementsAre(42));
  EXPECT_THAT(spec->models(0).grid().epochs(), ElementsAre(7));
  EXPECT_THAT(spec->models(0).grid().learning_rate_multiplier(), ElementsAre(3.0));
}

// Issue 17, finding 8: the expanded spec is stored and served, so a
// variable whose name looks like a secret is refused, located, with the way
// out (the backend's api_key_env), and its value never appears.
TEST(SpecTest, SecretVariablesAreNotExpanded) {
  const std::string key = "sk-spec-test-0123456789";
  const EnvLookup env = FakeEnv({{"OPENAI_API_KEY", key},
                                 {"FTB_AUTH_TOKEN", key},
                                 {"DB_PASSWORD", key},
                                 {"MY_SECRET_THING", key},
                                 {"MODEL_TAG", "v1"}});
  const std::string head =
      "name: c\n"
      "datasets:\n"
      "- {source: builtin, name: people}\n"
      "models:\n"
      "- name: m-${MODEL_TAG}\n"
      "  backend: openai\n"
      "  options:\n";
  // Control: an ordinary variable expands.
  absl::StatusOr<v1::CampaignSpec> ok =
      ParseCampaignSpec(head + "    note: plain\n", "s.yaml", env);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->models(0).name(), "m-v1");
  for (const std::string name :
       {"OPENAI_API_KEY", "FTB_AUTH_TOKEN", "DB_PASSWORD", "MY_SECRET_THING", "openai_api_key"}) {
    absl::StatusOr<v1::CampaignSpec> spec =
        ParseCampaignSpec(head + "    api_key: \"x-${" + name + "}\"\n", "s.yaml", env);
    ASSERT_THAT(spec, StatusIs(absl::StatusCode::kInvalidArgument))
        << name << " was expanded";
    EXPECT_EQ(std::string(spec.status().message()),
              "s.yaml:8:14: models[0].options.api_key: ${" + name +
                  "} names a secret (a name containing KEY, TOKEN, SECRET, PASSWORD, PASSWD, "
                  "CREDENTIAL or COOKIE); ftb does not expand it, because the expanded spec is "
                  "stored and served by the coordinator. Give the variable's name to the "
                  "backend instead (e.g. api_key_env: " +
                  name + "), which the worker reads from its own environment");
    EXPECT_EQ(std::string(spec.status().message()).find(key), std::string::npos);
  }
  // $${...} stays literal text, not a reference: allowed.
  absl::StatusOr<v1::CampaignSpec> literal =
      ParseCampaignSpec(head + "    note: \"$${OPENAI_API_KEY}\"\n", "s.yaml", env);
  ASSERT_TRUE(literal.ok()) << literal.status();
}

TEST(SpecTest, EnvironmentExpansion) {
  absl::StatusOr<v1::CampaignSpec> spec = ParseCampaignSpec(
      "name: c-${HOME_TAG}\n"
      "description: 'literal $${HOME}, value ${HOME}, twice ${HOME}${HOME}, "
      "empty [${EMPTY}], lone $ and $$ and ${'\n"
      "datasets:\n"
      "- {source: finetunebench, name: coding, path: \"${FINETUNEBENCH_DIR}\"}\n"
      "models:\n"
      "- name: m\n"
      "  backend: command\n"
      "  options:\n"
      "    argv: [\"${HOME}/bin/tune\", \"--dir=$${DIR}\"]\n"
      "    env: {HOME: \"${HOME}\"}\n"
      "    port: 8080\n",
      "e.yaml",
      FakeEnv({{"HOME", "/home/u"},
               {"HOME_TAG", "u1"},
               {"EMPTY", ""},
               {"FINETUNEBENCH_DIR", "/data/ftb"}}));
  // A trailing bare "${" is a malformed reference.
  EXPECT_THAT(spec, StatusIs(absl::StatusCode::kInvalidArgument,
                             "e.yaml:2:14: description: expected ${NAME} references with NAME "
                             "matching [A-Za-z_][A-Za-z0-9_]*, got \"literal $${HOME}, value "
                             "${HOME}, twice ${HOME}${HOME}, empty [${EMPTY}], lone $ ...\""));

  spec = ParseCampaignSpec(
      "name: c-${HOME_TAG}\n"
      "description: 'literal $${HOME}, value ${HOME}, twice ${HOME}${HOME}, "
      "empty [${EMPTY}], lone $ and $$ and $'\n"
      "datasets:\n"
      "- {source: finetunebench, name: coding, path: \"${FINETUNEBENCH_DIR}\"}\n"
      "models:\n"
      "- name: m\n"
      "  backend: command\n"
      "  options:\n"
      "    argv: [\"${HOME}/bin/tune\", \"--dir=$${DIR}\"]\n"
      "    env: {HOME: \"${HOME}\"}\n"
      "    port: 8080\n",
      "e.yaml",
      FakeEnv({{"HOME", "/home/u"},
               {"HOME_TAG", "u1"},
               {"EMPTY", ""},
               {"FINETUNEBENCH_DIR", "/data/ftb"}}));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name(), "c-u1");
  EXPECT_EQ(spec->description(),
            "literal ${HOME}, value /home/u, twice /home/u/home/u, empty [], "
            "lone $ and $$ and $");
  EXPECT_EQ(spec->datasets(0).path(), "/data/ftb");
  const auto& options = spec->models(0).options().fields();
  const auto& argv = options.at("argv").list_value();
  ASSERT_EQ(argv.values_size(), 2);
  EXPECT_EQ(argv.values(0).string_value(), "/home/u/bin/tune");
  EXPECT_EQ(argv.values(1).string_value(), "--dir=${DIR}");
  EXPECT_EQ(options.at("env").struct_value().fields().at("HOME").string_value(), "/home/u");
  EXPECT_EQ(options.at("port").number_value(), 8080);
}

TEST(SpecTest, EnvVarExpandingToEmptyPathIsAnError) {
  absl::StatusOr<v1::CampaignSpec> spec = ParseCampaignSpec(
      "name: c\n"
      "datasets:\n"
      "- {source: finetunebench, name: coding, path: \"${EMPTY}\"}\n",
      "campaign.yaml", FullEnv());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(spec.status().message()),
            "campaign.yaml:3:47: datasets[0].path: expected a FineTuneBench "
            "checkout directory, got \"\"");
}

TEST(SpecTest, NullEnvLookupTreatsEveryVariableAsUnset) {
  absl::StatusOr<v1::CampaignSpec> spec = ParseCampaignSpec("name: ${X}\n", "n.yaml", EnvLookup());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(spec.status().message()),
            "n.yaml:1:7: name: environment variable X is not set");
}

TEST(SpecTest, ProcessEnvReadsTheEnvironment) {
  ASSERT_EQ(setenv("FTB_SPEC_TEST_VAR", "value-1", 1), 0);
  ASSERT_EQ(unsetenv("FTB_SPEC_TEST_UNSET"), 0);
  EnvLookup env = ProcessEnv();
  EXPECT_EQ(env("FTB_SPEC_TEST_VAR"), std::optional<std::string>("value-1"));
  EXPECT_EQ(env("FTB_SPEC_TEST_UNSET"), std::nullopt);
}

TEST(SpecTest, RecordingEnvCollectsWhatTheSpecUsesAndMapEnvServesIt) {
  std::map<std::string, std::string> used;
  const std::string yaml =
      "name: c\n"
      "datasets:\n"
      "- {source: builtin, name: people}\n"
      "models:\n"
      "- {name: \"${MODEL_NAME}\", backend: test}\n";
  auto spec = ParseCampaignSpec(
      yaml, "c.yaml",
      RecordingEnv(MapEnv({{"MODEL_NAME", "m1"}, {"UNUSED", "secret"}}), &used));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(used, (std::map<std::string, std::string>{{"MODEL_NAME", "m1"}}));
  // What was recorded is all a later parse needs.
  auto again = ParseCampaignSpec(yaml, "c.yaml", MapEnv(used));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->models(0).name(), "m1");
  EXPECT_EQ(std::string(ParseCampaignSpec(yaml, "c.yaml", MapEnv({})).status().message()),
            "c.yaml:5:10: models[0].name: environment variable MODEL_NAME is not set");
}

TEST(SpecTest, OptionsAliasBombIsRejected) {
  // 10 levels of 10 aliases each would be 10^10 values.
  std::string yaml =
      "name: c\n"
      "datasets:\n"
      "- {source: builtin, name: people}\n"
      "models:\n"
      "- name: m\n"
      "  backend: local\n"
      "  options:\n"
      "    l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 10; ++i) {
    const std::string prev = "*l" + std::to_string(i - 1);
    yaml += "    l" + std::to_string(i) + ": &l" + std::to_string(i) + " [";
    for (int j = 0; j < 10; ++j) yaml += (j > 0 ? ", " : "") + prev;
    yaml += "]\n";
  }
  absl::StatusOr<v1::CampaignSpec> spec = ParseCampaignSpec(yaml, "bomb.yaml", FullEnv());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(spec.status().message()),
              HasSubstr("expected options with at most 100000 values in all, "
                        "got more (check aliases)"));
}

TEST(SpecTest, AnchorsAndAliasesAreExpanded) {
  absl::StatusOr<v1::CampaignSpec> spec = ParseCampaignSpec(
      "name: c\n"
      "datasets:\n"
      "- {source: builtin, name: people}\n"
      "models:\n"
      "- {name: a, backend: local, epochs: &short [1, 2]}\n"
      "- {name: b, backend: local, epochs: *short}\n",
      "a.yaml", FullEnv());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_THAT(spec->models(1).grid().epochs(), ElementsAre(1, 2));
}

// ---------------------------------------------------------------------------
// Files.

std::filesystem::path SourceDir() {
  const char* dir = std::getenv("FTB_SOURCE_DIR");
  if (dir != nullptr && *dir != '\0') return dir;
  return std::filesystem::current_path();
}

TEST(SpecFilesTest, EveryShippedCampaignParses) {
  const std::filesystem::path dir = SourceDir() / "campaigns";
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".yaml") files.push_back(entry.path());
  }
  ASSERT_GE(files.size(), 2u);
  for (const std::filesystem::path& file : files) {
    SCOPED_TRACE(file.string());
    std::ifstream in(file);
    std::string yaml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    absl::StatusOr<v1::CampaignSpec> spec = ParseCampaignSpec(
        yaml, file.filename().string(), FakeEnv({{"FINETUNEBENCH_DIR", "/data/FineTuneBench"},
                                                     {"OPENAI_BASE_URL", "http://127.0.0.1:1/v1"},
                                                     {"VERTEX_PROJECT", "my-project"},
                                                     {"VERTEX_DATA_URI", "gs://bucket/data"},
                                                     {"VERTEX_BASE_URL", "http://127.0.0.1:1"}}));
    ASSERT_TRUE(spec.ok()) << spec.status();
    EXPECT_EQ(spec->name(), file.stem().string());
  }
}

// Every complete example in docs/spec.md (a ```yaml block starting with
// "name:") parses.
TEST(SpecFilesTest, DocumentedExamplesParse) {
  std::ifstream in(SourceDir() / "docs" / "spec.md");
  ASSERT_TRUE(in) << "docs/spec.md not found under " << SourceDir();
  std::vector<std::string> blocks;
  std::string line;
  std::optional<std::string> block;
  while (std::getline(in, line)) {
    if (!block.has_value() && line == "```yaml") {
      block.emplace();
    } else if (block.has_value() && line == "```") {
      if (block->rfind("name:", 0) == 0) blocks.push_back(*block);
      block.reset();
    } else if (block.has_value()) {
      *block += line + "\n";
    }
  }
  ASSERT_GE(blocks.size(), 1u);
  for (const std::string& yaml : blocks) {
    absl::StatusOr<v1::CampaignSpec> spec =
        ParseCampaignSpec(yaml, "spec.md", FakeEnv({{"FINETUNEBENCH_DIR", "/data/FineTuneBench"},
                                                     {"OPENAI_BASE_URL", "http://127.0.0.1:1/v1"},
                                                     {"VERTEX_PROJECT", "my-project"},
                                                     {"VERTEX_DATA_URI", "gs://bucket/data"},
                                                     {"VERTEX_BASE_URL", "http://127.0.0.1:1"}}));
    EXPECT_TRUE(spec.ok()) << spec.status() << "\n" << yaml;
  }
}

TEST(SpecFilesTest, DefaultCampaignIsTheDocumentedOne) {
  absl::StatusOr<v1::CampaignSpec> spec = ParseCampaignSpec(
      [] {
        std::ifstream in(SourceDir() / "campaigns" / "default.yaml");
        return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      }(),
      "default.yaml", FakeEnv({}));
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->datasets_size(), 2);
  EXPECT_EQ(spec->datasets(0).name(), "people");
  EXPECT_EQ(spec->datasets(0).size(), 25);
  EXPECT_EQ(spec->datasets(1).name(), "updates");
  EXPECT_EQ(spec->datasets(1).size(), 40);
  ASSERT_EQ(spec->models_size(), 1);
  EXPECT_EQ(spec->models(0).backend(), "local");
  const auto& options = spec->models(0).options().fields();
  EXPECT_EQ(options.at("layers").number_value(), 2);
  EXPECT_EQ(options.at("width").number_value(), 128);
  EXPECT_EQ(options.at("heads").number_value(), 4);
  EXPECT_EQ(options.at("max_new_tokens").number_value(), 8);
  EXPECT_THAT(spec->grid().epochs(), ElementsAre(0, 1, 5, 10, 30));
  EXPECT_THAT(spec->grid().learning_rate_multiplier(), ElementsAre(1.0));
  EXPECT_THAT(spec->grid().batch_size(), ElementsAre(8));
  EXPECT_THAT(spec->grid().seed(), ElementsAre(0));
  ASSERT_EQ(spec->judge().graders_size(), 1);
  EXPECT_EQ(spec->judge().graders(0).kind(), "rules");
}

TEST(SpecFilesTest, PaperCampaignNeedsFineTuneBenchDir) {
  const std::filesystem::path file = SourceDir() / "campaigns" / "finetunebench-paper.yaml";
  std::ifstream in(file);
  std::string yaml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  absl::StatusOr<v1::CampaignSpec> spec = ParseCampaignSpec(yaml, "paper.yaml", FakeEnv({}));
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(spec.status().message()),
              HasSubstr(": datasets[0].path: environment variable "
                        "FINETUNEBENCH_DIR is not set"));

  // The Vertex models need a project and a training-data URI (as in
  // vertex-example.yaml): without them every Vertex cell failed at run time.
  spec = ParseCampaignSpec(yaml, "paper.yaml",
                           FakeEnv({{"FINETUNEBENCH_DIR", "/ftb"},
                                    {"VERTEX_PROJECT", "p"},
                                    {"VERTEX_DATA_URI", "gs://b/ftb/{dataset}.jsonl"}}));
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->datasets_size(), 4);
  for (const v1::DatasetSpec& d : spec->datasets()) {
    EXPECT_EQ(d.source(), v1::DATASET_SOURCE_FINETUNEBENCH);
    EXPECT_EQ(d.path(), "/ftb");
  }
  std::vector<std::string> models;
  for (const v1::ModelSpec& m : spec->models()) {
    models.push_back(m.name() + "@" + m.backend());
  }
  EXPECT_THAT(models, ElementsAre("gpt-4o-mini-2024-07-18@openai", "gpt-3.5-turbo-0125@openai",
                                  "gpt-4o-2024-08-06@openai", "gemini-1.5-flash-002@vertex",
                                  "gemini-1.5-pro-002@vertex"));
  // The base-model baseline and the providers' default hyperparameters.
  EXPECT_THAT(spec->grid().epochs(), ElementsAre(0, 1, 5, 10, 30));
  EXPECT_THAT(spec->grid().learning_rate_multiplier(), ElementsAre(0.0));  // auto
  EXPECT_THAT(spec->grid().batch_size(), ElementsAre(0u));                 // auto
  EXPECT_EQ(spec->datasets(1).comparison(), "paper");
  EXPECT_TRUE(spec->datasets(3).evaluation_only());  // coding: no training file in every copy
}

class LoadFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("ftb_spec_test_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(LoadFileTest, MissingFileIsNotFound) {
  absl::StatusOr<v1::CampaignSpec> spec = LoadCampaignSpecFile((dir_ / "absent.yaml").string());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(spec.status().message()), HasSubstr("absent.yaml"));
}

TEST_F(LoadFileTest, ErrorsNameTheFileAsGiven) {
  const std::string path = (dir_ / "bad.yaml").string();
  std::ofstream(path) << "name: c\nmodels: 3\n";
  absl::StatusOr<v1::CampaignSpec> spec = LoadCampaignSpecFile(path);
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(spec.status().message()),
            path +
                ":1:1: datasets: expected a non-empty list of datasets, got "
                "nothing");
}

TEST_F(LoadFileTest, ParsesWithTheProcessEnvironment) {
  ASSERT_EQ(setenv("FTB_SPEC_TEST_DIR", "/from/env", 1), 0);
  const std::string path = (dir_ / "ok.yaml").string();
  std::ofstream(path) << "name: ok\n"
                         "datasets:\n"
                         "- {source: finetunebench, name: medical, "
                         "path: \"${FTB_SPEC_TEST_DIR}\"}\n"
                         "models:\n"
                         "- {name: m, backend: replay}\n";
  absl::StatusOr<v1::CampaignSpec> spec = LoadCampaignSpecFile(path);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->datasets(0).path(), "/from/env");
}

}  // namespace
}  // namespace ftb::spec

namespace ftb::spec {
namespace {

using ::testing::ElementsAre;

// ---------------------------------------------------------------------------
// Backend option checks (SetModelOptionsValidator): the backend's message,
// located at the option it names. The real backends' checks are exercised
// through the ftb binary in cli_test.sh.

class OptionsValidatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetModelOptionsValidator(
        [this](std::string_view backend, const google::protobuf::Struct& options) -> absl::Status {
          seen_backends_.push_back(std::string(backend));
          for (const auto& [key, value] : options.fields()) {
            if (key != "layers" && key != "endpoint") {
              return absl::InvalidArgumentError(
                  "local backend: unknown option model.options." + key +
                  "; valid options: endpoint, layers");
            }
            if (key == "layers" && value.kind_case() != google::protobuf::Value::kNumberValue) {
              return absl::InvalidArgumentError(
                  "local backend: model.options.layers: expected an integer");
            }
            if (key == "endpoint") {
              for (const auto& [k, unused] : value.struct_value().fields()) {
                if (k != "model") {
                  return absl::InvalidArgumentError("backend: unknown model option \"" + k + "\"");
                }
              }
            }
          }
          if (backend == "test") return absl::NotFoundError("unknown backend \"test\"");
          return absl::OkStatus();
        });
  }
  void TearDown() override { SetModelOptionsValidator(nullptr); }

  absl::StatusOr<v1::CampaignSpec> Parse(const std::string& models) {
    return ParseCampaignSpec(
        "name: c\ndatasets:\n- {source: builtin, name: people}\nmodels:\n" + models,
        "campaign.yaml", FullEnv());
  }

  std::vector<std::string> seen_backends_;
};

TEST_F(OptionsValidatorTest, UnknownKeyIsLocatedAtItsLine) {
  auto spec = Parse(
      "- name: m\n"
      "  backend: local\n"
      "  options:\n"
      "    layers: 2\n"
      "    layerz: 2\n");
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(spec.status().message(),
            "campaign.yaml:9:5: models[0].options.layerz: local backend: unknown option "
            "model.options.layerz; valid options: endpoint, layers");
  EXPECT_THAT(seen_backends_, ElementsAre("local"));
}

TEST_F(OptionsValidatorTest, IllTypedValueIsLocatedAtItsKey) {
  auto spec = Parse("- {name: m, backend: local, options: {layers: two}}\n");
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().message(),
            "campaign.yaml:5:39: models[0].options.layers: local backend: "
            "model.options.layers: expected an integer");
}

TEST_F(OptionsValidatorTest, NestedKeyQuotedInTheMessage) {
  auto spec = Parse(
      "- {name: a, backend: local}\n"
      "- name: m\n"
      "  backend: local\n"
      "  options:\n"
      "    endpoint:\n"
      "      modle: x\n");
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().message(),
            "campaign.yaml:10:7: models[1].options.endpoint.modle: backend: unknown model "
            "option \"modle\"");
}

TEST_F(OptionsValidatorTest, NoOptionsAndUnknownBackendsPass) {
  EXPECT_TRUE(Parse("- {name: m, backend: local}\n").ok());
  // kNotFound: the checker does not know the backend; run time decides.
  EXPECT_TRUE(Parse("- {name: r, backend: test, options: {layers: 1}}\n"
                    "- {name: m, backend: local, options: {layers: 3}}\n")
                  .ok());
  EXPECT_THAT(seen_backends_, ElementsAre("local", "test", "local"));
}

TEST_F(OptionsValidatorTest, WithoutAValidatorOptionsAreFreeForm) {
  SetModelOptionsValidator(nullptr);
  EXPECT_TRUE(Parse("- {name: m, backend: local, options: {layerz: 2}}\n").ok());
  EXPECT_TRUE(seen_backends_.empty());
}

}  // namespace
}  // namespace ftb::spec
