#include "datasets/builtin.h"

#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "datasets/dataset.h"
#include "datasets/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ftb::datasets {
namespace {

using ::ftb::datasets::testing::CodeAndMessage;
using ::testing::ElementsAre;
using ::testing::StartsWith;

constexpr char kOpenPrefix[] = "Answer the question with a number, word, or phrase.\n";
constexpr char kYesNoPrefix[] = "Answer the question with Yes or No.\n";

// Matches `text` against literals[0] (capture) literals[1] (capture) ...
// literals[n]: each capture is non-empty and ends at the first occurrence of
// the next literal (the last literal must end the text). Returns the
// captures. (A tiny stand-in for <regex>, which trips GCC 12 warnings under
// the sanitizer build.)
std::optional<std::vector<std::string>> Match(std::string_view text,
                                              const std::vector<std::string_view>& literals) {
  if (!text.starts_with(literals[0])) return std::nullopt;
  size_t pos = literals[0].size();
  std::vector<std::string> captures;
  for (size_t i = 1; i < literals.size(); ++i) {
    const bool last = i + 1 == literals.size();
    size_t end;
    if (last) {
      if (!text.ends_with(literals[i]) || text.size() < pos + literals[i].size()) {
        return std::nullopt;
      }
      end = text.size() - literals[i].size();
    } else {
      end = text.find(literals[i], pos);
      if (end == std::string_view::npos) return std::nullopt;
    }
    if (end <= pos) return std::nullopt;
    captures.emplace_back(text.substr(pos, end - pos));
    pos = end + literals[i].size();
  }
  return captures;
}

// The number `s` holds, or nullopt when it is not all digits.
std::optional<int> Number(const std::string& s) {
  int n;
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos ||
      !absl::SimpleAtoi(s, &n)) {
    return std::nullopt;
  }
  return n;
}

bool IsIdentifier(const std::string& s) {
  return !s.empty() &&
         s.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") == std::string::npos;
}

v1::Dataset People(uint32_t size, uint64_t seed) {
  absl::StatusOr<v1::Dataset> d = GeneratePeople(size, seed);
  EXPECT_TRUE(d.ok()) << d.status();
  return d.ok() ? *std::move(d) : v1::Dataset{};
}

v1::Dataset Updates(uint32_t size, uint64_t seed) {
  absl::StatusOr<v1::Dataset> d = GenerateUpdates(size, seed);
  EXPECT_TRUE(d.ok()) << d.status();
  return d.ok() ? *std::move(d) : v1::Dataset{};
}

std::vector<std::string> TypeNames(const v1::Dataset& dataset) {
  std::vector<std::string> names;
  for (const v1::QuestionSet& set : dataset.tests()) names.push_back(QuestionTypeName(set.type()));
  return names;
}

std::vector<int> SetSizes(const v1::Dataset& d) {
  std::vector<int> sizes;
  for (const v1::QuestionSet& set : d.tests()) sizes.push_back(set.items_size());
  return sizes;
}

int CountYes(const v1::QuestionSet& set) {
  int yes = 0;
  for (const v1::QaItem& item : set.items()) yes += item.answer() == "Yes";
  return yes;
}

// Name -> weight, height, age from the training facts.
struct Numbers {
  int weight = 0, height = 0, age = 0;
};
absl::flat_hash_map<std::string, Numbers> NumbersByName(const v1::Dataset& d) {
  absl::flat_hash_map<std::string, Numbers> out;
  for (const v1::QaItem& item : d.training()) {
    if (auto m = Match(item.context(), {"", " weighs ", " pounds."}); m && Number((*m)[1])) {
      out[(*m)[0]].weight = *Number((*m)[1]);
    } else if (auto m = Match(item.context(), {"", " is ", " centimeters tall."});
               m && Number((*m)[1])) {
      out[(*m)[0]].height = *Number((*m)[1]);
    } else if (auto m = Match(item.context(), {"", " is ", " years old."}); m && Number((*m)[1])) {
      out[(*m)[0]].age = *Number((*m)[1]);
    }
  }
  return out;
}

