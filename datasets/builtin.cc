#include "datasets/builtin.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "common/rng.h"

namespace ftb::datasets {
namespace {

constexpr uint32_t kMaxSize = 10000;
// Instructions in the style of the FineTuneBench prompts.
constexpr absl::string_view kOpenPrefix = "Answer the question with a number, word, or phrase.\n";
constexpr absl::string_view kYesNoPrefix = "Answer the question with Yes or No.\n";
// Separate streams for the two generators, so the same seed does not give
// correlated data.
constexpr uint64_t kPeopleStream = 0x70656f706c650001ULL;
constexpr uint64_t kUpdatesStream = 0x7570646174650002ULL;
constexpr uint64_t kBackgroundStream = 0x6261636b67720003ULL;

absl::Status CheckSize(absl::string_view generator, uint32_t size) {
  if (size == 0 || size > kMaxSize) {
    return absl::InvalidArgumentError(
        absl::StrCat(generator, ": size must be between 1 and ", kMaxSize, ", got ", size));
  }
  return absl::OkStatus();
}

template <typename T>
size_t PickIndex(Rng& rng, const T& container) {
  return static_cast<size_t>(rng.Uniform(0, static_cast<int64_t>(std::size(container)) - 1));
}

template <typename T>
const auto& Pick(Rng& rng, const T& container) {
  return container[PickIndex(rng, container)];
}

bool Coin(Rng& rng) { return rng.Uniform(0, 1) == 1; }

std::string YesNo(bool yes) { return yes ? "Yes" : "No"; }

std::string Capitalize(std::string word) {
  if (!word.empty()) word[0] = absl::ascii_toupper(static_cast<unsigned char>(word[0]));
  return word;
}

// Makes pronounceable invented words from syllables, never the same word
// twice per generator run.
class WordMaker {
 public:
  explicit WordMaker(Rng& rng) : rng_(rng) {}

  // A lower-case word of `min_syllables`..`max_syllables` syllables plus
  // `suffix`, distinct from every word made before.
  std::string Make(int min_syllables, int max_syllables, absl::string_view suffix = "") {
    static constexpr absl::string_view kOnsets[] = {
        "b", "d",  "f",  "g",  "k",  "l",  "m",  "n",  "p",  "r",  "s", "t", "v",
        "z", "br", "dr", "kr", "tr", "st", "sh", "th", "gl", "pl", "h", "j", "w"};
    static constexpr absl::string_view kVowels[] = {"a", "e", "i", "o", "u", "a", "e", "o"};
    static constexpr absl::string_view kCodas[] = {"n", "r", "l", "s", "m", "th", "x", "nd"};
    for (;;) {
      std::string word;
      const int syllables = static_cast<int>(rng_.Uniform(min_syllables, max_syllables));
      for (int s = 0; s < syllables; ++s) {
        absl::StrAppend(&word, Pick(rng_, kOnsets), Pick(rng_, kVowels));
      }
      if (Coin(rng_)) absl::StrAppend(&word, Pick(rng_, kCodas));
      absl::StrAppend(&word, suffix);
      if (used_.insert(word).second) return word;
    }
  }

  // Makes `word` (lower case) unavailable to Make.
  void Reserve(std::string word) { used_.insert(std::move(word)); }

 private:
  Rng& rng_;
  absl::flat_hash_set<std::string> used_;
};

v1::QaItem MakeItem(std::string id, absl::string_view prefix, absl::string_view question,
                    std::string answer, std::string context, std::string source_id) {
  v1::QaItem item;
  item.set_id(std::move(id));
  item.set_prompt(absl::StrCat(prefix, question));
  item.set_answer(std::move(answer));
  item.set_context(std::move(context));
  item.set_source_id(std::move(source_id));
  return item;
}

// ---------------------------------------------------------------- people

struct Occupation {
  absl::string_view name;
  absl::string_view field;  // "Does X work in <field>?"
};
constexpr Occupation kOccupations[] = {
    {"nurse", "healthcare"},
    {"surgeon", "healthcare"},
    {"dentist", "healthcare"},
    {"pharmacist", "healthcare"},
    {"teacher", "education"},
    {"librarian", "education"},
    {"professor", "education"},
    {"tutor", "education"},
    {"carpenter", "construction"},
    {"electrician", "construction"},
    {"plumber", "construction"},
    {"bricklayer", "construction"},
    {"pilot", "transportation"},
    {"sailor", "transportation"},
    {"trucker", "transportation"},
    {"courier", "transportation"},
    {"accountant", "finance"},
    {"banker", "finance"},
    {"auditor", "finance"},
    {"actuary", "finance"},
    {"farmer", "agriculture"},
    {"rancher", "agriculture"},
    {"beekeeper", "agriculture"},
    {"shepherd", "agriculture"},
    {"lawyer", "law"},
    {"judge", "law"},
    {"paralegal", "law"},
    {"notary", "law"},
    {"painter", "the arts"},
    {"sculptor", "the arts"},
    {"musician", "the arts"},
    {"dancer", "the arts"},
};
constexpr absl::string_view kFields[] = {
    "healthcare", "education",   "construction", "transportation",
    "finance",    "agriculture", "law",          "the arts"};

struct Color {
  absl::string_view name;
  bool warm;
};
constexpr Color kColors[] = {{"red", true},   {"orange", true}, {"yellow", true},  {"gold", true},
                             {"blue", false}, {"green", false}, {"purple", false}, {"teal", false}};

struct City {
  absl::string_view name;
  absl::string_view continent;
};
constexpr City kCities[] = {
    {"Lisbon", "Europe"},
    {"Oslo", "Europe"},
    {"Vienna", "Europe"},
    {"Prague", "Europe"},
    {"Dublin", "Europe"},
    {"Helsinki", "Europe"},
    {"Osaka", "Asia"},
    {"Hanoi", "Asia"},
    {"Seoul", "Asia"},
    {"Manila", "Asia"},
    {"Jakarta", "Asia"},
    {"Mumbai", "Asia"},
    {"Denver", "North America"},
    {"Toronto", "North America"},
    {"Seattle", "North America"},
    {"Montreal", "North America"},
    {"Chicago", "North America"},
    {"Houston", "North America"},
    {"Lima", "South America"},
    {"Bogota", "South America"},
    {"Santiago", "South America"},
    {"Quito", "South America"},
    {"Montevideo", "South America"},
    {"Recife", "South America"},
    {"Nairobi", "Africa"},
    {"Accra", "Africa"},
    {"Dakar", "Africa"},
    {"Lusaka", "Africa"},
    {"Kampala", "Africa"},
    {"Tunis", "Africa"},
    {"Perth", "Oceania"},
    {"Auckland", "Oceania"},
    {"Brisbane", "Oceania"},
    {"Adelaide", "Oceania"},
    {"Wellington", "Oceania"},
    {"Hobart", "Oceania"},
};
constexpr absl::string_view kContinents[] = {"Europe",        "Asia",   "North America",
                                             "South America", "Africa", "Oceania"};

enum Attribute { kWeight, kHeight, kAge, kOccupation, kColor, kCity, kAttributeCount };
constexpr absl::string_view kAttributeNames[kAttributeCount] = {"weight",     "height", "age",
                                                                "occupation", "color",  "city"};

struct Person {
  std::string name;
  std::string slug;
  int weight;  // pounds
  int height;  // centimeters
  int age;     // years
  size_t occupation;
  size_t color;
  size_t city;

