#include "workers/local_backend.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "common/hash.h"
#include "common/status_macros.h"
#include "datasets/builtin.h"
#include "datasets/dataset.h"
#include "trainer/checkpoint.h"
#include "trainer/model.h"
#include "trainer/tokenizer.h"
#include "trainer/train.h"

namespace ftb::workers {
namespace {

constexpr char kDefaultArtifactDir[] = ".ftb-artifacts";
constexpr char kArtifactsOff[] = "off";
constexpr char kWeightsFile[] = "weights.bin";
constexpr char kKeyFile[] = "key.txt";
// Bump when a change to the trainer changes the weights a key stands for.
// v2: snapshots name the pretrained model they start from.
constexpr char kKeyVersion[] = "ftb.local_backend.v2";
// Sequences per optimizer step of the pretraining stage (independent of the
// task's batch size: the pretrained model is shared by every cell).
constexpr int kPretrainBatchSize = 16;

constexpr absl::string_view kOptionNames[] = {
    "artifact_dir",    "background_seed", "background_size", "grad_clip",
    "heads",           "layers",          "learning_rate",   "max_len",
    "max_new_tokens",  "pretrain_epochs", "prior_epochs",    "tie_embeddings",
    "width"};

absl::Status OptionError(absl::string_view key, absl::string_view expected,
                         const google::protobuf::Value& value) {
  std::string got;
  switch (value.kind_case()) {
    case google::protobuf::Value::kNumberValue:
      got = absl::StrCat(value.number_value());
      break;
    case google::protobuf::Value::kStringValue:
      got = absl::StrCat("\"", value.string_value(), "\"");
      break;
    case google::protobuf::Value::kBoolValue:
      got = value.bool_value() ? "true" : "false";
      break;
    default:
      got = "a value of another type";
  }
  return absl::InvalidArgumentError(
      absl::StrCat("local backend: model.options.", key, ": expected ", expected, ", got ", got));
}

// Reads an integer option in [lo, hi] (a number or a string holding an
// integer); leaves `out` alone if absent.
absl::Status ReadInt(const google::protobuf::Struct& options, absl::string_view key, int lo, int hi,
                     int* out) {
  auto it = options.fields().find(std::string(key));
  if (it == options.fields().end()) return absl::OkStatus();
  const google::protobuf::Value& value = it->second;
  int64_t parsed = 0;
  bool ok = false;
  if (value.kind_case() == google::protobuf::Value::kNumberValue) {
    const double d = value.number_value();
    ok = std::isfinite(d) && d == std::floor(d) && std::abs(d) < 1e15;
    parsed = ok ? static_cast<int64_t>(d) : 0;
  } else if (value.kind_case() == google::protobuf::Value::kStringValue) {
    ok = absl::SimpleAtoi(value.string_value(), &parsed);
  }
  if (!ok || parsed < lo || parsed > hi) {
    return OptionError(key, absl::StrCat("an integer in [", lo, ", ", hi, "]"), value);
  }
  *out = static_cast<int>(parsed);
  return absl::OkStatus();
}

// Reads a number option; `valid` says whether a value is acceptable and
// `expected` describes the acceptable ones.
template <typename Valid>
absl::Status ReadDouble(const google::protobuf::Struct& options, absl::string_view key,
                        absl::string_view expected, Valid valid, double* out) {
  auto it = options.fields().find(std::string(key));
  if (it == options.fields().end()) return absl::OkStatus();
  const google::protobuf::Value& value = it->second;
  double parsed = 0;
  bool ok = false;
  if (value.kind_case() == google::protobuf::Value::kNumberValue) {
    parsed = value.number_value();
    ok = true;
  } else if (value.kind_case() == google::protobuf::Value::kStringValue) {
    ok = absl::SimpleAtod(value.string_value(), &parsed);
  }
  if (!ok || !std::isfinite(parsed) || !valid(parsed)) return OptionError(key, expected, value);
  *out = parsed;
  return absl::OkStatus();
}

// The tokenizer, examples and questions of one task.
struct Prepared {
  trainer::Tokenizer tokenizer;
  std::vector<trainer::Example> background;
  std::vector<trainer::Example> prior;
  std::vector<trainer::Example> training;
  struct Question {
    const v1::QuestionSet* set;
    const v1::QaItem* item;
  };
  std::vector<Question> questions;
  std::vector<std::vector<int>> question_tokens;
  // Longest question and answer (tokens) over everything above.
  int longest_question = 0;
  int longest_answer = 0;
};

// `background` may be null (no pretraining stage).
Prepared Prepare(const v1::Dataset& dataset, const v1::Dataset* background) {
  std::vector<std::string_view> texts;
  const auto add_texts = [&](const v1::QaItem& item) {
    texts.push_back(item.prompt());
    texts.push_back(item.answer());
    if (!item.answer_before().empty()) texts.push_back(item.answer_before());
  };
  for (const v1::QaItem& item : dataset.training()) add_texts(item);
  for (const v1::QaItem& item : dataset.prior()) add_texts(item);
  for (const v1::QuestionSet& set : dataset.tests()) {
    for (const v1::QaItem& item : set.items()) add_texts(item);
  }
  if (background != nullptr) {
    for (const v1::QaItem& item : background->training()) add_texts(item);
  }
  Prepared p{trainer::Tokenizer::Build(texts), {}, {}, {}, {}, {}, 0, 0};
  const auto encode = [&](const v1::QaItem& item) {
    trainer::Example example{p.tokenizer.Encode(item.prompt()), p.tokenizer.Encode(item.answer())};
    p.longest_question = std::max(p.longest_question, static_cast<int>(example.question.size()));
    p.longest_answer = std::max(p.longest_answer, static_cast<int>(example.answer.size()));
    return example;
  };
  for (const v1::QaItem& item : dataset.training()) p.training.push_back(encode(item));
  for (const v1::QaItem& item : dataset.prior()) p.prior.push_back(encode(item));
  if (background != nullptr) {
    for (const v1::QaItem& item : background->training()) p.background.push_back(encode(item));
  }
  for (const v1::QuestionSet& set : dataset.tests()) {
    for (const v1::QaItem& item : set.items()) {
      p.questions.push_back({&set, &item});
      p.question_tokens.push_back(encode(item).question);
    }
  }
  return p;
}

std::string FormatDouble(double value) { return absl::StrFormat("%.17g", value); }

// The words of a dataset's texts (letter runs), which background people's
// names must avoid.
std::vector<std::string> DatasetWords(const v1::Dataset& dataset) {
  absl::flat_hash_set<std::string> words;
  const auto add = [&](const v1::QaItem& item) {
    for (std::string_view text : {std::string_view(item.prompt()), std::string_view(item.answer()),
                                  std::string_view(item.answer_before())}) {
      for (std::string_view piece : trainer::Tokenizer::Split(text)) {
        absl::string_view word =
            absl::StripLeadingAsciiWhitespace(absl::string_view(piece.data(), piece.size()));
        if (!word.empty() && absl::ascii_isalpha(static_cast<unsigned char>(word[0]))) {
          words.insert(absl::AsciiStrToLower(word));
        }
      }
    }
  };
  for (const v1::QaItem& item : dataset.training()) add(item);
  for (const v1::QaItem& item : dataset.prior()) add(item);
  for (const v1::QuestionSet& set : dataset.tests()) {
    for (const v1::QaItem& item : set.items()) add(item);
  }
  std::vector<std::string> sorted(words.begin(), words.end());
  std::sort(sorted.begin(), sorted.end());
  return sorted;
}

// SHA-256 hex of the tokenizer's pieces in id order.
std::string VocabularyHash(const trainer::Tokenizer& tokenizer) {
  Sha256 hash;
  for (int id = 0; id < tokenizer.vocab_size(); ++id) hash.UpdateField(tokenizer.piece(id));
  return DigestHex(hash.Finish());
}

std::string ModelKeyLine(const v1::TuneWork& work, const trainer::ModelConfig& model) {
  return absl::StrCat("model=", work.model().name(), "\n",  //
                      "vocab_size=", model.vocab_size, " layers=", model.layers,
                      " width=", model.width, " heads=", model.heads, " max_len=", model.max_len,
                      " tie_embeddings=", model.tie_embeddings ? 1 : 0, "\n");
}

std::string OptimizerKeyLine(const trainer::TrainConfig& train) {
  return absl::StrCat("learning_rate=", FormatDouble(train.learning_rate),
                      " warmup_steps=", train.warmup_steps, " beta1=", FormatDouble(train.beta1),
                      " beta2=", FormatDouble(train.beta2),
                      " epsilon=", FormatDouble(train.epsilon),
                      " grad_clip=", FormatDouble(train.grad_clip));
}

// The text the pretrained model's artifact key is the SHA-256 of.
std::string PretrainKeyText(const v1::Dataset& background, const std::string& vocabulary,
                            const v1::TuneWork& work, const trainer::ModelConfig& model,
                            const trainer::TrainConfig& pretrain, uint64_t init_seed,
                            int pretrain_epochs) {
  return absl::StrCat(kKeyVersion, " pretrain\n",                                        //
                      "background_fingerprint=", datasets::DatasetFingerprint(background),  //
                      " examples=", background.training_size(), "\n",                      //
                      "vocabulary=", vocabulary, "\n",                                     //
                      ModelKeyLine(work, model),                                           //
                      OptimizerKeyLine(pretrain), " batch_size=", pretrain.batch_size,
                      " seed=", pretrain.seed, " init_seed=", init_seed,
                      " pretrain_epochs=", pretrain_epochs, "\n");
}

// The text a snapshot's artifact key is the SHA-256 of. `pretrain_key`: the
// pretrained model's key, empty when training from scratch.
std::string ArtifactKeyText(const std::string& fingerprint, const v1::TuneWork& work,
                            const trainer::ModelConfig& model, const trainer::TrainConfig& train,
                            const std::string& pretrain_key, int prior_epochs, int epochs) {
  return absl::StrCat(
      kKeyVersion, "\n",                                                        //
      "dataset_fingerprint=", fingerprint, "\n",                                //
      "pretrained=", pretrain_key.empty() ? "none" : pretrain_key, "\n",        //
      "model=", work.model().name(), "\n",                                      //
      "vocab_size=", model.vocab_size, " layers=", model.layers, " width=", model.width,
      " heads=", model.heads, " max_len=", model.max_len,
      " tie_embeddings=", model.tie_embeddings ? 1 : 0, "\n",  //
      "learning_rate=", FormatDouble(train.learning_rate), " warmup_steps=", train.warmup_steps,
      " beta1=", FormatDouble(train.beta1), " beta2=", FormatDouble(train.beta2),
      " epsilon=", FormatDouble(train.epsilon), " grad_clip=", FormatDouble(train.grad_clip),
      " prior_epochs=", prior_epochs, "\n",  //
      "learning_rate_multiplier=", FormatDouble(work.learning_rate_multiplier()),
      " batch_size=", work.batch_size(), " seed=", work.seed(), " epochs=", epochs, "\n");
}

// Writes `content` to `path` through a temporary file and a rename.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view content) {
  static std::atomic<uint64_t> counter{0};
  const std::string temp = absl::StrCat(path, ".tmp.", ::getpid(), ".", counter.fetch_add(1));
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << content;
    out.close();
    if (!out) return absl::InternalError(absl::StrCat("writing ", temp));
  }
  std::error_code error;
  std::filesystem::rename(temp, path, error);
  if (error) {
    std::filesystem::remove(temp, error);
    return absl::InternalError(absl::StrCat("renaming ", temp, " to ", path));
  }
  return absl::OkStatus();
}

