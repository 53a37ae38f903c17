#include "judge/rules_grader.h"

#include <algorithm>
#include <array>

namespace ftb::judge {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsWordChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c) ||
         static_cast<unsigned char>(c) >= 0x80;
}
char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool IsArticle(const std::string& w) { return w == "a" || w == "an" || w == "the"; }

bool IsNumber(const std::string& w) {
  return !w.empty() && IsDigit(w[0]) &&
         std::all_of(w.begin(), w.end(), [](char c) { return IsDigit(c) || c == '.'; });
}

// Reads a number at text[i] (a digit): digits, thousands separators
// ("1,200") and a decimal part; returns it canonical ("1200", "3.5").
std::string ReadNumber(std::string_view text, size_t& i) {
  std::string out;
  size_t n = text.size();
  while (i < n) {
    char c = text[i];
    if (IsDigit(c)) {
      out.push_back(c);
      ++i;
    } else if (c == ',' && !out.empty() && i + 3 < n && IsDigit(text[i + 1]) &&
               IsDigit(text[i + 2]) && IsDigit(text[i + 3]) &&
               (i + 4 >= n || !IsDigit(text[i + 4]))) {
      ++i;  // thousands separator
    } else if (c == '.' && i + 1 < n && IsDigit(text[i + 1]) &&
               out.find('.') == std::string::npos) {
      out.push_back('.');
      ++i;
    } else {
      break;
    }
  }
  if (out.find('.') != std::string::npos) {
    while (out.back() == '0') out.pop_back();
    if (out.back() == '.') out.pop_back();
  }
  // Leading zeros do not change the value ("007" = "7"), except "0" itself.
  size_t z = 0;
  while (z + 1 < out.size() && out[z] == '0' && out[z + 1] != '.') ++z;
  return out.substr(z);
}

// Normalised: "N/A" becomes "n" (the "a" is dropped as an article).
constexpr std::array<std::string_view, 17> kAbstentions = {
    "none", "unknown", "i dont know", "i do not know", "dont know", "not known",
    "n", "n a", "na", "no answer", "not available", "cannot be answered", "cant be answered",
    "cannot answer", "cant answer", "not enough information", "insufficient information"};

std::string Join(const std::vector<std::string>& tokens) {
  std::string out;
  for (const auto& t : tokens) {
    if (!out.empty()) out.push_back(' ');
    out += t;
  }
  return out;
}

bool IsAbstention(const std::vector<std::string>& tokens) {
  if (tokens.empty() || tokens.size() > 8) return false;
  std::string joined = Join(tokens);
  for (std::string_view a : kAbstentions) {
    if (joined == a) return true;
  }
  // "I don't know.", "I'm not sure", "The answer is unknown", "None."
  static constexpr std::array<std::string_view, 6> kPhrases = {
      "dont know", "do not know", "not sure", "cannot be answered", "no information",
      "not enough information"};
  for (std::string_view p : kPhrases) {
    if (joined.find(p) != std::string::npos) return true;
  }
  return tokens.size() <= 3 && (tokens.back() == "unknown" || tokens.front() == "none");
}

bool ContainsSequence(const std::vector<std::string>& hay, const std::vector<std::string>& needle) {
  if (needle.empty() || needle.size() > hay.size()) return false;
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

// Rules 6-8: does `answer` give `reference`?
bool Matches(const std::vector<std::string>& answer, const std::vector<std::string>& reference) {
  if (reference.empty()) return false;
  if (answer == reference) return true;
  if (IsNumber(reference[0]) && reference.size() <= 3) {
    return std::find(answer.begin(), answer.end(), reference[0]) != answer.end();
  }
  return ContainsSequence(answer, reference);
}

}  // namespace

std::vector<std::string> NormalizeTokens(std::string_view text) {
  std::vector<std::string> tokens;
  std::string word;
  auto flush = [&] {
    if (!word.empty() && !IsArticle(word)) tokens.push_back(word);
    word.clear();
  };
  for (size_t i = 0; i < text.size();) {
    char c = text[i];
    if (IsDigit(c) && word.empty()) {
      tokens.push_back(ReadNumber(text, i));
      continue;
    }
    if (c == '\'' || (static_cast<unsigned char>(c) == 0xe2 && i + 2 < text.size() &&
                      static_cast<unsigned char>(text[i + 1]) == 0x80 &&
                      static_cast<unsigned char>(text[i + 2]) == 0x99)) {
      i += c == '\'' ? 1 : 3;  // apostrophes join: "don't" -> "dont"
      continue;
    }
    if (IsWordChar(c)) {
      word.push_back(Lower(c));
    } else {
      flush();
    }
    ++i;
  }
  flush();
  return tokens;
}

Verdict RulesGrader::Grade(const v1::JudgeItem& item) const {
  if (!item.unavailable_reason().empty()) return {kNoAnswer, item.unavailable_reason()};
  std::vector<std::string> answer = NormalizeTokens(item.answer());
  if (answer.empty()) return {kIncorrect, "empty answer"};
  std::vector<std::string> reference = NormalizeTokens(item.reference());
  const bool abstains = IsAbstention(answer);
  if (reference.size() == 1 && reference[0] == "none") {
    return abstains ? Verdict{kCorrect, "abstained where the question has no answer"}
                    : Verdict{kIncorrect, "answered a question that has no answer"};
  }
  if (abstains) return {kAbstained, "declined to answer"};
  if (reference.size() == 1 && (reference[0] == "yes" || reference[0] == "no")) {
    bool yes = std::find(answer.begin(), answer.end(), "yes") != answer.end();
    bool no = std::find(answer.begin(), answer.end(), "no") != answer.end();
    if (yes && no) return {kIncorrect, "both yes and no"};
    if (!yes && !no) return {kIncorrect, "no yes/no in the answer"};
    return (yes == (reference[0] == "yes")) ? Verdict{kCorrect, "yes/no matches"}
                                            : Verdict{kIncorrect, "yes/no differs"};
  }
  if (Matches(answer, reference)) return {kCorrect, "matches the reference"};
  if (!item.answer_before().empty()) {
    std::vector<std::string> before = NormalizeTokens(item.answer_before());
    if (before != reference && Matches(answer, before)) {
      return {kStale, "gives the answer from before the update"};
    }
  }
  return {kIncorrect, "does not match the reference"};
}

}  // namespace ftb::judge