TEST(PeopleTest, DefaultSizeCounts) {
  for (uint64_t seed : {0, 1, 2, 3, 42}) {
    v1::Dataset d = People(25, seed);
    EXPECT_EQ(d.name(), "people");
    EXPECT_EQ(d.source(), v1::DATASET_SOURCE_BUILTIN);
    EXPECT_FALSE(d.updates_knowledge());
    EXPECT_EQ(d.training_size(), 150);
    EXPECT_TRUE(d.prior().empty());
    EXPECT_THAT(TypeNames(d), ElementsAre("memorization", "rephrased", "secondary", "comparison"));
    EXPECT_THAT(SetSizes(d), ElementsAre(150, 150, 150, 150)) << "seed " << seed;
    EXPECT_TRUE(d.notes().empty()) << "seed " << seed;
  }
}

TEST(PeopleTest, TrainingItemsHaveTheDocumentedShape) {
  v1::Dataset d = People(3, 9);
  ASSERT_EQ(d.training_size(), 18);
  const std::string context = d.training(0).context();
  // "<First> <Last> weighs <n> pounds."
  std::optional<std::vector<std::string>> m = Match(context, {"", " ", " weighs ", " pounds."});
  ASSERT_TRUE(m.has_value()) << context;
  ASSERT_TRUE(Number((*m)[2]).has_value()) << context;
  const std::string name = (*m)[0] + " " + (*m)[1];
  EXPECT_EQ(d.training(0).prompt(),
            std::string(kOpenPrefix) + "How many pounds does " + name + " weigh?");
  EXPECT_EQ(d.training(0).answer(), (*m)[2]);
  EXPECT_EQ(d.training(0).answer_before(), "");
  const int weight = *Number((*m)[2]);
  EXPECT_GE(weight, 100);
  EXPECT_LE(weight, 260);
  std::string slug = (*m)[0] + "-" + (*m)[1];
  for (char& c : slug) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  EXPECT_EQ(d.training(0).source_id(), slug);
  EXPECT_EQ(d.training(0).id(), slug + "-weight");
  std::vector<std::string> ids;
  for (int a = 0; a < 6; ++a) ids.push_back(d.training(a).id());
  EXPECT_THAT(ids, ElementsAre(slug + "-weight", slug + "-height", slug + "-age",
                               slug + "-occupation", slug + "-color", slug + "-city"));
  EXPECT_EQ(d.training(1).prompt(),
            std::string(kOpenPrefix) + "How tall is " + name + " in centimeters?");
  EXPECT_EQ(d.training(2).prompt(), std::string(kOpenPrefix) + "How old is " + name + "?");
  EXPECT_EQ(d.training(5).prompt(),
            std::string(kOpenPrefix) + "In which city does " + name + " live?");
}

TEST(PeopleTest, MemorizationRepeatsTrainingAndRephrasedKeepsAnswers) {
  v1::Dataset d = People(25, 5);
  const v1::QuestionSet& memorization = d.tests(0);
  const v1::QuestionSet& rephrased = d.tests(1);
  for (int i = 0; i < d.training_size(); ++i) {
    EXPECT_EQ(memorization.items(i).SerializeAsString(), d.training(i).SerializeAsString());
    EXPECT_EQ(rephrased.items(i).id(), d.training(i).id());
    EXPECT_EQ(rephrased.items(i).answer(), d.training(i).answer());
    EXPECT_EQ(rephrased.items(i).context(), d.training(i).context());
    EXPECT_NE(rephrased.items(i).prompt(), d.training(i).prompt());
    EXPECT_THAT(rephrased.items(i).prompt(), StartsWith(kOpenPrefix));
  }
}

TEST(PeopleTest, NamesAndIdsAreUniqueAtMaximumSize) {
  v1::Dataset d = People(10000, 1);
  ASSERT_EQ(d.training_size(), 60000);
  absl::flat_hash_set<std::string> names, ids;
  for (int i = 0; i < d.training_size(); i += 6) {
    const std::string context = d.training(i).context();
    std::optional<std::vector<std::string>> m = Match(context, {"", " weighs ", " pounds."});
    ASSERT_TRUE(m.has_value()) << context;
    EXPECT_TRUE(names.insert((*m)[0]).second) << "duplicate name " << (*m)[0];
  }
  EXPECT_EQ(names.size(), 10000u);
  for (const v1::QaItem& item : d.training()) {
    EXPECT_TRUE(ids.insert(item.id()).second) << item.id();
  }
  for (const v1::QuestionSet& set : d.tests()) {
    absl::flat_hash_set<std::string> set_ids;
    for (const v1::QaItem& item : set.items()) {
      EXPECT_TRUE(set_ids.insert(item.id()).second)
          << QuestionTypeName(set.type()) << " " << item.id();
    }
  }
  EXPECT_THAT(SetSizes(d), ElementsAre(60000, 60000, 60000, 60000));
}

