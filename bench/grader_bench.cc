// Grading throughput of the `rules` grader: verdicts per second on one core
// (one thread), over a mix of items shaped like the FineTuneBench data and
// the recorded model answers (numbers with units, names, yes/no sentences,
// date-changed questions answered or declined, renamed library functions,
// medical guideline answers, verbose Gemini-style answers). The target is
// 1,000,000 verdicts/s/core; the bench prints PASS or MISS with the number,
// and a per-category breakdown to show where time goes.
//
// Usage: grader_bench [--seconds=S] (default 1 per repetition, 5 repetitions;
// the best repetition counts, as other processes share the machine).
// A plain main, not Google Benchmark: the number is a throughput over a
// fixed mix, and this prints it the way the issue asks.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "judge/rules_grader.h"

namespace {

struct Template {
  const char* category;
  int weight;  // relative frequency in the mix
  const char* reference;
  const char* answer_before;
  std::vector<const char*> answers;
};

// Shapes seen in the FineTuneBench responses (model_responses/) and data.
const std::vector<Template>& Templates() {
  static const auto* const kTemplates = new std::vector<Template>{
      {"number",
       20,
       "126",
       "",
       {"126", "127", "6'1\" (185 cm)", "265\n\n", "He weighs 126 pounds."}},
      {"number+unit", 6, "400,000 tons", "", {"400,000 tons", "About 400000 tons.", "300,000"}},
      {"age",
       6,
       "32",
       "",
       {"32", "18 years old\n\n",
        "27\n\n(Note:  This is based on information "
        "available online.  Age can be difficult to "
        "verify definitively.)\n"}},
      {"word", 20, "pilot", "", {"pilot", "Software engineer\n", "Pilot.", "crimson"}},
      {"name", 8, "Nakanolaj", "", {"Nakanolaj", "The Land of the Lost\n\n", "Nakanol"}},
      {"phrase", 4, "police officer", "", {"police officer", "He is a police officer.", "doctor"}},
      {"yes/no",
       20,
       "No",
       "",
       {"No", "Yes", "No.\n", "Yes, he is.", "No, she is not older than 40."}},
      {"none",
       6,
       "None",
       "",
       {"None", "I don't know.", "Rafael Nadal",
        "As of my last update, I cannot provide information about events "
        "in September 2025."}},
      {"updated",
       5,
       "apply_transform",
       "transform",
       {"apply_transform", "transform", "fit_transform", "Use apply_transform(X)."}},
      {"medical",
       3,
       "14 days",
       "10 days",
       {"14 days", "10 days", "The recommended duration is 14 days of bismuth quadruple therapy."}},
      {"abstain",
       2,
       "45",
       "",
       {"Unknown\n\nZoqog Gewulu is a fictional character.  There is no established age.\n"}},
  };
  return *kTemplates;
}

struct Mix {
  std::vector<ftb::v1::JudgeItem> items;
  std::vector<std::string> categories;  // parallel to items
};

// Deterministic (a fixed LCG), so every run grades the same items.
Mix MakeMix(size_t n) {
  Mix mix;
  int total_weight = 0;
  for (const Template& t : Templates()) total_weight += t.weight;
  uint64_t state = 42;
  auto next = [&state] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>(state >> 33);
  };
  for (size_t i = 0; i < n; ++i) {
    int pick = static_cast<int>(next() % static_cast<uint32_t>(total_weight));
    const Template* t = &Templates().front();
    for (const Template& candidate : Templates()) {
      if (pick < candidate.weight) {
        t = &candidate;
        break;
      }
      pick -= candidate.weight;
    }
    ftb::v1::JudgeItem& item = mix.items.emplace_back();
    item.set_cell_id("cell");
    item.set_question_type("memorization");
    item.set_question_id("q#" + std::to_string(i));
    item.set_reference(t->reference);
    item.set_answer_before(t->answer_before);
    item.set_answer(t->answers[next() % t->answers.size()]);
    mix.categories.push_back(t->category);
  }
  return mix;
}

// Grades items[indexes] round-robin for `seconds`; returns verdicts/s.
double Measure(const ftb::judge::RulesGrader& grader, const std::vector<ftb::v1::JudgeItem>& items,
               double seconds, uint64_t* checksum) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  uint64_t graded = 0;
  auto now = start;
  while (now < deadline) {
    for (const ftb::v1::JudgeItem& item : items) {
      ftb::judge::Verdict v = grader.Grade(item);
      *checksum += static_cast<uint64_t>(v.kind) + v.reason.size();
    }
    graded += items.size();
    now = Clock::now();
  }
  return static_cast<double>(graded) / std::chrono::duration<double>(now - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 1.0;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--seconds=", 10) == 0) {
      seconds = std::atof(argv[i] + 10);
    } else {
      std::fprintf(stderr, "usage: %s [--seconds=S]\n", argv[0]);
      return 2;
    }
  }
  constexpr double kTarget = 1'000'000;
  constexpr int kRepetitions = 5;
  const Mix mix = MakeMix(4096);
  const ftb::judge::RulesGrader grader;
  uint64_t checksum = 0;

  // Verdict distribution of the mix, so the mix is visible in the output.
  std::map<std::string, int> verdicts;
  for (const auto& item : mix.items) ++verdicts[std::string(grader.Grade(item).name())];

  std::vector<double> rates;
  for (int r = 0; r < kRepetitions; ++r) {
    rates.push_back(Measure(grader, mix.items, seconds, &checksum));
  }
  std::sort(rates.begin(), rates.end());
  const double best = rates.back();
  const double median = rates[rates.size() / 2];

  std::printf("grader_bench: rules grader (%s), 1 thread, %zu items, %d x %.1fs\n",
              std::string(grader.id()).c_str(), mix.items.size(), kRepetitions, seconds);
  std::printf("  verdicts in the mix:");
  for (const auto& [name, count] : verdicts) std::printf(" %s=%d", name.c_str(), count);
  std::printf("\n  per category (verdicts/s, 0.2s each):\n");
  std::map<std::string, std::vector<ftb::v1::JudgeItem>> by_category;
  for (size_t i = 0; i < mix.items.size(); ++i) {
    by_category[mix.categories[i]].push_back(mix.items[i]);
  }
  for (const auto& [category, items] : by_category) {
    std::printf("    %-12s %6zu items %12.0f/s\n", category.c_str(), items.size(),
                Measure(grader, items, 0.2, &checksum));
  }
  std::printf("  median %.0f verdicts/s/core, best %.0f verdicts/s/core (checksum %llu)\n", median,
              best, static_cast<unsigned long long>(checksum % 1000));
  std::printf("%s: %.0f verdicts/s/core (target %.0f)\n", best >= kTarget ? "PASS" : "MISS", best,
              kTarget);
  return 0;
}
