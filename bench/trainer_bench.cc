// The local trainer's speed, as a plain main printing a report (see
// docs/benchmarks.md):
//
//  1. GEMM ceiling: times Eigen float GEMMs of exactly the shapes one
//     training step of the default model runs (forward, weight gradient and
//     input gradient of every linear layer, and the output projection) at
//     the default campaign's average batch, giving the machine's
//     single-precision GEMM throughput for this workload, single-threaded.
//  2. Training: trains the default model (layers 2, width 128, heads 4,
//     batch 8) on `people` 25 and reports tokens/s and achieved FLOP/s, the
//     FLOPs counted exactly for the batches run (GEMMs of the linear layers,
//     the output projection on answer positions and the attention products);
//     ≈ 6 x parameters x tokens is printed alongside. Target: >= 50% of the
//     GEMM ceiling.
//  3. Campaign: the default campaign's training tasks through the local
//     backend (people 25 + updates 40, each pretrained on the background
//     corpus as campaigns/default.yaml sets it, then epochs 0/1/5/10/30
//     served by one run per dataset with snapshots, every test set answered
//     at each), once with both tasks in parallel (a worker with 2 slots) and
//     once one after the other; prints exact-match accuracy per question
//     type and the share of yes/no questions answered with Yes or No at all.
//     Target: < 3 minutes on 2 cores.
//
// Targets print PASS or MISS; nothing is asserted. Flags: --epochs N for
// part 2 (default 5), --skip-campaign, --campaign-only, --pretrain-epochs N
// and --background-size N (part 3; default 16 and 40).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "Eigen/Core"
#include "absl/strings/ascii.h"
#include "datasets/builtin.h"
#include "ftb/v1/coordinator.pb.h"
#include "trainer/model.h"
#include "trainer/tokenizer.h"
#include "trainer/train.h"
#include "workers/backend.h"
#include "workers/local_backend.h"