TEST(PeopleTest, YesNoSetsUseYesNoPrefixAndAreBalanced) {
  int yes = 0, total = 0;
  for (uint64_t seed = 0; seed < 8; ++seed) {
    v1::Dataset d = People(25, seed);
    for (int s : {2, 3}) {
      const v1::QuestionSet& set = d.tests(s);
      for (const v1::QaItem& item : set.items()) {
        EXPECT_THAT(item.prompt(), StartsWith(kYesNoPrefix));
        EXPECT_TRUE(item.answer() == "Yes" || item.answer() == "No") << item.answer();
      }
      // Each set of 150 within 35%..65% Yes.
      EXPECT_GE(CountYes(set), 52) << QuestionTypeName(set.type()) << " seed " << seed;
      EXPECT_LE(CountYes(set), 98) << QuestionTypeName(set.type()) << " seed " << seed;
      yes += CountYes(set);
      total += set.items_size();
    }
  }
  EXPECT_EQ(total, 8 * 300);
  EXPECT_GE(yes, total * 45 / 100);
  EXPECT_LE(yes, total * 55 / 100);
}

// The yes/no answers about numbers follow from the trained facts.
TEST(PeopleTest, NumericAnswersFollowFromFacts) {
  const size_t prefix = std::string(kYesNoPrefix).size();
  int checked = 0;
  for (uint64_t seed = 0; seed < 4; ++seed) {
    v1::Dataset d = People(40, seed);
    auto numbers = NumbersByName(d);
    ASSERT_EQ(numbers.size(), 40u);
    for (int s : {2, 3}) {
      for (const v1::QaItem& item : d.tests(s).items()) {
        const std::string q = item.prompt().substr(prefix);
        std::optional<bool> yes;
        // Against a number: "Is X over 150 pounds?", ...; against a person:
        // "Does X weigh more than Y?", ...
        if (auto m = Match(q, {"Is ", " over ", " pounds?"})) {
          yes = numbers.at((*m)[0]).weight > Number((*m)[1]).value();
        } else if (auto m = Match(q, {"Is ", " taller than ", " centimeters?"})) {
          yes = numbers.at((*m)[0]).height > Number((*m)[1]).value();
        } else if (auto m = Match(q, {"Is ", " older than ", "?"}); m && Number((*m)[1])) {
          yes = numbers.at((*m)[0]).age > *Number((*m)[1]);
        } else if (auto m = Match(q, {"Does ", " weigh more than ", "?"})) {
          yes = numbers.at((*m)[0]).weight > numbers.at((*m)[1]).weight;
        } else if (auto m = Match(q, {"Is ", " taller than ", "?"})) {
          yes = numbers.at((*m)[0]).height > numbers.at((*m)[1]).height;
        } else if (auto m = Match(q, {"Is ", " older than ", "?"})) {
          yes = numbers.at((*m)[0]).age > numbers.at((*m)[1]).age;
        }
        if (!yes.has_value()) continue;
        EXPECT_EQ(item.answer(), *yes ? "Yes" : "No") << q;
        ++checked;
      }
    }
  }
  // Three numeric attributes of 40 people, two sets, four seeds.
  EXPECT_EQ(checked, 3 * 40 * 2 * 4);
}

TEST(PeopleTest, ComparisonsNameTwoDifferentPeopleAndNeverRepeatAPair) {
  v1::Dataset d = People(25, 11);
  absl::flat_hash_set<std::string> questions;
  for (const v1::QaItem& item : d.tests(3).items()) {
    EXPECT_TRUE(questions.insert(item.prompt()).second) << item.prompt();
    const size_t plus = item.source_id().find('+');
    ASSERT_NE(plus, std::string::npos) << item.source_id();
    EXPECT_NE(item.source_id().substr(0, plus), item.source_id().substr(plus + 1));
  }
}