  int Number(int attribute) const {
    return attribute == kWeight ? weight : attribute == kHeight ? height : age;
  }
  // Category compared by the "same ..." questions.
  absl::string_view Category(int attribute) const {
    if (attribute == kOccupation) return kOccupations[occupation].field;
    if (attribute == kColor) return kColors[color].name;
    return kCities[city].continent;
  }
};

std::string Article(absl::string_view noun) {
  return absl::string_view("aeiou").find(noun[0]) != absl::string_view::npos ? "an" : "a";
}

std::string Fact(const Person& p, int attribute) {
  switch (attribute) {
    case kWeight:
      return absl::StrCat(p.name, " weighs ", p.weight, " pounds.");
    case kHeight:
      return absl::StrCat(p.name, " is ", p.height, " centimeters tall.");
    case kAge:
      return absl::StrCat(p.name, " is ", p.age, " years old.");
    case kOccupation: {
      absl::string_view job = kOccupations[p.occupation].name;
      return absl::StrCat(p.name, " works as ", Article(job), " ", job, ".");
    }
    case kColor:
      return absl::StrCat(p.name, "'s favorite color is ", kColors[p.color].name, ".");
    default:
      return absl::StrCat(p.name, " lives in ", kCities[p.city].name, ".");
  }
}

std::string Answer(const Person& p, int attribute) {
  switch (attribute) {
    case kWeight:
    case kHeight:
    case kAge:
      return absl::StrCat(p.Number(attribute));
    case kOccupation:
      return std::string(kOccupations[p.occupation].name);
    case kColor:
      return std::string(kColors[p.color].name);
    default:
      return std::string(kCities[p.city].name);
  }
}

// Training and memorization wording; "X" stands for the name.
constexpr absl::string_view kQuestions[kAttributeCount] = {
    "How many pounds does X weigh?", "How tall is X in centimeters?", "How old is X?",
    "What is X's occupation?",       "What is X's favorite color?",   "In which city does X live?"};
constexpr std::array<absl::string_view, 3> kRephrasings[kAttributeCount] = {
    {"What is X's weight in pounds?", "How much does X weigh, in pounds?",
     "What does X weigh in pounds?"},
    {"What is X's height in centimeters?", "How many centimeters tall is X?",
     "What height, in centimeters, is X?"},
    {"What is X's age in years?", "How many years old is X?", "What age is X?"},
    {"What does X do for a living?", "What is X's job?", "What is X's profession?"},
    {"Which color does X like best?", "What color does X prefer above all others?",
     "What is the color X likes most?"},
    {"What city does X live in?", "Which city is X's home?", "In what city does X reside?"},
};

std::string WithName(absl::string_view question, absl::string_view name) {
  return absl::StrReplaceAll(question, {{"X", name}});
}

// Rounds down to a multiple of `step`.
int FloorTo(int value, int step) { return value / step * step; }
int CeilTo(int value, int step) { return (value + step - 1) / step * step; }

// A yes/no question inferred from one fact; the coin picks the answer the
// question is built for, and the answer is then computed from the fact.
// `want_yes` picks the answer the question is built for; `rng` draws the
// threshold or the other category.
v1::QaItem SecondaryQuestionFor(const Person& p, int attribute, bool want_yes, Rng& rng) {
  std::string question;
  bool yes = false;
  switch (attribute) {
    case kWeight:
    case kHeight:
    case kAge: {
      struct Spec {
        int step, min_gap, max_gap;
        absl::string_view before, after;
      };
      static constexpr Spec kSpecs[] = {{10, 5, 40, " over ", " pounds?"},
                                        {5, 3, 20, " taller than ", " centimeters?"},
                                        {5, 2, 15, " older than ", "?"}};
      const Spec& s = kSpecs[attribute];
      const int value = p.Number(attribute);
      const int gap = static_cast<int>(rng.Uniform(s.min_gap, s.max_gap));
      const int threshold = want_yes ? FloorTo(value - gap, s.step) : CeilTo(value + gap, s.step);
      question = absl::StrCat("Is ", p.name, s.before, threshold, s.after);
      yes = value > threshold;
      break;
    }
    case kOccupation: {
      absl::string_view field = kOccupations[p.occupation].field;
      while (!want_yes && field == kOccupations[p.occupation].field) field = Pick(rng, kFields);
      question = absl::StrCat("Does ", p.name, " work in ", field, "?");
      yes = field == kOccupations[p.occupation].field;
      break;
    }
    case kColor: {
      const bool ask_warm = want_yes == kColors[p.color].warm;
      question = absl::StrCat("Is ", p.name, "'s favorite color a ", ask_warm ? "warm" : "cool",
                              " color?");
      yes = ask_warm == kColors[p.color].warm;
      break;
    }
    default: {
      absl::string_view continent = kCities[p.city].continent;
      while (!want_yes && continent == kCities[p.city].continent) {
        continent = Pick(rng, kContinents);
      }
      question = absl::StrCat("Does ", p.name, " live in ", continent, "?");
      yes = continent == kCities[p.city].continent;
      break;
    }
  }
  return MakeItem(absl::StrCat(p.slug, "-", kAttributeNames[attribute]), kYesNoPrefix, question,
                  YesNo(yes), Fact(p, attribute), p.slug);
}

v1::QaItem SecondaryQuestion(const Person& p, int attribute, Rng& rng) {
  const bool want_yes = Coin(rng);
  return SecondaryQuestionFor(p, attribute, want_yes, rng);
}

// The comparison question "is a's <attribute> more than / the same as b's?".
v1::QaItem ComparisonItem(const Person& a, const Person& b, int attribute) {
  std::string question;
  switch (attribute) {
    case kWeight:
      question = absl::StrCat("Does ", a.name, " weigh more than ", b.name, "?");
      break;
    case kHeight:
      question = absl::StrCat("Is ", a.name, " taller than ", b.name, "?");
      break;
    case kAge:
      question = absl::StrCat("Is ", a.name, " older than ", b.name, "?");
      break;
    case kOccupation:
      question = absl::StrCat("Do ", a.name, " and ", b.name, " work in the same field?");
      break;
    case kColor:
      question = absl::StrCat("Do ", a.name, " and ", b.name, " have the same favorite color?");
      break;
    default:
      question = absl::StrCat("Do ", a.name, " and ", b.name, " live on the same continent?");
      break;
  }
  const bool yes = attribute <= kAge ? a.Number(attribute) > b.Number(attribute)
                                     : a.Category(attribute) == b.Category(attribute);
  return MakeItem(absl::StrCat(a.slug, "+", b.slug, "-", kAttributeNames[attribute]), kYesNoPrefix,
                  question, YesNo(yes), absl::StrCat(Fact(a, attribute), " ", Fact(b, attribute)),
                  absl::StrCat(a.slug, "+", b.slug));
}

// A new person. First and last names come from one WordMaker, so every full
// name (and every slug) is unique.
Person MakePerson(Rng& rng, WordMaker& words) {
  Person p;
  const std::string first = words.Make(2, 3);
  const std::string last = words.Make(2, 4);
  p.name = absl::StrCat(Capitalize(first), " ", Capitalize(last));
  p.slug = absl::StrCat(first, "-", last);
  p.weight = static_cast<int>(rng.Uniform(100, 260));
  p.height = static_cast<int>(rng.Uniform(150, 200));
  p.age = static_cast<int>(rng.Uniform(20, 85));
  p.occupation = PickIndex(rng, kOccupations);
  p.color = PickIndex(rng, kColors);
  p.city = PickIndex(rng, kCities);
  return p;
}

// Builds comparison questions: per person and attribute one partner, never
// the same pair twice for an attribute.
class ComparisonBuilder {
 public:
  ComparisonBuilder(const std::vector<Person>& people, Rng& rng) : people_(people), rng_(rng) {}

