#include "judge/rules_grader.h"

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ftb::judge {
namespace {

constexpr size_t kNpos = std::string_view::npos;

bool IsDigit(unsigned char c) { return static_cast<unsigned>(c - '0') < 10u; }
bool IsAsciiLetter(unsigned char c) { return static_cast<unsigned>((c | 0x20) - 'a') < 26u; }
// Starts (or continues) a word: ASCII letters and digits, and any non-ASCII
// byte that is not one of the punctuation sequences handled separately.
bool IsWordByte(unsigned char c) { return IsAsciiLetter(c) || IsDigit(c) || c >= 0x80; }

bool IsArticle(std::string_view w) { return w == "a" || w == "an" || w == "the"; }

// The value of a number word, or -1. "one" counts only inside a compound
// (see NormalizeForGrading), so it is reported separately as 1 with
// `standalone` false.
int NumberWordValue(std::string_view w, bool* standalone) {
  *standalone = true;
  if (w.size() < 3 || w.size() > 9) return -1;
  struct Entry {
    std::string_view word;
    int value;
  };
  static constexpr std::array<Entry, 28> kWords = {{
      {"zero", 0},     {"one", 1},      {"two", 2},        {"three", 3},     {"four", 4},
      {"five", 5},     {"six", 6},      {"seven", 7},      {"eight", 8},     {"nine", 9},
      {"ten", 10},     {"eleven", 11},  {"twelve", 12},    {"thirteen", 13}, {"fourteen", 14},
      {"fifteen", 15}, {"sixteen", 16}, {"seventeen", 17}, {"eighteen", 18}, {"nineteen", 19},
      {"twenty", 20},  {"thirty", 30},  {"forty", 40},     {"fifty", 50},    {"sixty", 60},
      {"seventy", 70}, {"eighty", 80},  {"ninety", 90},
  }};
  switch (w[0]) {
    case 'z':
    case 'o':
    case 't':
    case 'f':
    case 's':
    case 'e':
    case 'n':
      break;
    default:
      return -1;
  }
  for (const Entry& e : kWords) {
    if (e.word == w) {
      if (e.value == 1) *standalone = false;
      return e.value;
    }
  }
  return -1;
}

// Writes the normalised tokens of a text as " t1 t2 ... tn " (a space
// before and after every token; " " for none) into a caller-owned buffer,
// so repeated calls reuse its capacity.
class Normalizer {
 public:
  // Returns the number of tokens.
  static int Run(std::string_view text, std::string& out) {
    Normalizer n(text, out, /*keep_articles=*/false);
    n.Scan();
    if (n.tokens_ == 0 && n.dropped_article_) {
      Normalizer again(text, out, /*keep_articles=*/true);
      again.Scan();
      return again.tokens_;
    }
    return n.tokens_;
  }

 private:
  Normalizer(std::string_view text, std::string& out, bool keep_articles)
      : text_(text), out_(out), keep_articles_(keep_articles) {
    out_.clear();
    out_.push_back(' ');
  }

  void Scan() {
    const size_t n = text_.size();
    size_t i = 0;
    while (i < n) {
      const unsigned char c = static_cast<unsigned char>(text_[i]);
      if (c < 0x80) {
        if (IsAsciiLetter(c)) {
          StartWord();
          out_.push_back(static_cast<char>(c | 0x20));
          ++i;
        } else if (IsDigit(c)) {
          if (in_word_) {
            out_.push_back(static_cast<char>(c));  // "covid19"
            ++i;
          } else {
            i = ReadNumber(i);
          }
        } else if (c == '\'') {
          i = Apostrophe(i, 1);
        } else {
          EndWord();
          ++i;
        }
        continue;
      }
      // UTF-8. U+00A0-U+00BF (no-break space, inverted marks, currency,
      // degree, guillemets) and U+2000-U+2FFF (general punctuation, dashes,
      // quotes, symbols) separate words, except the single quotes.
      const unsigned char c1 = i + 1 < n ? static_cast<unsigned char>(text_[i + 1]) : 0;
      const unsigned char c2 = i + 2 < n ? static_cast<unsigned char>(text_[i + 2]) : 0;
      if (c == 0xC2 && c1 >= 0xA0 && c1 <= 0xBF) {
        EndWord();
        i += 2;
      } else if (c == 0xE2 && c1 >= 0x80 && c1 <= 0xBF && c2 >= 0x80 && c2 <= 0xBF) {
        if (c1 == 0x80 && (c2 == 0x98 || c2 == 0x99)) {
          i = Apostrophe(i, 3);
        } else {
          EndWord();
          i += 3;
        }
      } else {
        StartWord();
        out_.push_back(static_cast<char>(c));
        ++i;
      }
    }
    EndWord();
  }

  void StartWord() {
    if (!in_word_) {
      in_word_ = true;
      word_start_ = out_.size();
    }
  }

  // An apostrophe of `width` bytes at `i`: a possessive "'s" ending a word is
  // dropped; otherwise the apostrophe itself is (joining "don't").
  size_t Apostrophe(size_t i, size_t width) {
    const size_t s = i + width;
    if (i > 0 && IsWordByte(static_cast<unsigned char>(text_[i - 1])) && s < text_.size() &&
        (text_[s] | 0x20) == 's' &&
        (s + 1 == text_.size() || !IsWordByte(static_cast<unsigned char>(text_[s + 1])))) {
      return s + 1;
    }
    return i + width;
  }

  // Reads a number starting at digit text_[i]; returns the index after it.
  size_t ReadNumber(size_t i) {
    const size_t n = text_.size();
    const size_t start = out_.size();
    size_t int_digits = 0;
    bool grouped = false;
    while (i < n && IsDigit(static_cast<unsigned char>(text_[i]))) {
      out_.push_back(text_[i++]);
      ++int_digits;
    }
    // Thousands separators: 1-3 leading digits, then groups of exactly 3.
    while (i + 3 < n && text_[i] == ',' && (grouped || int_digits <= 3) &&
           IsDigit(static_cast<unsigned char>(text_[i + 1])) &&
           IsDigit(static_cast<unsigned char>(text_[i + 2])) &&
           IsDigit(static_cast<unsigned char>(text_[i + 3])) &&
           (i + 4 == n || !IsDigit(static_cast<unsigned char>(text_[i + 4])))) {
      out_.append(text_.data() + i + 1, 3);
      i += 4;
      grouped = true;
    }
    // Leading zeros ("007" -> "7", "0" stays).
    size_t zeros = 0;
    while (start + zeros + 1 < out_.size() && out_[start + zeros] == '0') ++zeros;
    if (zeros > 0) out_.erase(start, zeros);
    // Decimal part, without trailing zeros ("3.0" -> "3", "3.50" -> "3.5").
    if (i + 1 < n && text_[i] == '.' && IsDigit(static_cast<unsigned char>(text_[i + 1]))) {
      const size_t dot = out_.size();
      out_.push_back('.');
      ++i;
      while (i < n && IsDigit(static_cast<unsigned char>(text_[i]))) out_.push_back(text_[i++]);
      while (out_.back() == '0') out_.pop_back();
      if (out_.size() == dot + 1) out_.pop_back();
    }
    out_.push_back(' ');
    ++tokens_;
    tens_start_ = kNpos;
    return i;
  }

  void EndWord() {
    if (!in_word_) return;
    in_word_ = false;
    std::string_view word(out_.data() + word_start_, out_.size() - word_start_);
    if (!keep_articles_ && IsArticle(word)) {
      out_.resize(word_start_);
      dropped_article_ = true;
      tens_start_ = kNpos;
      return;
    }
    bool standalone = true;
    const int value = NumberWordValue(word, &standalone);
    if (value >= 1 && value <= 9 && tens_start_ != kNpos) {
      // "twenty one" / "twenty-one": fold into the tens token before.
      out_.resize(tens_start_);
      out_.append(std::to_string(tens_value_ + value));
      out_.push_back(' ');
      tens_start_ = kNpos;
      return;
    }
    tens_start_ = kNpos;
    if (value >= 0 && standalone) {
      out_.resize(word_start_);
      out_.append(std::to_string(value));
      if (value >= 20) {
        tens_start_ = word_start_;
        tens_value_ = value;
      }
    }
    out_.push_back(' ');
    ++tokens_;
  }

  const std::string_view text_;
  std::string& out_;
  const bool keep_articles_;
  bool in_word_ = false;
  size_t word_start_ = 0;
  // Offset of the last token when it is a tens number word (for compounds).
  size_t tens_start_ = kNpos;
  int tens_value_ = 0;
  bool dropped_article_ = false;
  int tokens_ = 0;
};

// A normalised text: " t1 t2 ... " and its token count.
struct Norm {
  std::string_view s;
  int tokens = 0;

  bool Has(std::string_view padded) const { return s.find(padded) != kNpos; }
};

Norm Normalize(std::string_view text, std::string& buffer) {
  int tokens = Normalizer::Run(text, buffer);
  return Norm{buffer, tokens};
}

bool IsNumberToken(std::string_view t) {
  if (t.empty() || !IsDigit(static_cast<unsigned char>(t[0]))) return false;
  for (char c : t) {
    if (!IsDigit(static_cast<unsigned char>(c)) && c != '.') return false;
  }
  return true;
}

// The token of `s` (padded) that ends right before offset `pos` (where a
// ' ' starts the next token), or "" at the start.
std::string_view TokenBefore(std::string_view s, size_t pos) {
  if (pos == 0) return {};
  size_t start = s.rfind(' ', pos - 1);
  return s.substr(start + 1, pos - start - 1);
}

bool IsNegation(std::string_view t) {
  static constexpr std::array<std::string_view, 11> kNegations = {
      "not", "no", "never", "nor", "isnt", "wasnt", "arent", "werent", "dont", "doesnt", "didnt"};
  for (std::string_view n : kNegations) {
    if (t == n) return true;
  }
  return false;
}

enum class Match {
  kNone,
  kExact,    // the whole answer
  kNumber,   // the reference's number among the answer's numbers
  kPhrase,   // the reference's words inside the answer
  kNegated,  // found, but only right after a negation
  kHedged,   // found, but the answer hedges with "or"
};

bool Positive(Match m) { return m == Match::kExact || m == Match::kNumber || m == Match::kPhrase; }

// The question (item.prompt), normalised on first use: most answers never
// need it.
class LazyQuestion {
 public:
  LazyQuestion(std::string_view prompt, std::string& buffer) : prompt_(prompt), buffer_(buffer) {}
  const Norm& Get() {
    if (!done_) {
      norm_ = Normalize(prompt_, buffer_);
      done_ = true;
    }
    return norm_;
  }

 private:
  const std::string_view prompt_;
  std::string& buffer_;
  bool done_ = false;
  Norm norm_;
};

// The hedge guard of rule 6: the answer has an "or" that neither the
// reference has nor the question does in the same place (the answer's
// "<word> or <word>" is not in the question: "somewhat or very favorable"
// copied from the question is not a hedge).
bool Hedges(const Norm& answer, const Norm& reference, LazyQuestion& question) {
  if (!answer.Has(" or ") || reference.Has(" or ")) return false;
  // The tokens around the " or " at `pos` of `s`; "" at either end.
  auto around = [](std::string_view s, size_t pos) {
    const size_t next_start = pos + 4;
    const size_t next_end = s.find(' ', next_start);
    return std::pair<std::string_view, std::string_view>(
        TokenBefore(s, pos),
        next_end == kNpos ? std::string_view() : s.substr(next_start, next_end - next_start));
  };
  for (size_t pos = answer.s.find(" or "); pos != kNpos; pos = answer.s.find(" or ", pos + 1)) {
    const auto words = around(answer.s, pos);
    if (words.first.empty() || words.second.empty()) return true;
    bool echoed = false;
    const std::string_view q = question.Get().s;
    for (size_t at = q.find(" or "); at != kNpos && !echoed; at = q.find(" or ", at + 1)) {
      echoed = around(q, at) == words;
    }
    if (!echoed) return true;
  }
  return false;
}

// Rule 6 of rules_grader.h: does `answer` give `reference`?
Match MatchAnswer(const Norm& answer, const Norm& reference, LazyQuestion& question) {
  if (answer.s == reference.s) return Match::kExact;
  // The needle: the reference's number for a numeric reference, else all
  // of its words; padded, so a find is a whole-token match.
  std::string_view needle = reference.s;
  Match found = Match::kPhrase;
  const size_t first_end = reference.s.find(' ', 1);
  const std::string_view first = reference.s.substr(1, first_end - 1);
  if (reference.tokens <= 3 && IsNumberToken(first)) {
    bool single_number = true;
    for (size_t p = first_end; p + 1 < reference.s.size();) {
      size_t e = reference.s.find(' ', p + 1);
      if (IsNumberToken(reference.s.substr(p + 1, e - p - 1))) single_number = false;
      p = e;
    }
    if (single_number) {
      needle = reference.s.substr(0, first_end + 1);
      found = Match::kNumber;
    }
  }
  if (found == Match::kPhrase && reference.tokens == 1 && reference.s.size() - 2 < 3) {
    return Match::kNone;  // a short word must be the whole answer
  }
  size_t pos = answer.s.find(needle);
  if (pos == kNpos) return Match::kNone;
  if (Hedges(answer, reference, question)) return Match::kHedged;
  for (; pos != kNpos; pos = answer.s.find(needle, pos + 1)) {
    if (!IsNegation(TokenBefore(answer.s, pos))) return found;
  }
  return Match::kNegated;
}

// --- Rule 6d: the key fact of a long reference ------------------------------

// Words that carry no fact of their own (the articles are gone already).
// Negations are not among them: they are facts.
bool IsStopword(std::string_view t) {
  static constexpr std::array<std::string_view, 71> kStopwords = {
      "of",    "to",    "for",   "in",    "on",    "at",    "by",    "with",  "and",   "or",
      "as",    "is",    "are",   "was",   "were",  "be",    "been",  "being", "should", "must",
      "can",   "could", "may",   "might", "will",  "would", "shall", "this",  "that",  "these",
      "those", "it",    "its",   "their", "his",   "her",   "your",  "you",   "he",    "she",
      "they",  "them",  "we",    "our",   "i",     "me",    "my",    "do",    "does",  "did",
      "has",   "have",  "had",   "from",  "than",  "then",  "so",    "such",  "also",  "which",
      "who",   "what",  "when",  "where", "how",   "there", "here",  "very",  "into",  "per",
      "plus"};
  for (std::string_view w : kStopwords) {
    if (t == w) return true;
  }
  return false;
}

bool IsKeyFactNegation(std::string_view t) {
  return IsNegation(t) || t == "without" || t == "avoid" || t == "cannot" || t == "cant";
}

// A crude stem, so "tests", "testing" and "tested" meet: a trailing "s"
// (not "ss"), then "ing" or "ed", off words of letters longer than 4 bytes.
std::string_view Stem(std::string_view t) {
  if (t.size() <= 4 || IsNumberToken(t)) return t;
  for (char c : t) {
    if (!IsAsciiLetter(static_cast<unsigned char>(c))) return t;
  }
  if (t.back() == 's' && t[t.size() - 2] != 's') t.remove_suffix(1);
  if (t.size() > 5 && t.ends_with("ing")) {
    t.remove_suffix(3);
  } else if (t.size() > 4 && t.ends_with("ed")) {
    t.remove_suffix(2);
  }
  return t;
}

bool Contains(const std::vector<std::string_view>& v, std::string_view t) {
  for (std::string_view x : v) {
    if (x == t) return true;
  }
  return false;
}

// The distinct stems of the content words of `n`, in order.
void ContentTokens(const Norm& n, std::vector<std::string_view>& out) {
  out.clear();
  for (size_t p = 0; p + 1 < n.s.size();) {
    const size_t e = n.s.find(' ', p + 1);
    const std::string_view t = n.s.substr(p + 1, e - p - 1);
    p = e;
    if (t.empty() || IsStopword(t)) continue;
    const std::string_view stem = Stem(t);
    if (!Contains(out, stem)) out.push_back(stem);
  }
}

constexpr size_t kKeyFactMinReferenceWords = 4;

// Rule 6d: how many of the reference's content words a short answer that
// states its key fact gives, or 0 when it does not (see rules_grader.h).
int KeyFactHits(const Norm& answer, const Norm& reference, LazyQuestion& question) {
  thread_local std::vector<std::string_view> ref, ans, q, kept;
  ContentTokens(reference, ref);
  if (ref.size() < kKeyFactMinReferenceWords) return 0;
  ContentTokens(answer, ans);
  ContentTokens(question.Get(), q);
  // Words the answer merely copies from the question do not count either way.
  kept.clear();
  for (std::string_view t : ans) {
    if (Contains(ref, t) || !Contains(q, t)) kept.push_back(t);
  }
  int hits = 0;
  bool answer_negates = false;
  for (std::string_view t : kept) {
    const bool hit = Contains(ref, t);
    hits += hit;
    // A number the reference does not have is another fact.
    if (!hit && IsNumberToken(t)) return 0;
    answer_negates = answer_negates || IsKeyFactNegation(t);
  }
  // A reference that starts with its number ("14 days of ...") needs it.
  if (IsNumberToken(ref[0]) && !Contains(kept, ref[0])) return 0;
  bool reference_negates = false;
  for (std::string_view t : ref) reference_negates = reference_negates || IsKeyFactNegation(t);
  if (answer_negates && !reference_negates) return 0;
  if (hits < 2) return 0;
  // Precision: at least 3/4 of what the answer says is in the reference.
  if (4 * hits < 3 * static_cast<int>(kept.size())) return 0;
  // Coverage: at least 1/4 of the reference.
  if (4 * hits < static_cast<int>(ref.size())) return 0;
  if (Hedges(answer, reference, question)) return 0;
  return hits;
}

enum class YesNo { kNeither, kYes, kNo, kBoth };

YesNo ReadYesNo(const Norm& answer) {
  const bool yes = answer.Has(" yes ");
  const bool no = answer.Has(" no ");
  if (yes && no) return YesNo::kBoth;
  if (yes) return YesNo::kYes;
  if (no) return YesNo::kNo;
  return YesNo::kNeither;
}

// Whole-answer abstentions (normalised; "n/a" is "n" once "a" is dropped).
constexpr std::array<std::string_view, 36> kAbstentions = {
    " none ",
    " unknown ",
    " n ",
    " na ",
    " n a ",
    " nil ",
    " null ",
    " idk ",
    " unsure ",
    " unanswerable ",
    " dont know ",
    " i dont know ",
    " do not know ",
    " i do not know ",
    " not known ",
    " no answer ",
    " no idea ",
    " not available ",
    " not applicable ",
    " not sure ",
    " im not sure ",
    " i am not sure ",
    " cannot be answered ",
    " cant be answered ",
    " cannot answer ",
    " cant answer ",
    " i cannot answer ",
    " i cant answer ",
    " cannot be determined ",
    " cant be determined ",
    " no information ",
    " no data ",
    " not enough information ",
    " insufficient information ",
    " unknown unknown ",
    " none none ",
};

// Abstention phrases inside a short answer.
constexpr std::array<std::string_view, 28> kAbstentionMarkers = {
    " dont know ",
    " do not know ",
    " not sure ",
    " no idea ",
    " unknown ",
    " not known ",
    " cannot be answered ",
    " cant be answered ",
    " cannot answer ",
    " cant answer ",
    " cannot be determined ",
    " cant be determined ",
    " cannot determine ",
    " cant determine ",
    " cannot say ",
    " cant say ",
    " cannot provide ",
    " cant provide ",
    " unable to ",
    " no information ",
    " not enough information ",
    " insufficient information ",
    " i dont have ",
    " i do not have ",
    " no way to know ",
    " not aware ",
    " no record ",
    " no records ",
};

constexpr int kMaxWordsForMarkers = 16;

bool IsAbstentionPhrase(std::string_view s) {
  if (s.size() > 30) return false;  // longer than any phrase
  for (std::string_view a : kAbstentions) {
    if (s == a) return true;
  }
  return false;
}

// The first line or sentence of `raw` when it is shorter than the whole
// (ends at a newline, or at . ! ? ; : followed by whitespace); else "".
std::string_view FirstSegment(std::string_view raw) {
  size_t begin = 0;
  while (begin < raw.size() &&
         (raw[begin] == ' ' || raw[begin] == '\n' || raw[begin] == '\r' || raw[begin] == '\t')) {
    ++begin;
  }
  for (size_t i = begin; i < raw.size(); ++i) {
    const char c = raw[i];
    if (c == '\n' ||
        ((c == '.' || c == '!' || c == '?' || c == ';' || c == ':') &&
         (i + 1 == raw.size() || raw[i + 1] == ' ' || raw[i + 1] == '\n' || raw[i + 1] == '\r'))) {
      return raw.substr(begin, i - begin);
    }
  }
  return {};
}

// Rule 9 of rules_grader.h.
bool Abstains(const Norm& answer, std::string_view raw, std::string& scratch) {
  if (IsAbstentionPhrase(answer.s)) return true;
  if (answer.tokens <= kMaxWordsForMarkers) {
    for (std::string_view m : kAbstentionMarkers) {
      if (answer.Has(m)) return true;
    }
  }
  std::string_view segment = FirstSegment(raw);
  if (segment.empty() || segment.size() > 40) return false;
  return IsAbstentionPhrase(Normalize(segment, scratch).s);
}

// Per-thread buffers, so grading does not allocate once they have grown.
struct Scratch {
  std::string answer, reference, before, segment, question;
};

Scratch& ThreadScratch() {
  thread_local Scratch scratch;
  return scratch;
}

Verdict Make(VerdictKind kind, std::string_view reason) {
  return Verdict{kind, std::string(reason), std::string(RulesGrader::kId)};
}

}  // namespace

std::string NormalizeForGrading(std::string_view text) {
  std::string buffer;
  Normalizer::Run(text, buffer);
  // Strip the padding.
  if (buffer.size() <= 1) return "";
  return buffer.substr(1, buffer.size() - 2);
}

Verdict RulesGrader::Grade(const v1::JudgeItem& item) const {
  if (!item.unavailable_reason().empty()) {
    return Make(VerdictKind::kNoAnswer, item.unavailable_reason());
  }
  Scratch& scratch = ThreadScratch();
  const Norm answer = Normalize(item.answer(), scratch.answer);
  if (answer.tokens == 0) return Make(VerdictKind::kIncorrect, "empty answer");
  const Norm reference = Normalize(item.reference(), scratch.reference);
  if (reference.tokens == 0) return Make(VerdictKind::kError, "no reference answer");

  if (reference.s == " none ") {
    return Abstains(answer, item.answer(), scratch.segment)
               ? Make(VerdictKind::kCorrect, "abstained; the question has no answer")
               : Make(VerdictKind::kIncorrect, "answered a question that has no answer");
  }

  // Updated knowledge: the old answer, when it differs from the new one.
  Norm before;
  if (!item.answer_before().empty()) {
    before = Normalize(item.answer_before(), scratch.before);
    if (before.s == reference.s) before.tokens = 0;
  }

  if (reference.s == " yes " || reference.s == " no ") {
    if (Abstains(answer, item.answer(), scratch.segment)) {
      return Make(VerdictKind::kAbstained, "declined to answer");
    }
    const YesNo said = ReadYesNo(answer);
    const YesNo wanted = reference.s == " yes " ? YesNo::kYes : YesNo::kNo;
    if (said == wanted) return Make(VerdictKind::kCorrect, "yes/no matches the reference");
    if ((before.s == " yes " && said == YesNo::kYes) ||
        (before.s == " no " && said == YesNo::kNo)) {
      return Make(VerdictKind::kStale, "gives the answer from before the update");
    }
    switch (said) {
      case YesNo::kBoth:
        return Make(VerdictKind::kIncorrect, "ambiguous: both yes and no");
      case YesNo::kNeither:
        return Make(VerdictKind::kIncorrect, "no yes or no in the answer");
      default:
        return Make(VerdictKind::kIncorrect, "yes/no differs from the reference");
    }
  }

  LazyQuestion question(item.prompt(), scratch.question);
  const Match match = MatchAnswer(answer, reference, question);
  const bool has_before = before.tokens > 0;
  if (Positive(match)) {
    // The old value contains the new one ("apply transform" -> "transform"):
    // an answer giving the whole old value is stale.
    if (has_before && match != Match::kExact && before.Has(reference.s) &&
        Positive(MatchAnswer(answer, before, question))) {
      return Make(VerdictKind::kStale, "gives the answer from before the update");
    }
    switch (match) {
      case Match::kExact:
        return Make(VerdictKind::kCorrect, "matches the reference");
      case Match::kNumber:
        return Make(VerdictKind::kCorrect, "the reference's number is in the answer");
      default:
        return Make(VerdictKind::kCorrect, "the reference is in the answer");
    }
  }
  if (has_before && Positive(MatchAnswer(answer, before, question))) {
    return Make(VerdictKind::kStale, "gives the answer from before the update");
  }
  if (match == Match::kNone) {
    const int hits = KeyFactHits(answer, reference, question);
    const int before_hits = has_before ? KeyFactHits(answer, before, question) : 0;
    if (hits > before_hits) return Make(VerdictKind::kCorrect, "states the reference's key fact");
    if (before_hits > 0) {
      return Make(VerdictKind::kStale, "states the key fact from before the update");
    }
  }
  if (Abstains(answer, item.answer(), scratch.segment)) {
    return Make(VerdictKind::kAbstained, "declined to answer");
  }
  switch (match) {
    case Match::kNegated:
      return Make(VerdictKind::kIncorrect, "the reference appears only negated");
    case Match::kHedged:
      return Make(VerdictKind::kIncorrect, "hedges between alternatives");
    default:
      return Make(VerdictKind::kIncorrect, "does not match the reference");
  }
}

}  // namespace ftb::judge