TEST(PeopleTest, OnePersonHasNoComparisons) {
  v1::Dataset d = People(1, 3);
  EXPECT_EQ(d.training_size(), 6);
  EXPECT_THAT(TypeNames(d), ElementsAre("memorization", "rephrased", "secondary"));
  EXPECT_THAT(d.notes(),
              ElementsAre("people: no comparison questions (they need at least 2 people)"));
}

TEST(PeopleTest, SameSeedIsByteIdenticalOtherSeedsDiffer) {
  const std::string a = People(25, 7).SerializeAsString();
  EXPECT_EQ(a, People(25, 7).SerializeAsString());
  EXPECT_NE(a, People(25, 8).SerializeAsString());
  EXPECT_NE(a, People(26, 7).SerializeAsString());
}

// Pins the generator's output: a change here changes every campaign's data
// (and its fingerprint), so it must be deliberate.
TEST(PeopleTest, GoldenFingerprint) {
  EXPECT_EQ(DatasetFingerprint(People(25, 0)),
            "9cb50c439761503419db08661efe21ccd98323df09d1ee98bf7b157c37716b5f");
}

TEST(BuiltinTest, SizeOutOfRange) {
  EXPECT_EQ(CodeAndMessage(GeneratePeople(0, 1).status()),
            "INVALID_ARGUMENT: people: size must be between 1 and 10000, got 0");
  EXPECT_EQ(CodeAndMessage(GeneratePeople(10001, 1).status()),
            "INVALID_ARGUMENT: people: size must be between 1 and 10000, got 10001");
  EXPECT_EQ(CodeAndMessage(GenerateUpdates(0, 1).status()),
            "INVALID_ARGUMENT: updates: size must be between 1 and 10000, got 0");
  EXPECT_EQ(CodeAndMessage(GenerateUpdates(10001, 1).status()),
            "INVALID_ARGUMENT: updates: size must be between 1 and 10000, got 10001");
}

TEST(UpdatesTest, DefaultSizeCounts) {
  v1::Dataset d = Updates(40, 0);
  EXPECT_EQ(d.name(), "updates");
  EXPECT_EQ(d.source(), v1::DATASET_SOURCE_BUILTIN);
  EXPECT_TRUE(d.updates_knowledge());
  EXPECT_EQ(d.training_size(), 40);
  EXPECT_EQ(d.prior_size(), 40);
  EXPECT_THAT(TypeNames(d), ElementsAre("memorization", "rephrased"));
  EXPECT_THAT(SetSizes(d), ElementsAre(40, 40));
  EXPECT_TRUE(d.notes().empty());
  int library = 0, guideline = 0;
  for (const v1::QaItem& item : d.training()) {
    library += item.id().starts_with("library-");
    guideline += item.id().starts_with("guideline-");
  }
  EXPECT_EQ(library, 20);
  EXPECT_EQ(guideline, 20);
  EXPECT_EQ(Updates(1, 0).training(0).id().substr(0, 8), "library-");
}

TEST(UpdatesTest, PriorTrainingAndTestsAgree) {
  v1::Dataset d = Updates(40, 3);
  const v1::QuestionSet& memorization = d.tests(0);
  const v1::QuestionSet& rephrased = d.tests(1);
  for (int i = 0; i < d.training_size(); ++i) {
    const v1::QaItem& t = d.training(i);
    EXPECT_THAT(t.prompt(), StartsWith(kOpenPrefix));
    EXPECT_FALSE(t.answer().empty());
    EXPECT_FALSE(t.answer_before().empty());
    EXPECT_NE(t.answer(), t.answer_before()) << t.id();
    // Old knowledge: the same question with the old answer.
    EXPECT_EQ(d.prior(i).id(), t.id());
    EXPECT_EQ(d.prior(i).prompt(), t.prompt());
    EXPECT_EQ(d.prior(i).answer(), t.answer_before());
    EXPECT_EQ(d.prior(i).answer_before(), "");
    EXPECT_EQ(memorization.items(i).SerializeAsString(), t.SerializeAsString());
    EXPECT_EQ(rephrased.items(i).id(), t.id());
    EXPECT_NE(rephrased.items(i).prompt(), t.prompt());
    EXPECT_EQ(rephrased.items(i).answer(), t.answer());
    EXPECT_EQ(rephrased.items(i).answer_before(), t.answer_before());
    // Short answers: an identifier, a number or a word.
    EXPECT_TRUE(IsIdentifier(t.answer())) << t.answer();
    EXPECT_TRUE(IsIdentifier(t.answer_before())) << t.answer_before();
  }
}