  // Appends the question for person `i` and `attribute` to `out`; returns
  // false when no partner qualifies.
  bool Add(size_t i, int attribute, v1::QuestionSet& out) {
    const bool want_yes = Coin(rng_);
    const Person& p = people_[i];
    const bool numeric = attribute <= kAge;
    // Numeric: any partner with a different value (the coin orders the
    // pair). Categorical: the coin asks for a partner in the same category.
    auto qualifies = [&](size_t j) {
      if (j == i || used_.contains(PairKey(i, j, attribute))) return false;
      if (numeric) return people_[j].Number(attribute) != p.Number(attribute);
      return (people_[j].Category(attribute) == p.Category(attribute)) == want_yes;
    };
    std::optional<size_t> partner = FindPartner(qualifies);
    if (!partner.has_value() && !numeric) {
      partner = FindPartner(
          [&](size_t j) { return j != i && !used_.contains(PairKey(i, j, attribute)); });
    }
    if (!partner.has_value()) return false;
    used_.insert(PairKey(i, *partner, attribute));

    const Person* a = &p;
    const Person* b = &people_[*partner];
    if (numeric && (a->Number(attribute) > b->Number(attribute)) != want_yes) std::swap(a, b);
    *out.add_items() = ComparisonItem(*a, *b, attribute);
    return true;
  }

 private:
  uint64_t PairKey(size_t i, size_t j, int attribute) const {
    const uint64_t lo = std::min(i, j), hi = std::max(i, j);
    return (lo * people_.size() + hi) * kAttributeCount + static_cast<uint64_t>(attribute);
  }