// Loads the weights stored in `dir`. kNotFound (silently) when there are
// none; any other failure, or weights of another shape, is logged and
// returned.
absl::StatusOr<trainer::Model> LoadArtifact(const std::filesystem::path& dir,
                                            const trainer::ModelConfig& config, TaskContext& ctx) {
  absl::StatusOr<trainer::Model> model = trainer::LoadModel((dir / kWeightsFile).string());
  if (!model.ok()) {
    if (model.status().code() != absl::StatusCode::kNotFound) {
      ctx.Log(absl::StrCat("local: ignoring artifact: ", model.status().ToString()));
    }
    return model.status();
  }
  if (!(model->config() == config)) {
    ctx.Log(absl::StrCat("local: ignoring artifact ", dir.string(), ": other model shape"));
    return absl::FailedPreconditionError("other model shape");
  }
  return model;
}

// Stores `model` and its key text in `dir` (created if needed).
absl::Status StoreArtifact(const std::filesystem::path& dir, const std::string& key_text,
                           const trainer::Model& model) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) {
    return absl::InternalError(absl::StrCat("creating ", dir.string(), ": ", error.message()));
  }
  FTB_RETURN_IF_ERROR(WriteFileAtomically((dir / kKeyFile).string(), key_text));
  return trainer::SaveModel(model, (dir / kWeightsFile).string());
}