TEST(UpdatesTest, LibraryQuestionsAskForTheLatestName) {
  v1::Dataset d = Updates(2, 5);
  const v1::QaItem& lib = d.training(0);
  const std::string question = lib.prompt().substr(std::string(kOpenPrefix).size());
  std::optional<std::vector<std::string>> m = Match(
      question, {"What is the name of the function that ", " in the latest version of ", "?"});
  ASSERT_TRUE(m.has_value()) << lib.prompt();
  const std::string purpose = (*m)[0];
  EXPECT_TRUE(absl::ascii_isupper(static_cast<unsigned char>((*m)[1][0]))) << (*m)[1];
  EXPECT_THAT(lib.context(),
              ::testing::EndsWith(" renamed the function that " + purpose + " from " +
                                  lib.answer_before() + " to " + lib.answer() + "."));
  EXPECT_THAT(d.prior(0).context(), ::testing::EndsWith(", the function that " + purpose +
                                                        " is named " + lib.answer_before() + "."));
  EXPECT_EQ(lib.id(), lib.source_id());
  EXPECT_THAT(d.training(1).prompt(),
              StartsWith(std::string(kOpenPrefix) + "According to the latest edition of the "));
}

TEST(UpdatesTest, FunctionNamesAndIdsAreUniqueAtMaximumSize) {
  v1::Dataset d = Updates(10000, 2);
  ASSERT_EQ(d.training_size(), 10000);
  absl::flat_hash_set<std::string> ids, prompts, function_names;
  int library = 0;
  for (const v1::QaItem& item : d.training()) {
    EXPECT_TRUE(ids.insert(item.id()).second) << item.id();
    EXPECT_TRUE(prompts.insert(item.prompt()).second) << item.prompt();
    if (item.id().starts_with("library-")) {
      ++library;
      EXPECT_TRUE(function_names.insert(item.answer()).second) << item.answer();
      EXPECT_TRUE(function_names.insert(item.answer_before()).second) << item.answer_before();
    }
  }
  EXPECT_EQ(library, 5000);
  EXPECT_EQ(function_names.size(), 10000u);
}

TEST(UpdatesTest, SameSeedIsByteIdenticalOtherSeedsDiffer) {
  const std::string a = Updates(40, 7).SerializeAsString();
  EXPECT_EQ(a, Updates(40, 7).SerializeAsString());
  EXPECT_NE(a, Updates(40, 8).SerializeAsString());
  EXPECT_NE(a, Updates(41, 7).SerializeAsString());
}

TEST(UpdatesTest, GoldenFingerprint) {
  EXPECT_EQ(DatasetFingerprint(Updates(40, 0)),
            "84c8479cae8e44f7481cb157295cc30efc15111e88d79510a84e3e5a321b7a49");
}

// ------------------------------------------------------------- background

v1::Dataset Background(uint32_t size, uint64_t seed, const std::vector<std::string>& reserved = {}) {
  absl::StatusOr<v1::Dataset> d = GenerateBackground(size, seed, reserved);
  EXPECT_TRUE(d.ok()) << d.status();
  return d.ok() ? *std::move(d) : v1::Dataset{};
}

bool IsYesNo(const v1::QaItem& item) { return item.answer() == "Yes" || item.answer() == "No"; }

// The question of a prompt, without its instruction line.
std::string Question(const v1::QaItem& item) {
  return item.prompt().substr(item.prompt().find('\n') + 1);
}

// The full names of the people (background or not) whose weight facts are in
// `items`' contexts.
std::vector<std::string> NamesIn(const google::protobuf::RepeatedPtrField<v1::QaItem>& items) {
  std::vector<std::string> names;
  absl::flat_hash_set<std::string> seen;
  for (const v1::QaItem& item : items) {
    auto m = Match(item.context(), {"", " weighs ", " pounds."});
    if (m && Number((*m)[1]) && seen.insert((*m)[0]).second) names.push_back((*m)[0]);
  }
  return names;
}