  // A few random draws, then a scan from a random start, so the common case
  // is O(1) and a partner is found whenever one exists.
  template <typename Pred>
  std::optional<size_t> FindPartner(const Pred& qualifies) {
    const int64_t n = static_cast<int64_t>(people_.size());
    for (int attempt = 0; attempt < 32; ++attempt) {
      const size_t j = static_cast<size_t>(rng_.Uniform(0, n - 1));
      if (qualifies(j)) return j;
    }
    const size_t start = static_cast<size_t>(rng_.Uniform(0, n - 1));
    for (size_t k = 0; k < people_.size(); ++k) {
      const size_t j = (start + k) % people_.size();
      if (qualifies(j)) return j;
    }
    return std::nullopt;
  }

  const std::vector<Person>& people_;
  Rng& rng_;
  absl::flat_hash_set<uint64_t> used_;
};

// ------------------------------------------------------------- background

v1::QaItem BackgroundItem(absl::string_view id, absl::string_view prefix,
                          absl::string_view question, std::string answer, std::string context) {
  return MakeItem(absl::StrCat("background-", id), prefix, question, std::move(answer),
                  std::move(context), "background");
}

// An index of `container` other than `index`.
template <typename T>
size_t OtherIndex(Rng& rng, const T& container, size_t index) {
  size_t other = index;
  while (other == index) other = PickIndex(rng, container);
  return other;
}

// Appends the general facts: every colour warm or cool, every city's
// continent, every occupation's field; each as an open question and as a
// Yes and a No question.
void AddGeneralFacts(Rng& rng, v1::Dataset& out) {
  for (const Color& c : kColors) {
    const std::string fact =
        absl::StrCat(Capitalize(std::string(c.name)), " is a ", c.warm ? "warm" : "cool", " color.");
    const std::string id = absl::StrCat("color-", c.name);
    *out.add_training() =
        BackgroundItem(id, kOpenPrefix, absl::StrCat("Is ", c.name, " a warm or a cool color?"),
                       c.warm ? "warm" : "cool", fact);
    *out.add_training() =
        BackgroundItem(absl::StrCat(id, "-warm"), kYesNoPrefix,
                       absl::StrCat("Is ", c.name, " a warm color?"), YesNo(c.warm), fact);
    *out.add_training() =
        BackgroundItem(absl::StrCat(id, "-cool"), kYesNoPrefix,
                       absl::StrCat("Is ", c.name, " a cool color?"), YesNo(!c.warm), fact);
  }
  for (const City& c : kCities) {
    const std::string fact = absl::StrCat(c.name, " is in ", c.continent, ".");
    const std::string id = absl::StrCat("city-", absl::AsciiStrToLower(c.name));
    const size_t own = static_cast<size_t>(
        std::find(std::begin(kContinents), std::end(kContinents), c.continent) -
        std::begin(kContinents));
    const absl::string_view other = kContinents[OtherIndex(rng, kContinents, own)];
    *out.add_training() =
        BackgroundItem(id, kOpenPrefix, absl::StrCat("On which continent is ", c.name, "?"),
                       std::string(c.continent), fact);
    *out.add_training() =
        BackgroundItem(absl::StrCat(id, "-yes"), kYesNoPrefix,
                       absl::StrCat("Is ", c.name, " in ", c.continent, "?"), "Yes", fact);
    *out.add_training() = BackgroundItem(absl::StrCat(id, "-no"), kYesNoPrefix,
                                         absl::StrCat("Is ", c.name, " in ", other, "?"), "No", fact);
  }
  for (const Occupation& o : kOccupations) {
    const std::string someone = absl::StrCat(Article(o.name), " ", o.name);
    const std::string fact = absl::StrCat(Capitalize(someone), " works in ", o.field, ".");
    const std::string id = absl::StrCat("occupation-", o.name);
    const size_t own = static_cast<size_t>(
        std::find(std::begin(kFields), std::end(kFields), o.field) - std::begin(kFields));
    const absl::string_view other = kFields[OtherIndex(rng, kFields, own)];
    *out.add_training() =
        BackgroundItem(id, kOpenPrefix, absl::StrCat("In which field does ", someone, " work?"),
                       std::string(o.field), fact);
    *out.add_training() =
        BackgroundItem(absl::StrCat(id, "-yes"), kYesNoPrefix,
                       absl::StrCat("Does ", someone, " work in ", o.field, "?"), "Yes", fact);
    *out.add_training() =
        BackgroundItem(absl::StrCat(id, "-no"), kYesNoPrefix,
                       absl::StrCat("Does ", someone, " work in ", other, "?"), "No", fact);
  }
}

// A partner of people[i] for `attribute` satisfying `qualifies`: a few random
// draws, then a scan from a random start; nullopt if none qualifies.
template <typename Pred>
std::optional<size_t> FindBackgroundPartner(const std::vector<Person>& people, Rng& rng,
                                            const Pred& qualifies) {
  const int64_t n = static_cast<int64_t>(people.size());
  for (int attempt = 0; attempt < 32; ++attempt) {
    const size_t j = static_cast<size_t>(rng.Uniform(0, n - 1));
    if (qualifies(j)) return j;
  }
  const size_t start = static_cast<size_t>(rng.Uniform(0, n - 1));
  for (size_t k = 0; k < people.size(); ++k) {
    const size_t j = (start + k) % people.size();
    if (qualifies(j)) return j;
  }
  return std::nullopt;
}

// Appends one background person's facts and the yes/no questions about them:
// per attribute the fact (training wording and a rephrasing), a secondary
// question answered Yes and one answered No, and a comparison pair with
// other background people answered Yes and No (skipped when no partner
// qualifies).
void AddBackgroundPerson(const std::vector<Person>& people, size_t i, Rng& rng, v1::Dataset& out) {
  const Person& p = people[i];
  // Ids: "background-<slug>-<attribute>" plus `suffix`; comparison ids name
  // the person asked about first, so no id repeats.
  const auto add = [&](v1::QaItem item, absl::string_view suffix) {
    item.set_id(absl::StrCat("background-", p.slug, "-", item.id().substr(item.id().rfind('-') + 1),
                             suffix));
    item.set_source_id("background");
    *out.add_training() = std::move(item);
  };
  for (int a = 0; a < kAttributeCount; ++a) {
    const std::string id = absl::StrCat(p.slug, "-", kAttributeNames[a]);
    add(MakeItem(id, kOpenPrefix, WithName(kQuestions[a], p.name), Answer(p, a), Fact(p, a), ""),
        "");
    add(MakeItem(id, kOpenPrefix, WithName(Pick(rng, kRephrasings[a]), p.name), Answer(p, a),
                 Fact(p, a), ""),
        "-rephrased");
    add(SecondaryQuestionFor(p, a, true, rng), "-yes");
    add(SecondaryQuestionFor(p, a, false, rng), "-no");
    if (people.size() < 2) continue;
    if (a <= kAge) {
      const std::optional<size_t> j = FindBackgroundPartner(
          people, rng, [&](size_t j) { return people[j].Number(a) != p.Number(a); });
      if (!j.has_value()) continue;
      const bool p_more = p.Number(a) > people[*j].Number(a);
      const Person& more = p_more ? p : people[*j];
      const Person& less = p_more ? people[*j] : p;
      add(ComparisonItem(more, less, a), "-comparison-yes");
      add(ComparisonItem(less, more, a), "-comparison-no");
    } else {
      const std::optional<size_t> same = FindBackgroundPartner(people, rng, [&](size_t j) {
        return j != i && people[j].Category(a) == p.Category(a);
      });
      const std::optional<size_t> other = FindBackgroundPartner(
          people, rng, [&](size_t j) { return people[j].Category(a) != p.Category(a); });
      if (!same.has_value() || !other.has_value()) continue;
      add(ComparisonItem(p, people[*same], a), "-comparison-yes");
      add(ComparisonItem(p, people[*other], a), "-comparison-no");
    }
  }
}

// ---------------------------------------------------------------- updates

// The identifier parts below are single tokens, and no token appears twice
// within a table, so "<verb>_<object>[_<qualifier>]" names a unique
// (verb, object, qualifier) and no two functions ever share a name.
struct Part {
  absl::string_view phrase;
  std::array<absl::string_view, 3> ids;
};
constexpr Part kVerbs[] = {
    {"parses", {"parse", "decode", "read"}},
    {"serializes", {"serialize", "encode", "dump"}},
    {"validates", {"validate", "check", "verify"}},
    {"compresses", {"compress", "pack", "deflate"}},
    {"merges", {"merge", "combine", "join"}},
    {"sorts", {"sort", "order", "rank"}},
    {"hashes", {"hash", "digest", "fingerprint"}},
    {"normalizes", {"normalize", "canonicalize", "standardize"}},
    {"caches", {"cache", "memoize", "stash"}},
    {"deletes", {"delete", "remove", "drop"}},
    {"copies", {"copy", "clone", "duplicate"}},
    {"renders", {"render", "draw", "paint"}},
    {"splits", {"split", "partition", "chunk"}},
    {"filters", {"filter", "select", "sift"}},
    {"indexes", {"index", "catalog", "tabulate"}},
    {"resizes", {"resize", "rescale", "scale"}},
    {"encrypts", {"encrypt", "seal", "cipher"}},
    {"uploads", {"upload", "push", "publish"}},
    {"downloads", {"download", "fetch", "pull"}},
    {"schedules", {"schedule", "enqueue", "plan"}},
    {"reverses", {"reverse", "invert", "flip"}},
    {"counts", {"count", "tally", "enumerate"}},
    {"loads", {"load", "restore", "import"}},
    {"saves", {"save", "persist", "store"}},
    {"converts", {"convert", "transform", "translate"}},
};
constexpr Part kObjects[] = {
    {"a configuration file", {"config", "settings", "conf"}},
    {"a JSON document", {"json", "jsondoc", "document"}},
    {"an image", {"image", "img", "picture"}},
    {"a matrix", {"matrix", "mat", "grid"}},
    {"a timestamp", {"timestamp", "ts", "datetime"}},
    {"a log record", {"log", "logrecord", "logentry"}},
    {"a user session", {"session", "usersession", "sess"}},
    {"a database row", {"row", "record", "dbrow"}},
    {"a network packet", {"packet", "pkt", "frame"}},
    {"an audio clip", {"audio", "clip", "sound"}},
    {"a text buffer", {"buffer", "buf", "textbuf"}},
    {"a file path", {"path", "filepath", "pathname"}},
    {"a URL", {"url", "uri", "link"}},
    {"an email address", {"email", "mail", "address"}},
    {"a color palette", {"palette", "colors", "swatch"}},
    {"a sparse vector", {"sparsevec", "svec", "sparse"}},
    {"a graph", {"graph", "network", "digraph"}},
    {"a priority queue", {"heap", "pqueue", "priorityq"}},
    {"a hash table", {"table", "hashmap", "dict"}},
    {"a CSV file", {"csv", "csvfile", "sheet"}},
    {"a video frame", {"videoframe", "vframe", "still"}},
    {"a font", {"font", "typeface", "glyphs"}},
    {"a cookie", {"cookie", "token", "crumb"}},
    {"a certificate", {"cert", "certificate", "credential"}},
    {"a dependency list", {"deps", "dependencies", "requirements"}},
    {"a thumbnail", {"thumbnail", "thumb", "preview"}},
    {"a polygon", {"polygon", "poly", "shape"}},
    {"a calendar event", {"event", "appointment", "calevent"}},
    {"a shopping cart", {"cart", "basket", "trolley"}},
    {"an invoice", {"invoice", "bill", "receipt"}},
    {"a tensor", {"tensor", "ndarray", "array"}},
    {"a tree", {"tree", "treenode", "hierarchy"}},
    {"a string template", {"template", "tmpl", "pattern"}},
    {"a checkpoint", {"checkpoint", "ckpt", "snapshot"}},
    {"a sensor reading", {"reading", "measurement", "sample"}},
    {"a locale", {"locale", "i18n", "translations"}},
    {"a histogram", {"histogram", "hist", "bins"}},
    {"a password", {"password", "passwd", "secret"}},
    {"a zip archive", {"archive", "zip", "bundle"}},
    {"a message queue", {"queue", "mq", "inbox"}},
};
// Qualifier 0 is "none"; the rest add a phrase and an identifier suffix.
constexpr Part kQualifiers[] = {
    {"", {"", "", ""}},
    {"in place", {"inplace", "mutating", "mut"}},
    {"asynchronously", {"async", "nonblocking", "bg"}},
    {"in parallel", {"parallel", "concurrent", "par"}},
    {"lazily", {"lazy", "deferred", "ondemand"}},
    {"in batches", {"batched", "bulk", "many"}},
    {"with a timeout", {"timed", "deadline", "bounded"}},
};

struct Combo {
  size_t verb, object, qualifier;
};

std::string FunctionName(const Combo& c, size_t verb_id, size_t object_id, size_t qualifier_id) {
  std::string name =
      absl::StrCat(kVerbs[c.verb].ids[verb_id], "_", kObjects[c.object].ids[object_id]);
  if (c.qualifier != 0) absl::StrAppend(&name, "_", kQualifiers[c.qualifier].ids[qualifier_id]);
  return name;
}

struct Update {
  std::string id;
  std::string question;   // asks for the new value
  std::string rephrased;  // same, other words
  std::string old_value;
  std::string new_value;
  std::string context;      // the update, old and new value
  std::string old_context;  // the fact before the update, for prior
};

void AddLibraryUpdates(size_t count, Rng& rng, WordMaker& words, std::vector<Update>& out) {
  if (count == 0) return;
  const std::string lib = Capitalize(words.Make(2, 3));
  const int64_t old_major = rng.Uniform(1, 5);
  // Every (verb, object) pair without a qualifier first, then with
  // qualifiers, each group shuffled, so small libraries read naturally.
  std::vector<Combo> combos;
  for (size_t q = 0; q < std::size(kQualifiers) && combos.size() < count; ++q) {
    const size_t group_start = combos.size();
    for (size_t v = 0; v < std::size(kVerbs); ++v) {
      for (size_t o = 0; o < std::size(kObjects); ++o) combos.push_back({v, o, q});
    }
    for (size_t k = combos.size() - 1; k > group_start; --k) {
      const size_t r = static_cast<size_t>(
          rng.Uniform(static_cast<int64_t>(group_start), static_cast<int64_t>(k)));
      std::swap(combos[k], combos[r]);
    }
  }
  static constexpr absl::string_view kLibraryRephrasings[] = {
      "Which function P in the newest release of L?",
      "In the current version of L, what is the function that P called?",
      "What is the current name of the L function that P?"};
  for (size_t k = 0; k < count; ++k) {
    const Combo& c = combos[k];
    const size_t qualifier_choices = c.qualifier == 0 ? 1 : 3;
    const size_t ov = PickIndex(rng, kVerbs[c.verb].ids);
    const size_t oo = PickIndex(rng, kObjects[c.object].ids);
    const size_t oq = static_cast<size_t>(rng.Uniform(0, qualifier_choices - 1));
    size_t nv, no, nq;
    do {
      nv = PickIndex(rng, kVerbs[c.verb].ids);
      no = PickIndex(rng, kObjects[c.object].ids);
      nq = static_cast<size_t>(rng.Uniform(0, qualifier_choices - 1));
    } while (nv == ov && no == oo && nq == oq);
    std::string purpose = absl::StrCat(kVerbs[c.verb].phrase, " ", kObjects[c.object].phrase);
    if (c.qualifier != 0) absl::StrAppend(&purpose, " ", kQualifiers[c.qualifier].phrase);

    Update& u = out.emplace_back();
    u.old_value = FunctionName(c, ov, oo, oq);
    u.new_value = FunctionName(c, nv, no, nq);
    u.id = absl::StrCat("library-", absl::AsciiStrToLower(lib), "-", u.old_value);
    u.question = absl::StrCat("What is the name of the function that ", purpose,
                              " in the latest version of ", lib, "?");
    u.rephrased = absl::StrReplaceAll(Pick(rng, kLibraryRephrasings), {{"P", purpose}, {"L", lib}});
    u.context = absl::StrCat(lib, " ", old_major + 1, " renamed the function that ", purpose,
                             " from ", u.old_value, " to ", u.new_value, ".");
    u.old_context = absl::StrCat("In ", lib, " ", old_major, ", the function that ", purpose,
                                 " is named ", u.old_value, ".");
  }
}

// One revisable recommendation of the guideline, for one condition.
enum GuidelineTopic {
  kScreeningAge,
  kTreatmentThreshold,
  kFollowUpMonths,
  kFirstLineDrug,
  kMaxDose,
  kTreatmentWeeks,
  kTopicCount
};
constexpr absl::string_view kTopicIds[kTopicCount] = {"screening-age",    "treatment-threshold",
                                                      "follow-up-months", "first-line-drug",
                                                      "max-dose",         "treatment-weeks"};

// A value from `choices` other than `old_value`.
int OtherChoice(Rng& rng, const std::vector<int>& choices, int old_value) {
  int v = old_value;
  while (v == old_value) v = Pick(rng, choices);
  return v;
}

// old +- step * [1, max_steps], kept at least `floor`.
int Revised(Rng& rng, int old_value, int step, int max_steps, int floor) {
  for (;;) {
    const int delta = step * static_cast<int>(rng.Uniform(1, max_steps));
    const int v = Coin(rng) ? old_value + delta : old_value - delta;
    if (v >= floor) return v;
  }
}

void AddGuidelineUpdates(size_t count, Rng& rng, WordMaker& words, std::vector<Update>& out) {
  if (count == 0) return;
  const std::string guideline =
      absl::StrCat(Capitalize(words.Make(2, 3)), " Clinical Practice Guideline");
  const int64_t old_year = rng.Uniform(2012, 2018);
  const int64_t new_year = old_year + rng.Uniform(3, 6);
  static constexpr absl::string_view kKinds[] = {"syndrome", "disease", "fever", "disorder"};
  static constexpr absl::string_view kDrugSuffixes[] = {"mab", "nib",    "pril", "zole",
                                                        "vir", "statin", "olol", "cillin"};
  static const std::vector<int> kMonths = {1, 2, 3, 4, 6, 9, 12, 18, 24};
  static const std::vector<int> kWeeks = {2, 4, 6, 8, 10, 12, 16, 24};
  const std::string latest =
      absl::StrCat("According to the latest edition of the ", guideline, ", ");
  const std::string current = absl::StrCat("Under the current edition of the ", guideline, ", ");

  // A new condition every kTopicCount facts.
  std::string condition, slug, marker, old_drug, new_drug;
  for (size_t k = 0; k < count; ++k) {
    const int topic = static_cast<int>(k % kTopicCount);
    if (topic == 0) {
      condition = absl::StrCat(Capitalize(words.Make(2, 3)), " ", Pick(rng, kKinds));
      slug = absl::StrReplaceAll(absl::AsciiStrToLower(condition), {{" ", "-"}});
      marker = words.Make(2, 3, "in");
      old_drug = words.Make(2, 3, Pick(rng, kDrugSuffixes));
      new_drug = words.Make(2, 3, Pick(rng, kDrugSuffixes));
    }
    Update& u = out.emplace_back();
    u.id = absl::StrCat("guideline-", slug, "-", kTopicIds[topic]);
    // The recommendation as a noun phrase and the unit of its value, for the
    // contexts: "<edition> set <what> to <value><unit>."
    std::string what;
    absl::string_view unit;
    switch (topic) {
      case kScreeningAge: {
        const int old_age = 5 * static_cast<int>(rng.Uniform(8, 13));
        u.old_value = absl::StrCat(old_age);
        u.new_value = absl::StrCat(Revised(rng, old_age, 5, 2, 20));
        u.question =
            absl::StrCat(latest, "at what age should screening for ", condition, " begin?");
        u.rephrased =
            absl::StrCat(current, "from what age are patients screened for ", condition, "?");
        what = absl::StrCat("the starting age of screening for ", condition);
        unit = " years";
        break;
      }
      case kTreatmentThreshold: {
        const int old_level = 10 * static_cast<int>(rng.Uniform(3, 40));
        u.old_value = absl::StrCat(old_level);
        u.new_value = absl::StrCat(Revised(rng, old_level, 10, 8, 10));
        u.question = absl::StrCat(latest, "above what serum ", marker,
                                  " level in ng/mL should treatment for ", condition, " start?");
        u.rephrased = absl::StrCat(current, "what serum ", marker,
                                   " level (ng/mL) triggers treatment of ", condition, "?");
        what = absl::StrCat("the serum ", marker, " level above which treatment for ", condition,
                            " starts");
        unit = " ng/mL";
        break;
      }
      case kFollowUpMonths: {
        const int old_months = Pick(rng, kMonths);
        u.old_value = absl::StrCat(old_months);
        u.new_value = absl::StrCat(OtherChoice(rng, kMonths, old_months));
        u.question = absl::StrCat(latest, "how many months apart should follow-up visits for ",
                                  condition, " be?");
        u.rephrased = absl::StrCat(current, "what is the interval in months between ", condition,
                                   " follow-up visits?");
        what = absl::StrCat("the interval between follow-up visits for ", condition);
        unit = " months";
        break;
      }
      case kFirstLineDrug:
        u.old_value = old_drug;
        u.new_value = new_drug;
        u.question =
            absl::StrCat(latest, "which drug is the first-line treatment for ", condition, "?");
        u.rephrased =
            absl::StrCat(current, "what is the preferred initial medication for ", condition, "?");
        what = absl::StrCat("the first-line treatment for ", condition);
        break;
      case kMaxDose: {
        const int old_dose = 50 * static_cast<int>(rng.Uniform(2, 20));
        u.old_value = absl::StrCat(old_dose);
        u.new_value = absl::StrCat(Revised(rng, old_dose, 50, 6, 50));
        u.question = absl::StrCat(latest, "what is the maximum daily dose of ", new_drug,
                                  " in mg for patients with ", condition, "?");
        u.rephrased = absl::StrCat(current, "how many milligrams of ", new_drug,
                                   " per day may a patient with ", condition, " take at most?");
        what = absl::StrCat("the maximum daily dose of ", new_drug, " for ", condition);
        unit = " mg";
        break;
      }
      default: {
        const int old_weeks = Pick(rng, kWeeks);
        u.old_value = absl::StrCat(old_weeks);
        u.new_value = absl::StrCat(OtherChoice(rng, kWeeks, old_weeks));
        u.question = absl::StrCat(latest, "how many weeks should initial treatment of ", condition,
                                  " last?");
        u.rephrased = absl::StrCat(current,
                                   "what is the length in weeks of the initial treatment "
                                   "course for ",
                                   condition, "?");
        what = absl::StrCat("the length of initial treatment of ", condition);
        unit = " weeks";
        break;
      }
    }
    u.context = absl::StrCat("The ", new_year, " edition of the ", guideline, " changed ", what,
                             " from ", u.old_value, unit, " to ", u.new_value, unit, ".");
    u.old_context = absl::StrCat("The ", old_year, " edition of the ", guideline, " sets ", what,
                                 " to ", u.old_value, unit, ".");
  }
}

}  // namespace

absl::StatusOr<v1::Dataset> GeneratePeople(uint32_t size, uint64_t seed) {
  if (auto status = CheckSize("people", size); !status.ok()) return status;
  Rng rng(seed ^ kPeopleStream);
  WordMaker words(rng);
  std::vector<Person> people(size);
  for (uint32_t i = 0; i < size; ++i) {
    people[i] = MakePerson(rng, words);
  }

  v1::Dataset dataset;
  dataset.set_name("people");
  dataset.set_source(v1::DATASET_SOURCE_BUILTIN);
  v1::QuestionSet memorization, rephrased, secondary, comparison;
  memorization.set_type(v1::QUESTION_TYPE_MEMORIZATION);
  rephrased.set_type(v1::QUESTION_TYPE_REPHRASED);
  secondary.set_type(v1::QUESTION_TYPE_SECONDARY);
  comparison.set_type(v1::QUESTION_TYPE_COMPARISON);
  ComparisonBuilder comparisons(people, rng);
  int skipped = 0;
  for (size_t i = 0; i < people.size(); ++i) {
    const Person& p = people[i];
    for (int a = 0; a < kAttributeCount; ++a) {
      const std::string id = absl::StrCat(p.slug, "-", kAttributeNames[a]);
      v1::QaItem item = MakeItem(id, kOpenPrefix, WithName(kQuestions[a], p.name), Answer(p, a),
                                 Fact(p, a), p.slug);
      *dataset.add_training() = item;
      *memorization.add_items() = item;
      *rephrased.add_items() =
          MakeItem(id, kOpenPrefix, WithName(Pick(rng, kRephrasings[a]), p.name), Answer(p, a),
                   Fact(p, a), p.slug);
      *secondary.add_items() = SecondaryQuestion(p, a, rng);
      if (size >= 2 && !comparisons.Add(i, a, comparison)) ++skipped;
    }
  }
  *dataset.add_tests() = std::move(memorization);
  *dataset.add_tests() = std::move(rephrased);
  *dataset.add_tests() = std::move(secondary);
  if (size >= 2) {
    *dataset.add_tests() = std::move(comparison);
  } else {
    dataset.add_notes("people: no comparison questions (they need at least 2 people)");
  }
  if (skipped > 0) {
    dataset.add_notes(absl::StrCat("people: ", skipped,
                                   " comparison question(s) skipped: no unused partner to "
                                   "compare with"));
  }
  return dataset;
}

absl::StatusOr<v1::Dataset> GenerateBackground(uint32_t size, uint64_t seed,
                                               const std::vector<std::string>& reserved_words) {
  if (size > kMaxSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("background: size must be between 0 and ", kMaxSize, ", got ", size));
  }
  Rng rng(seed ^ kBackgroundStream);
  WordMaker words(rng);
  for (const std::string& word : reserved_words) words.Reserve(absl::AsciiStrToLower(word));
  v1::Dataset dataset;
  dataset.set_name("background");
  dataset.set_source(v1::DATASET_SOURCE_BUILTIN);
  AddGeneralFacts(rng, dataset);
  std::vector<Person> people;
  people.reserve(size);
  for (uint32_t i = 0; i < size; ++i) people.push_back(MakePerson(rng, words));
  for (size_t i = 0; i < people.size(); ++i) AddBackgroundPerson(people, i, rng, dataset);
  return dataset;
}