namespace ftb {
namespace {

using Clock = std::chrono::steady_clock;
using trainer::Matrix;

double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

const char* Verdict(bool pass) { return pass ? "PASS" : "MISS"; }

struct Workload {
  trainer::Tokenizer tokenizer;
  std::vector<trainer::Example> examples;
  trainer::ModelConfig config;
};

Workload PeopleWorkload() {
  const v1::Dataset dataset = *datasets::GeneratePeople(25, 1);
  std::vector<std::string_view> texts;
  for (const v1::QaItem& item : dataset.training()) {
    texts.push_back(item.prompt());
    texts.push_back(item.answer());
  }
  for (const v1::QuestionSet& set : dataset.tests()) {
    for (const v1::QaItem& item : set.items()) {
      texts.push_back(item.prompt());
      texts.push_back(item.answer());
    }
  }
  Workload w{trainer::Tokenizer::Build(texts), {}, {}};
  for (const v1::QaItem& item : dataset.training()) {
    w.examples.push_back({w.tokenizer.Encode(item.prompt()), w.tokenizer.Encode(item.answer())});
  }
  w.config.vocab_size = w.tokenizer.vocab_size();
  w.config.layers = 2;
  w.config.width = 128;
  w.config.heads = 4;
  w.config.max_len = 64;
  return w;
}

// FLOPs of one epoch over `examples` (order does not matter): per token and
// layer 2 x 3 x 12 d^2 for the four linear layers (forward, weight and input
// gradients); per answer position 6 d V for the output projection; per
// sequence and layer 12 L^2 d for the attention products (QK^T and PV
// forward, four products backward, full L x L blocks).
struct EpochFlops {
  double total = 0;
  double approx = 0;  // 6 x parameters x tokens
  int64_t tokens = 0;
  int64_t scored = 0;
};

EpochFlops CountEpochFlops(const Workload& w) {
  const double d = w.config.width;
  const double v = w.config.vocab_size;
  EpochFlops f;
  for (const trainer::Example& example : w.examples) {
    int answer_start = 0;
    const std::vector<int> sequence =
        trainer::TrainingSequence(example, w.config.max_len, &answer_start);
    const double len = static_cast<double>(sequence.size());
    const double scored = len - answer_start;
    f.tokens += static_cast<int64_t>(len);
    f.scored += static_cast<int64_t>(scored);
    f.total += w.config.layers * (len * 72 * d * d + 12 * len * len * d) + 6 * d * v * scored;
  }
  f.approx =
      6.0 * static_cast<double>(trainer::ParameterCount(w.config)) * static_cast<double>(f.tokens);
  return f;
}

// Single-precision GEMM throughput at the training step's shapes: n tokens
// per batch, m scored positions.
double GemmFlopsPerSecond(const trainer::ModelConfig& c, Eigen::Index n, Eigen::Index m) {
  const Eigen::Index d = c.width;
  struct Shape {
    Eigen::Index out, in, cols;
  };
  std::vector<Shape> shapes = {
      {3 * d, d, n}, {d, d, n}, {4 * d, d, n}, {d, 4 * d, n}, {c.vocab_size, d, m}};
  std::vector<Matrix<float>> w, x, y, dw, dx;
  for (const Shape& s : shapes) {
    w.push_back(Matrix<float>::Random(s.out, s.in));
    x.push_back(Matrix<float>::Random(s.in, s.cols));
    y.push_back(Matrix<float>::Zero(s.out, s.cols));
    dw.push_back(Matrix<float>::Zero(s.out, s.in));
    dx.push_back(Matrix<float>::Zero(s.in, s.cols));
  }
  double flops_per_rep = 0;
  for (const Shape& s : shapes) flops_per_rep += 6.0 * s.out * s.in * s.cols;
  const auto rep = [&] {
    for (size_t i = 0; i < shapes.size(); ++i) {
      y[i].noalias() = w[i] * x[i];
      dw[i].noalias() += y[i] * x[i].transpose();
      dx[i].noalias() = w[i].transpose() * y[i];
    }
  };
  for (int i = 0; i < 20; ++i) rep();  // warm up
  // Best of 5 rounds of >= 0.3 s: the machine is shared.
  double best = 0;
  for (int round = 0; round < 5; ++round) {
    int reps = 0;
    const Clock::time_point start = Clock::now();
    do {
      rep();
      ++reps;
    } while (Seconds(start) < 0.3);
    best = std::max(best, reps * flops_per_rep / Seconds(start));
  }
  volatile float sink = y[0](0, 0) + dw[0](0, 0) + dx[0](0, 0);
  (void)sink;
  return best;
}

// The default campaign's pretraining options (campaigns/default.yaml);
// --pretrain-epochs and --background-size override them.
struct PretrainFlags {
  int epochs = 16;
  int background_size = 40;
};

v1::TaskAssignment CampaignTask(const std::string& dataset, uint32_t size, uint64_t seed,
                                const PretrainFlags& pretrain) {
  v1::TaskAssignment task;
  task.set_task_id("bench/" + dataset);
  task.set_attempt(1);
  task.set_kind(v1::TASK_KIND_TUNE);
  task.set_backend("local");
  v1::TuneWork* work = task.mutable_tune();
  work->mutable_dataset()->set_source(v1::DATASET_SOURCE_BUILTIN);
  work->mutable_dataset()->set_name(dataset);
  work->mutable_dataset()->set_size(size);
  work->mutable_dataset()->set_seed(seed);
  work->mutable_model()->set_name("tiny-transformer");
  work->mutable_model()->set_backend("local");
  auto& options = *work->mutable_model()->mutable_options()->mutable_fields();
  options["layers"].set_number_value(2);
  options["width"].set_number_value(128);
  options["heads"].set_number_value(4);
  options["max_new_tokens"].set_number_value(8);
  options["pretrain_epochs"].set_number_value(pretrain.epochs);
  options["background_size"].set_number_value(pretrain.background_size);
  work->set_learning_rate_multiplier(1.0);
  work->set_batch_size(8);
  work->set_seed(0);
  for (uint32_t e : {0u, 1u, 5u, 10u, 30u}) {
    work->add_epochs(e);
    work->add_cell_ids(dataset + "-e" + std::to_string(e));
  }
  return task;
}

std::string Normalize(const std::string& text) {
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
}

struct TaskRun {
  absl::StatusOr<v1::TaskResult> result = absl::UnknownError("not run");
  double seconds = 0;
};

TaskRun RunTask(workers::LocalBackend& backend, const v1::TaskAssignment& task) {
  TaskRun run;
  workers::TaskContext ctx(task.task_id(), task.attempt(), nullptr);
  const Clock::time_point start = Clock::now();
  run.result = backend.Run(task, ctx);
  run.seconds = Seconds(start);
  return run;
}

void PrintAccuracy(const TaskRun& run) {
  if (!run.result.ok()) {
    std::printf("    failed: %s\n", run.result.status().ToString().c_str());
    return;
  }
  for (const v1::CellAnswers& cell : run.result->answers()) {
    std::vector<std::pair<std::string, std::pair<int, int>>> by_type;
    for (const v1::JudgeItem& item : cell.items()) {
      auto it = std::find_if(by_type.begin(), by_type.end(),
                             [&](const auto& e) { return e.first == item.question_type(); });
      if (it == by_type.end()) {
        by_type.push_back({item.question_type(), {0, 0}});
        it = by_type.end() - 1;
      }
      it->second.first += Normalize(item.answer()) == Normalize(item.reference());
      it->second.second += 1;
    }
    std::printf("    %-14s", cell.cell_id().c_str());
    for (const auto& [type, counts] : by_type) {
      std::printf("  %s %.2f", type.c_str(),
                  static_cast<double>(counts.first) / std::max(1, counts.second));
    }
    // Of the yes/no questions, the share answered with Yes or No at all.
    int yes_no = 0, formatted = 0;
    for (const v1::JudgeItem& item : cell.items()) {
      const std::string reference = Normalize(item.reference());
      if (reference != "yes" && reference != "no") continue;
      ++yes_no;
      const std::string answer = Normalize(item.answer());
      formatted += answer == "yes" || answer == "no";
    }
    if (yes_no > 0) {
      std::printf("  (yes/no answers %.2f)", static_cast<double>(formatted) / yes_no);
    }
    std::printf("\n");
  }
}

int RunCampaign(const PretrainFlags& pretrain);

int Main(int argc, char** argv) {
  int epochs = 5;
  bool campaign = true;
  bool campaign_only = false;
  PretrainFlags pretrain;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--epochs") == 0 && i + 1 < argc) {
      epochs = std::max(1, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--skip-campaign") == 0) {
      campaign = false;
    } else if (std::strcmp(argv[i], "--campaign-only") == 0) {
      campaign_only = true;
    } else if (std::strcmp(argv[i], "--pretrain-epochs") == 0 && i + 1 < argc) {
      pretrain.epochs = std::max(0, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--background-size") == 0 && i + 1 < argc) {
      pretrain.background_size = std::max(0, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr,
                   "usage: %s [--epochs N] [--skip-campaign | --campaign-only] "
                   "[--pretrain-epochs N] [--background-size N]\n",
                   argv[0]);
      return 2;
    }
  }
  if (campaign_only) return RunCampaign(pretrain);
  std::printf("trainer_bench: Eigen %d.%d.%d, SIMD %s, %u hardware threads, single-threaded\n",
              EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION, EIGEN_MINOR_VERSION,
              Eigen::SimdInstructionSetsInUse(), std::thread::hardware_concurrency());

  const Workload w = PeopleWorkload();
  const EpochFlops flops = CountEpochFlops(w);
  const int64_t steps = trainer::StepsPerEpoch(w.examples.size(), 8);
  const Eigen::Index batch_tokens = static_cast<Eigen::Index>(flops.tokens / steps);
  const Eigen::Index batch_scored = static_cast<Eigen::Index>(flops.scored / steps);
  std::printf("\nmodel: layers %d, width %d, heads %d, vocab %d, %zu parameters\n", w.config.layers,
              w.config.width, w.config.heads, w.config.vocab_size,
              trainer::ParameterCount(w.config));
  std::printf("people 25: %zu sequences, %lld tokens/epoch (%lld scored), batch 8 = %lld tokens\n",
              w.examples.size(), static_cast<long long>(flops.tokens),
              static_cast<long long>(flops.scored), static_cast<long long>(batch_tokens));

  const double gemm = GemmFlopsPerSecond(w.config, batch_tokens, batch_scored);
  std::printf("\n1. GEMM ceiling at the step's shapes (N = %lld): %.2f GFLOP/s\n",
              static_cast<long long>(batch_tokens), gemm / 1e9);

  trainer::Model model = *trainer::Model::Create(w.config, 0);
  trainer::TrainConfig train;
  train.batch_size = 8;
  const Clock::time_point start = Clock::now();
  const absl::StatusOr<trainer::TrainStats> stats =
      trainer::Train(model, w.examples, train, {epochs});
  const double seconds = Seconds(start);
  if (!stats.ok()) {
    std::printf("training failed: %s\n", stats.status().ToString().c_str());
    return 1;
  }
  const double tokens_per_second = static_cast<double>(stats->tokens) / seconds;
  const double achieved = epochs * flops.total / seconds;
  const double ratio = achieved / gemm;
  std::printf("\n2. training, %d epochs on people 25: %.2f s, %lld tokens\n", epochs, seconds,
              static_cast<long long>(stats->tokens));
  std::printf("   %.0f tokens/s, %.0f steps/s\n", tokens_per_second, stats->steps / seconds);
  std::printf("   FLOPs/token: exact %.2f M (6 x params: %.2f M)\n",
              flops.total / static_cast<double>(flops.tokens) / 1e6,
              flops.approx / static_cast<double>(flops.tokens) / 1e6);
  std::printf(
      "   achieved %.2f GFLOP/s = %.0f%% of the GEMM ceiling; GEMM-bound rate %.0f tokens/s\n",
      achieved / 1e9, 100 * ratio, gemm / (flops.total / static_cast<double>(flops.tokens)));
  std::printf("   [%s] tokens/s >= 50%% of the GEMM-bound rate\n", Verdict(ratio >= 0.5));

  if (!campaign) return 0;
  return RunCampaign(pretrain);
}

int RunCampaign(const PretrainFlags& pretrain) {
  std::printf(
      "\n3. default campaign through the local backend (artifacts off; pretraining %d epochs "
      "on %d background people; epochs 0 = the pretrained model)\n",
      pretrain.epochs, pretrain.background_size);
  const v1::TaskAssignment people = CampaignTask("people", 25, 1, pretrain);
  const v1::TaskAssignment updates = CampaignTask("updates", 40, 2, pretrain);
  workers::LocalBackend backend("off");
  TaskRun parallel_runs[2];
  const Clock::time_point parallel_start = Clock::now();
  {
    std::thread a([&] { parallel_runs[0] = RunTask(backend, people); });
    std::thread b([&] { parallel_runs[1] = RunTask(backend, updates); });
    a.join();
    b.join();
  }
  const double parallel = Seconds(parallel_start);
  const TaskRun sequential[2] = {RunTask(backend, people), RunTask(backend, updates)};
  const double serial = sequential[0].seconds + sequential[1].seconds;
  const char* names[2] = {"people 25", "updates 40"};
  for (int i = 0; i < 2; ++i) {
    const TaskRun& run = sequential[i];
    std::printf(
        "   %-10s %6.1f s alone, %6.1f s in parallel, %llu training tokens (%.0f tokens/s alone)\n",
        names[i], run.seconds, parallel_runs[i].seconds,
        run.result.ok() ? static_cast<unsigned long long>(run.result->tokens()) : 0ULL,
        run.result.ok() ? static_cast<double>(run.result->tokens()) / run.seconds : 0.0);
    PrintAccuracy(run);
    if (run.result.ok() && parallel_runs[i].result.ok() &&
        run.result->digest() != parallel_runs[i].result->digest()) {
      std::printf("   WARNING: parallel and sequential answers differ\n");
    }
  }
  std::printf("   campaign: %.1f s with 2 slots, %.1f s one task at a time\n", parallel, serial);
  std::printf("   [%s] campaign trains in < 3 minutes on 2 cores (2 slots)\n",
              Verdict(parallel < 180));
  return 0;
}

}  // namespace
}  // namespace ftb

int main(int argc, char** argv) { return ftb::Main(argc, argv); }