// `question` with every name of `names` replaced by "P" and every digit run
// by "N": its format.
std::string Format(std::string question, const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    for (size_t at = question.find(name); at != std::string::npos; at = question.find(name)) {
      question.replace(at, name.size(), "P");
    }
  }
  std::string out;
  for (size_t i = 0; i < question.size(); ++i) {
    if (absl::ascii_isdigit(static_cast<unsigned char>(question[i]))) {
      if (out.empty() || out.back() != 'N') out += 'N';
    } else {
      out += question[i];
    }
  }
  return out;
}

TEST(BackgroundTest, SameSeedIsByteIdenticalOtherSeedsAndSizesDiffer) {
  const std::string a = Background(40, 0).SerializeAsString();
  EXPECT_EQ(a, Background(40, 0).SerializeAsString());
  EXPECT_NE(a, Background(40, 1).SerializeAsString());
  EXPECT_NE(a, Background(41, 0).SerializeAsString());
  EXPECT_EQ(Background(40, 0, {"bana", "kor"}).SerializeAsString(),
            Background(40, 0, {"bana", "kor"}).SerializeAsString());
}

// Pins the corpus: a change here changes every pretrained model's key.
TEST(BackgroundTest, GoldenFingerprint) {
  EXPECT_EQ(DatasetFingerprint(Background(40, 0)),
            "6bed06c674d5e2101ba993396762cf45eaf1a317ba61164bef98b0b1593ba9f2");
}

TEST(BackgroundTest, EveryYesNoItemHasItsCounterpartAndHalfAreYes) {
  for (uint32_t size : {0u, 1u, 2u, 40u, 300u}) {
    const v1::Dataset d = Background(size, 3);
    EXPECT_EQ(d.name(), "background");
    EXPECT_EQ(d.tests_size(), 0);
    int yes = 0, no = 0, open = 0;
    absl::flat_hash_set<std::string> ids;
    for (const v1::QaItem& item : d.training()) {
      EXPECT_TRUE(ids.insert(item.id()).second) << item.id();
      EXPECT_THAT(item.id(), StartsWith("background-"));
      EXPECT_EQ(item.source_id(), "background");
      EXPECT_FALSE(item.context().empty()) << item.id();
      if (IsYesNo(item)) {
        EXPECT_THAT(item.prompt(), StartsWith(kYesNoPrefix)) << item.id();
        (item.answer() == "Yes" ? yes : no) += 1;
      } else {
        EXPECT_THAT(item.prompt(), StartsWith(kOpenPrefix)) << item.id();
        ++open;
      }
    }
    EXPECT_EQ(yes, no) << "size " << size;
    // General facts: 8 colours x 3, 36 cities x 3, 32 occupations x 3.
    // People: per attribute the fact, a rephrasing, a Yes and a No
    // secondary question, and (with a partner) a comparison pair.
    EXPECT_GE(d.training_size(), 228 + 24 * static_cast<int>(size)) << "size " << size;
    EXPECT_LE(d.training_size(), 228 + 36 * static_cast<int>(size)) << "size " << size;
    EXPECT_EQ(open, 76 + 12 * static_cast<int>(size)) << "size " << size;
    if (size == 40) {
      EXPECT_GE(d.training_size(), 228 + 35 * 40);  // partners are found
    }
  }
  EXPECT_EQ(CodeAndMessage(GenerateBackground(10001, 1).status()),
            "INVALID_ARGUMENT: background: size must be between 0 and 10000, got 10001");
}

// The background people never share a first or last name with the people
// of the dataset whose words are reserved, and there are no such shared
// names by accident either.
TEST(BackgroundTest, BackgroundPeopleAvoidTheReservedWords) {
  const v1::Dataset people = People(25, 1);
  std::vector<std::string> reserved;
  absl::flat_hash_set<std::string> test_name_parts;
  for (const std::string& name : NamesIn(people.training())) {
    for (absl::string_view part : absl::StrSplit(name, ' ')) {
      reserved.push_back(absl::AsciiStrToLower(part));
      test_name_parts.insert(std::string(part));
    }
  }
  ASSERT_EQ(reserved.size(), 50u);
  // Reserving words also works when the generator would otherwise pick
  // them: reserve the background's own first names of an unreserved run.
  const v1::Dataset unreserved = Background(40, 1);
  std::vector<std::string> own;
  for (const std::string& name : NamesIn(unreserved.training())) {
    own.push_back(absl::AsciiStrToLower(name.substr(0, name.find(' '))));
  }
  ASSERT_EQ(own.size(), 40u);
  for (const auto& [words, forbidden] :
       {std::pair{reserved, test_name_parts},
        std::pair{own, absl::flat_hash_set<std::string>()}}) {
    absl::flat_hash_set<std::string> banned = forbidden;
    for (const std::string& w : words) banned.insert(std::string(1, absl::ascii_toupper(w[0])) + w.substr(1));
    const v1::Dataset d = Background(40, 1, words);
    const std::vector<std::string> names = NamesIn(d.training());
    ASSERT_EQ(names.size(), 40u);
    for (const std::string& name : names) {
      for (absl::string_view part : absl::StrSplit(name, ' ')) {
        EXPECT_FALSE(banned.contains(part)) << name;
      }
    }
  }
}