// An exclusive flock(2) on <root>/<key>.lock, so that concurrent tasks
// (slots of one worker, or workers sharing a volume) needing the same
// pretrained model train it once: the others wait, then load it. Released
// on destruction. A lock file that cannot be opened is logged and not
// waited for (the tasks then may both train; the artifact writes are
// atomic either way).
class ArtifactLock {
 public:
  ArtifactLock() = default;
  ArtifactLock(ArtifactLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  ArtifactLock& operator=(ArtifactLock&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  ~ArtifactLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the flock
  }

  // Errors: kCancelled if ctx is cancelled while waiting.
  static absl::StatusOr<ArtifactLock> Acquire(const std::string& root, const std::string& key,
                                              TaskContext& ctx) {
    ArtifactLock lock;
    std::error_code error;
    std::filesystem::create_directories(root, error);
    const std::string path = (std::filesystem::path(root) / absl::StrCat(key, ".lock")).string();
    lock.fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock.fd_ < 0) {
      ctx.Log(absl::StrCat("local: not locking ", path, ": ", std::strerror(errno)));
      return lock;
    }
    bool logged = false;
    while (::flock(lock.fd_, LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK && errno != EINTR) {
        ctx.Log(absl::StrCat("local: not locking ", path, ": ", std::strerror(errno)));
        return lock;
      }
      if (!logged) {
        ctx.Log("local: waiting for another task to finish pretraining the same model");
        logged = true;
      }
      if (ctx.cancelled()) return absl::CancelledError("local backend: cancelled");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return lock;
  }

 private:
  int fd_ = -1;
};

absl::Status ValidateWork(const v1::TaskAssignment& task) {
  if (task.kind() != v1::TASK_KIND_TUNE) {
    return absl::InvalidArgumentError(
        absl::StrCat("local backend: task ", task.task_id(), " is not a TUNE task"));
  }
  const v1::TuneWork& work = task.tune();
  if (work.epochs().empty()) {
    return absl::InvalidArgumentError("local backend: tune.epochs is empty");
  }
  if (work.epochs_size() != work.cell_ids_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("local backend: tune.epochs has ", work.epochs_size(),
                     " entries but tune.cell_ids has ", work.cell_ids_size()));
  }
  for (int i = 0; i < work.epochs_size(); ++i) {
    if (work.epochs(i) > 100000 || (i > 0 && work.epochs(i) < work.epochs(i - 1))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "local backend: tune.epochs must be ascending numbers in [0, 100000]; entry ", i, " is ",
          work.epochs(i)));
    }
  }
  if (work.batch_size() == 0) {
    return absl::InvalidArgumentError("local backend: tune.batch_size must be at least 1");
  }
  if (!(work.learning_rate_multiplier() > 0) || !std::isfinite(work.learning_rate_multiplier())) {
    return absl::InvalidArgumentError(
        absl::StrCat("local backend: tune.learning_rate_multiplier must be > 0, got ",
                     work.learning_rate_multiplier()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<LocalModelOptions> ParseLocalModelOptions(const google::protobuf::Struct& s) {
  std::vector<std::string> unknown;
  for (const auto& [key, value] : s.fields()) {
    if (std::find(std::begin(kOptionNames), std::end(kOptionNames), key) ==
        std::end(kOptionNames)) {
      unknown.push_back(key);
    }
  }
  if (!unknown.empty()) {
    std::sort(unknown.begin(), unknown.end());
    return absl::InvalidArgumentError(absl::StrCat(
        "local backend: unknown option model.options.", unknown.front(), "; valid options: ",
        absl::StrJoin(std::begin(kOptionNames), std::end(kOptionNames), ", ")));
  }
  LocalModelOptions o;
  FTB_RETURN_IF_ERROR(ReadInt(s, "layers", 1, 24, &o.layers));
  FTB_RETURN_IF_ERROR(ReadInt(s, "width", 8, 1024, &o.width));
  FTB_RETURN_IF_ERROR(ReadInt(s, "heads", 1, 1024, &o.heads));
  if (o.width % o.heads != 0) {
    const auto it = s.fields().find("heads");
    google::protobuf::Value value;
    value.set_number_value(o.heads);
    return OptionError("heads", absl::StrCat("a divisor of width (", o.width, ")"),
                       it == s.fields().end() ? value : it->second);
  }
  FTB_RETURN_IF_ERROR(ReadInt(s, "max_new_tokens", 1, 256, &o.max_new_tokens));
  FTB_RETURN_IF_ERROR(ReadInt(s, "max_len", 0, 4096, &o.max_len));
  if (o.max_len != 0 && o.max_len < 8) {
    return OptionError("max_len", "0 (automatic) or an integer in [8, 4096]",
                       s.fields().at("max_len"));
  }
  FTB_RETURN_IF_ERROR(ReadInt(s, "prior_epochs", 0, 1000, &o.prior_epochs));
  FTB_RETURN_IF_ERROR(ReadInt(s, "pretrain_epochs", 0, 1000, &o.pretrain_epochs));
  FTB_RETURN_IF_ERROR(ReadInt(s, "background_size", 0, 10000, &o.background_size));
  FTB_RETURN_IF_ERROR(ReadInt(s, "background_seed", 0, 1 << 30, &o.background_seed));
  FTB_RETURN_IF_ERROR(ReadDouble(
      s, "learning_rate", "a number in (0, 1]", [](double v) { return v > 0 && v <= 1; },
      &o.learning_rate));
  FTB_RETURN_IF_ERROR(ReadDouble(
      s, "grad_clip", "a number >= 0", [](double v) { return v >= 0; }, &o.grad_clip));
  if (auto it = s.fields().find("tie_embeddings"); it != s.fields().end()) {
    if (it->second.kind_case() != google::protobuf::Value::kBoolValue) {
      return OptionError("tie_embeddings", "true or false", it->second);
    }
    o.tie_embeddings = it->second.bool_value();
  }
  if (auto it = s.fields().find("artifact_dir"); it != s.fields().end()) {
    if (it->second.kind_case() != google::protobuf::Value::kStringValue ||
        it->second.string_value().empty()) {
      return OptionError("artifact_dir", "a non-empty directory path or \"off\"", it->second);
    }
    o.artifact_dir = it->second.string_value();
  }
  return o;
}

LocalBackend::LocalBackend(std::string artifact_dir) : artifact_dir_(std::move(artifact_dir)) {}

std::unique_ptr<LocalBackend> LocalBackend::Create(const BackendOptions& options) {
  auto it = options.params.find("artifact_dir");
  if (it != options.params.end() && !it->second.empty()) {
    return std::make_unique<LocalBackend>(it->second);
  }
  const char* env = std::getenv("FTB_ARTIFACT_DIR");
  return std::make_unique<LocalBackend>(env != nullptr && *env != '\0' ? env : kDefaultArtifactDir);
}

absl::StatusOr<v1::TaskResult> LocalBackend::Run(const v1::TaskAssignment& task, TaskContext& ctx) {
  FTB_RETURN_IF_ERROR(ValidateWork(task));
  const v1::TuneWork& work = task.tune();
  FTB_ASSIGN_OR_RETURN(const LocalModelOptions options,
                       ParseLocalModelOptions(work.model().options()));
  FTB_ASSIGN_OR_RETURN(const v1::Dataset dataset, datasets::LoadDataset(work.dataset()));
  if (ctx.cancelled()) return absl::CancelledError("local backend: cancelled");
  const bool pretraining = options.pretrain_epochs > 0;
  v1::Dataset background;
  if (pretraining) {
    FTB_ASSIGN_OR_RETURN(background,
                         datasets::GenerateBackground(
                             static_cast<uint32_t>(options.background_size),
                             static_cast<uint64_t>(options.background_seed), DatasetWords(dataset)));
  }
  const Prepared prepared = Prepare(dataset, pretraining ? &background : nullptr);

  trainer::ModelConfig model_config;
  model_config.vocab_size = prepared.tokenizer.vocab_size();
  model_config.layers = options.layers;
  model_config.width = options.width;
  model_config.heads = options.heads;
  model_config.tie_embeddings = options.tie_embeddings;
  model_config.max_len = options.max_len;
  if (model_config.max_len == 0) {
    const int longest = prepared.longest_question + prepared.longest_answer + 3;
    model_config.max_len = std::max(16, (longest + 15) / 16 * 16);
  }
  trainer::TrainConfig train_config;
  train_config.learning_rate = options.learning_rate * work.learning_rate_multiplier();
  train_config.grad_clip = options.grad_clip;
  train_config.batch_size = static_cast<int>(std::min<uint32_t>(work.batch_size(), 1 << 20));
  train_config.seed = work.seed();
  FTB_RETURN_IF_ERROR(trainer::ValidateTrainConfig(train_config));
  const bool two_phase =
      dataset.updates_knowledge() && !prepared.prior.empty() && options.prior_epochs > 0;
  const int prior_epochs = two_phase ? options.prior_epochs : 0;

  // The pretraining stage: the base learning rate (no multiplier), its own
  // batch size and seeds, so every cell of a model shares one pretrained model.
  trainer::TrainConfig pretrain_config = train_config;
  pretrain_config.learning_rate = options.learning_rate;
  pretrain_config.batch_size = kPretrainBatchSize;
  pretrain_config.seed = static_cast<uint64_t>(options.background_seed) ^ 0x70726574726e6ULL;
  const uint64_t init_seed =
      pretraining ? static_cast<uint64_t>(options.background_seed) : work.seed();
  std::string root = options.artifact_dir.empty() ? artifact_dir_ : options.artifact_dir;
  if (root == kArtifactsOff) root.clear();
  std::string pretrain_key_text, pretrain_key;
  if (pretraining) {
    pretrain_key_text =
        PretrainKeyText(background, VocabularyHash(prepared.tokenizer), work, model_config,
                        pretrain_config, init_seed, options.pretrain_epochs);
    pretrain_key = Sha256Hex(pretrain_key_text);
  }

  // Distinct epoch counts, ascending, and the artifact directory of each.
  std::vector<int> epochs;
  for (uint32_t e : work.epochs()) {
    if (epochs.empty() || epochs.back() != static_cast<int>(e))
      epochs.push_back(static_cast<int>(e));
  }
  const bool base_cell = epochs.front() == 0;
  // The positive epoch counts, which fine-tuning snapshots serve.
  const std::vector<int> tuned_epochs(epochs.begin() + (base_cell ? 1 : 0), epochs.end());
  const std::string fingerprint = datasets::DatasetFingerprint(dataset);
  std::vector<std::string> key_texts;
  std::vector<std::filesystem::path> artifact_dirs;
  for (int e : epochs) {
    key_texts.push_back(ArtifactKeyText(fingerprint, work, model_config, train_config,
                                        pretrain_key, prior_epochs, e));
    if (!root.empty()) {
      artifact_dirs.push_back(std::filesystem::path(root) / Sha256Hex(key_texts.back()));
    }
  }

  v1::TaskResult result;
  for (const std::string& cell_id : work.cell_ids()) result.add_answers()->set_cell_id(cell_id);
  // Answers every question with `model` into the cells of epoch count `e`.
  const auto answer = [&](int e, const trainer::Model& model) -> absl::Status {
    if (ctx.cancelled()) return absl::CancelledError("local backend: cancelled");
    const std::vector<std::vector<int>> answers =
        trainer::Answer(model, prepared.question_tokens, options.max_new_tokens);
    for (int c = 0; c < work.cell_ids_size(); ++c) {
      if (static_cast<int>(work.epochs(c)) != e) continue;
      v1::CellAnswers* cell = result.mutable_answers(c);
      for (size_t q = 0; q < prepared.questions.size(); ++q) {
        const v1::QaItem& item = *prepared.questions[q].item;
        v1::JudgeItem* out = cell->add_items();
        out->set_cell_id(cell->cell_id());
        out->set_question_type(datasets::QuestionTypeName(prepared.questions[q].set->type()));
        out->set_question_id(item.id());
        out->set_prompt(item.prompt());
        out->set_reference(item.answer());
        out->set_answer_before(item.answer_before());
        out->set_context(item.context());
        out->set_answer(
            std::string(absl::StripAsciiWhitespace(prepared.tokenizer.Decode(answers[q]))));
      }
    }
    return absl::OkStatus();
  };
  const auto finish = [&]() {
    Sha256 digest;
    digest.UpdateField(kKeyVersion);
    for (const v1::CellAnswers& cell : result.answers()) {
      digest.UpdateField(cell.cell_id());
      digest.UpdateField(absl::StrCat(cell.items_size()));
      for (const v1::JudgeItem& item : cell.items()) {
        digest.UpdateField(item.question_id());
        digest.UpdateField(item.answer());
      }
    }
    result.set_digest(DigestHex(digest.Finish()));
    result.set_cost_usd(0);
    return result;
  };

  // Every snapshot stored already: answer from the artifacts.
  if (!artifact_dirs.empty()) {
    std::vector<trainer::Model> stored;
    for (const std::filesystem::path& dir : artifact_dirs) {
      absl::StatusOr<trainer::Model> model = LoadArtifact(dir, model_config, ctx);
      if (!model.ok()) break;
      stored.push_back(*std::move(model));
    }
    if (stored.size() == artifact_dirs.size()) {
      reuses_.fetch_add(1);
      ctx.Log(absl::StrCat("local: reusing ", stored.size(), " stored snapshot(s) under ", root,
                           "; not training"));
      for (size_t i = 0; i < epochs.size(); ++i) {
        FTB_RETURN_IF_ERROR(answer(epochs[i], stored[i]));
        ctx.SetProgress(static_cast<double>(i + 1) / static_cast<double>(epochs.size()),
                        absl::StrCat("answered epoch ", epochs[i]));
      }
      result.set_tokens(0);
      return finish();
    }
  }

  trainings_.fetch_add(1);
  int64_t tokens = 0;
  trainer::TrainCallbacks callbacks;
  callbacks.cancelled = [&ctx] { return ctx.cancelled(); };
  const int64_t prior_steps =
      two_phase
          ? trainer::StepsPerEpoch(prepared.prior.size(), train_config.batch_size) * prior_epochs
          : 0;
  const int64_t tuned_steps =
      tuned_epochs.empty()
          ? 0
          : trainer::StepsPerEpoch(prepared.training.size(), train_config.batch_size) *
                tuned_epochs.back();

  // The base model: pretrained on the background corpus (stored, or trained
  // here while holding the store's lock for it), else freshly initialized.
  std::optional<trainer::Model> base;
  int64_t pretrain_steps = 0;
  if (pretraining) {
    const std::filesystem::path pretrain_dir =
        root.empty() ? std::filesystem::path() : std::filesystem::path(root) / pretrain_key;
    ArtifactLock lock;
    if (!root.empty()) {
      FTB_ASSIGN_OR_RETURN(lock, ArtifactLock::Acquire(root, pretrain_key, ctx));
      absl::StatusOr<trainer::Model> stored = LoadArtifact(pretrain_dir, model_config, ctx);
      if (stored.ok()) {
        pretrain_reuses_.fetch_add(1);
        ctx.Log(absl::StrCat("local: reusing the pretrained model ", pretrain_key.substr(0, 12),
                             " (", options.pretrain_epochs, " epochs on ",
                             prepared.background.size(), " background examples)"));
        base = *std::move(stored);
      }
    }
    if (!base.has_value()) {
      pretrainings_.fetch_add(1);
      FTB_ASSIGN_OR_RETURN(trainer::Model model, trainer::Model::Create(model_config, init_seed));
      ctx.Log(absl::StrCat("local: pretraining ", work.model().name(), " (",
                           model.parameters().size(), " parameters, vocabulary ",
                           model_config.vocab_size, ") for ", options.pretrain_epochs,
                           " epochs on ", prepared.background.size(),
                           " background examples (", options.background_size,
                           " background people, seed ", options.background_seed, ")"));
      pretrain_steps =
          trainer::StepsPerEpoch(prepared.background.size(), pretrain_config.batch_size) *
          options.pretrain_epochs;
      const int64_t total = pretrain_steps + prior_steps + tuned_steps;
      callbacks.on_step = [&](int64_t step, int64_t, double) {
        ctx.SetProgress(static_cast<double>(step) / static_cast<double>(total), "pretraining");
      };
      FTB_ASSIGN_OR_RETURN(const trainer::TrainStats stats,
                           trainer::Train(model, prepared.background, pretrain_config,
                                          {options.pretrain_epochs}, callbacks));
      tokens += stats.tokens;
      ctx.Log(absl::StrFormat("local: pretrained %d steps; loss %.4f after epoch 1, %.4f after %d",
                              stats.steps, stats.epoch_loss.front(), stats.epoch_loss.back(),
                              options.pretrain_epochs));
      if (!root.empty()) {
        absl::Status saved = StoreArtifact(pretrain_dir, pretrain_key_text, model);
        if (!saved.ok()) {
          ctx.Log(absl::StrCat("local: not storing the pretrained model: ", saved.message()));
        }
      }
      base = std::move(model);
    }
  } else {
    FTB_ASSIGN_OR_RETURN(trainer::Model model, trainer::Model::Create(model_config, init_seed));
    base = std::move(model);
  }
  trainer::Model& model = *base;
  const int64_t all_steps = pretrain_steps + prior_steps + tuned_steps;
  const auto progress = [&](int64_t done, std::string_view phase) {
    if (all_steps > 0) {
      ctx.SetProgress(static_cast<double>(done) / static_cast<double>(all_steps), phase);
    }
  };

  ctx.Log(absl::StrCat("local: training ", work.model().name(), " (", model.parameters().size(),
                       " parameters, vocabulary ", model_config.vocab_size, ") on ", dataset.name(),
                       ": ", prepared.training.size(), " examples, epochs ",
                       absl::StrJoin(epochs, ","),
                       two_phase ? absl::StrCat(" after ", prior_epochs, " prior epochs on ",
                                                prepared.prior.size(), " examples")
                                 : std::string(),
                       pretraining ? " from the pretrained model" : " from scratch"));
  if (two_phase) {
    trainer::TrainConfig prior_config = train_config;
    prior_config.seed = train_config.seed ^ 0x7072696f72ULL;  // "prior"
    callbacks.on_step = [&](int64_t step, int64_t, double) {
      progress(pretrain_steps + step, "prior");
    };
    FTB_ASSIGN_OR_RETURN(
        const trainer::TrainStats prior_stats,
        trainer::Train(model, prepared.prior, prior_config, {prior_epochs}, callbacks));
    tokens += prior_stats.tokens;
  }
  // Stores the snapshot of epoch count epochs[index] and answers with it.
  const auto snapshot = [&](size_t index, const trainer::Model& weights) -> absl::Status {
    if (!artifact_dirs.empty()) {
      absl::Status saved = StoreArtifact(artifact_dirs[index], key_texts[index], weights);
      if (!saved.ok()) {
        ctx.Log(absl::StrCat("local: not storing epoch ", epochs[index], ": ", saved.message()));
      }
    }
    return answer(epochs[index], weights);
  };
  // Epochs 0: the base model before the new facts (pretrained, and for an
  // updates dataset after the prior phase), without fine-tuning.
  if (base_cell) {
    FTB_RETURN_IF_ERROR(snapshot(0, model));
    ctx.Log("local: answered with the base model (epochs 0, no fine-tuning)");
  }
  if (!tuned_epochs.empty()) {
    callbacks.on_step = [&](int64_t step, int64_t, double) {
      progress(pretrain_steps + prior_steps + step, "training");
    };
    callbacks.on_snapshot = [&](int epoch, const trainer::Model& weights) -> absl::Status {
      const size_t index = static_cast<size_t>(
          std::lower_bound(epochs.begin(), epochs.end(), epoch) - epochs.begin());
      return snapshot(index, weights);
    };
    FTB_ASSIGN_OR_RETURN(
        const trainer::TrainStats stats,
        trainer::Train(model, prepared.training, train_config, tuned_epochs, callbacks));
    tokens += stats.tokens;
    ctx.Log(absl::StrFormat(
        "local: trained %d steps, %d tokens; loss %.4f after epoch 1, %.4f after %d", stats.steps,
        tokens, stats.epoch_loss.front(), stats.epoch_loss.back(), tuned_epochs.back()));
  }
  result.set_tokens(static_cast<uint64_t>(tokens));
  return finish();
}

absl::Status RegisterLocalBackend(BackendRegistry& registry) {
  return registry.Register(
      LocalBackend::kName,
      [](const BackendOptions& options) -> absl::StatusOr<std::unique_ptr<TuningBackend>> {
        return LocalBackend::Create(options);
      },
      [](const google::protobuf::Struct& s) { return ParseLocalModelOptions(s).status(); });
}

}  // namespace ftb::workers