absl::StatusOr<v1::Dataset> GenerateUpdates(uint32_t size, uint64_t seed) {
  if (auto status = CheckSize("updates", size); !status.ok()) return status;
  Rng rng(seed ^ kUpdatesStream);
  WordMaker words(rng);
  std::vector<Update> updates;
  updates.reserve(size);
  AddLibraryUpdates((size + 1) / 2, rng, words, updates);
  AddGuidelineUpdates(size / 2, rng, words, updates);

  v1::Dataset dataset;
  dataset.set_name("updates");
  dataset.set_source(v1::DATASET_SOURCE_BUILTIN);
  dataset.set_updates_knowledge(true);
  v1::QuestionSet memorization, rephrased;
  memorization.set_type(v1::QUESTION_TYPE_MEMORIZATION);
  rephrased.set_type(v1::QUESTION_TYPE_REPHRASED);
  for (const Update& u : updates) {
    v1::QaItem item = MakeItem(u.id, kOpenPrefix, u.question, u.new_value, u.context, u.id);
    item.set_answer_before(u.old_value);
    *dataset.add_training() = item;
    *memorization.add_items() = item;
    // The old knowledge: the same question, answered as before the update.
    *dataset.add_prior() =
        MakeItem(u.id, kOpenPrefix, u.question, u.old_value, u.old_context, u.id);
    v1::QaItem& r = *rephrased.add_items() =
        MakeItem(u.id, kOpenPrefix, u.rephrased, u.new_value, u.context, u.id);
    r.set_answer_before(u.old_value);
  }
  *dataset.add_tests() = std::move(memorization);
  *dataset.add_tests() = std::move(rephrased);
  return dataset;
}

}  // namespace ftb::datasets