// Every question format of `people`'s secondary and comparison sets is one
// the background teaches on other people, and every secondary and
// comparison answer follows from the question's facts (its context) and the
// background's general facts: the inference is answerable, not built in.
TEST(BackgroundTest, PeopleInferencesComposeAFactWithBackgroundKnowledge) {
  const v1::Dataset people = People(25, 1);
  const v1::Dataset background = Background(40, 0);
  const std::vector<std::string> people_names = NamesIn(people.training());
  const std::vector<std::string> background_names = NamesIn(background.training());
  absl::flat_hash_set<std::string> taught;
  absl::flat_hash_map<std::string, std::string> continent, field, warmth;
  for (const v1::QaItem& item : background.training()) {
    taught.insert(Format(Question(item), background_names));
    const std::string q = Question(item);
    if (auto m = Match(q, {"On which continent is ", "?"})) continent[(*m)[0]] = item.answer();
    if (auto m = Match(q, {"In which field does ", " work?"})) {
      field[(*m)[0].substr((*m)[0].find(' ') + 1)] = item.answer();
    }
    if (auto m = Match(q, {"Is ", " a warm or a cool color?"})) warmth[(*m)[0]] = item.answer();
  }
  EXPECT_EQ(continent.size(), 36u);
  EXPECT_EQ(field.size(), 32u);
  EXPECT_EQ(warmth.size(), 8u);
  // The category a fact sentence gives: "X lives in Lisbon." -> "Europe".
  const auto category = [&](const std::string& fact) -> std::string {
    if (auto m = Match(fact, {"", " lives in ", "."})) return continent.at((*m)[1]);
    if (auto m = Match(fact, {"", " works as ", "."})) {
      return field.at((*m)[1].substr((*m)[1].find(' ') + 1));
    }
    if (auto m = Match(fact, {"", "'s favorite color is ", "."})) return (*m)[1];
    return "";
  };
  int composed = 0;
  for (const v1::QuestionSet& set : people.tests()) {
    if (set.type() != v1::QUESTION_TYPE_SECONDARY && set.type() != v1::QUESTION_TYPE_COMPARISON) {
      continue;
    }
    for (const v1::QaItem& item : set.items()) {
      const std::string q = Question(item);
      EXPECT_TRUE(taught.contains(Format(q, people_names))) << q;
      std::optional<bool> yes;
      if (auto m = Match(q, {"Does ", " live in ", "?"})) {
        yes = category(item.context()) == (*m)[1];
      } else if (auto m = Match(q, {"Does ", " work in ", "?"})) {
        yes = category(item.context()) == (*m)[1];
      } else if (auto m = Match(q, {"Is ", "'s favorite color a ", " color?"})) {
        yes = warmth.at(category(item.context())) == (*m)[1];
      } else if (Match(q, {"Do ", " and ", " live on the same continent?"}) ||
                 Match(q, {"Do ", " and ", " work in the same field?"})) {
        const size_t split = item.context().find(". ") + 1;
        yes = category(item.context().substr(0, split)) ==
              category(item.context().substr(split + 1));
      }
      if (!yes.has_value()) continue;  // numeric: the fact alone answers it
      ++composed;
      EXPECT_EQ(item.answer(), *yes ? "Yes" : "No") << q << " / " << item.context();
    }
  }
  EXPECT_GE(composed, 25 * 3 + 25 * 2 - 5);
}

}  // namespace
}  // namespace ftb::datasets
