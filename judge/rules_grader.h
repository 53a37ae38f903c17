// The `rules` grader (id "rules/2"): deterministic, no model, no I/O. It
// replaces the FineTuneBench notebook's `answer.lower() == reference.lower()`
// with the rules below. Thread-safe: Grade() keeps no state between calls
// (it reuses thread-local scratch buffers, so it does not allocate once
// warmed up, apart from the Verdict's strings).
//
// NORMALISATION (both sides; NormalizeForGrading shows the result)
//  - ASCII letters are lower-cased; other letters (UTF-8) are kept as is.
//  - Punctuation, symbols, '_' and Unicode punctuation (U+2000-U+206F,
//    U+00A0-U+00BF) separate words: "New-York!" -> "new york",
//    "apply_transform()" -> "apply transform".
//  - Apostrophes (' U+2018 U+2019) join: "don't" -> "dont"; a possessive
//    "'s" is dropped: "Faqapi's" -> "faqapi".
//  - The articles a, an, the are dropped ("The Beatles" -> "beatles"),
//    unless the text is nothing but articles (reference "A" stays "a").
//  - Whitespace collapses; text without letters or digits is empty.
//  - Numbers are canonical tokens: thousands separators go ("1,200" and
//    "400,000" -> "1200", "400000"; "1,2" stays "1 2"), trailing decimal
//    zeros go ("3.0" -> "3", "3.50" -> "3.5"), leading zeros go ("007" ->
//    "7"); currency and percent signs are punctuation ("$1,200" -> "1200");
//    a number glued to letters splits ("20mg" -> "20 mg", "6'1\"" -> "6 1").
//    Digits inside a word stay part of it ("covid19").
//  - Number words become digits: zero, two..twenty, thirty..ninety and
//    compounds ("twenty-one" -> "21"). "one" stays a word ("no one", "the
//    one who") except as the end of a compound.
//
// GRADING, in order; the first rule that applies decides.
//  1. item.unavailable_reason set -> no_answer, reason = that text (a
//     backend had nothing to grade, e.g. a replayed response that is itself
//     a verdict).
//  2. The answer normalises to nothing ("", "  \n ", "...") -> incorrect:
//     the model was asked and said nothing (unlike rule 1, where there is
//     no recorded answer at all, this counts against it).
//  3. The reference normalises to nothing -> error ("no reference answer").
//  4. Reference "None" (date-changed questions: the question cannot be
//     answered): an abstention (see ABSTENTIONS) -> correct; anything else
//     -> incorrect ("I don't know." and "N/A" correct; "The Rangers" and
//     "7" incorrect).
//  5. Reference "Yes" or "No":
//     a. an abstention -> abstained ("No idea", "I don't know");
//     b. the answer's words include "yes" xor "no": the reference's ->
//        correct ("Yes, he is." = Yes; "No.\n" = No);
//     c. updated knowledge (answer_before "Yes"/"No", not the reference)
//        and the answer says it -> stale;
//     d. otherwise incorrect: the other one ("No" vs Yes), both ("Yes and
//        no": ambiguous) or neither ("Probably", "red").
//  6. MATCH -> correct, except that when answer_before (rule 7) contains
//     the reference ("apply_transform" before, "transform" now) an answer
//     that also matches answer_before gives the whole old value -> stale.
//     The answer matches the reference when:
//     a. the normalised texts are equal ("  new   york " = "New York";
//        "Apple!" = "an apple"); or
//     b. the reference is numeric (one number, then at most two words:
//        "126", "20 feet", "$1,200", "400,000 tons") and that number is one
//        of the answer's tokens ("He weighs 126 pounds."; "6'1\" (185 cm)"
//        = 185; "20" = "20 feet"; not "1260" or "185.5"; "2" is not in
//        "2024"); or
//     c. otherwise the reference's words appear in the answer contiguously
//        on word boundaries ("blue" in "His favourite colour is blue."; not
//        in "bluebird"; "New York" not in "York"). A reference with several
//        numbers ("7-0") is matched this way ("7-1" does not match).
//     Guards on b and c (an answer that merely mentions the reference):
//      - a single-word, non-numeric reference shorter than 3 characters
//        must be the whole answer ("US" = "the US."; not found in "He
//        served in the US army"; "U.S." is "u s", another answer);
//      - an occurrence right after a negation (not, no, never, nor, isnt,
//        wasnt, arent, werent, dont, doesnt, didnt) does not count ("It is
//        not blue." incorrect; "Not red; blue." correct);
//      - an answer with the word "or" does not match by b, c or d, unless
//        the reference has "or" too, or every "<word> or <word>" of the
//        answer is copied from the question ("red, blue or yellow", "126 or
//        127": hedging between alternatives is incorrect; "50% have a
//        somewhat or very favorable opinion", asked about "a somewhat or
//        very favorable opinion", is not a hedge).
//     d. KEY FACT (long references: medical guidance, news phrases). When
//        a-c find nothing, rule 7 has not found answer_before by a-c (it
//        is checked first), and the reference has at least 4 content words
//        (words other than function words such as of, to, is, should, and;
//        a crude stem joins "tests", "testing", "tested"), a short answer
//        that states the reference's key fact matches. The answer's words
//        it merely copies from the question (item.prompt) and that are not
//        in the reference are set aside; of the rest ("kept"):
//         - a number the reference does not have fails ("10 days" for "14
//           days of ..."); a reference that starts with a number needs it;
//         - a negation (not, no, never, without, avoid, ...) fails unless
//           the reference has one too;
//         - at least 2 kept words are in the reference, at least 3/4 of the
//           kept words are, and they cover at least 1/4 of the reference's
//           content words.
//        "14 days." and "Prescribe it for 14 days" match "14 days of
//        bismuth-based quadruple therapy"; "Proceed to surgery without
//        further testing." matches "Proceed directly to surgery without
//        further cardiac testing, as DASI score >34 indicates ..."; "7
//        days", "Order a stress test before surgery" do not. With updated
//        knowledge the same test runs against answer_before: an answer
//        sharing at least as many words with answer_before as with the
//        reference is stale ("10 days" for before "10 days of ..."). Our
//        measurement of this rule on a labelled set is in README, Grading
//        (judge/rules_labelled_test.cc).
//     A matching answer is correct even if it also hedges ("I am not sure,
//     but I think it is blue").
//  7. Updated knowledge (answer_before non-empty and different from the
//     reference once normalised): the answer matches answer_before by rule
//     6 -> stale ("fit" or "The method is fit." for reference "train",
//     before "fit"; "200 mg" for 250, before 200).
//  8. An abstention -> abstained ("Blue" vs "I'm not sure"; 189 vs
//     "Unknown").
//  9. Otherwise incorrect.
//
// ABSTENTIONS. An answer abstains when, normalised,
//  - it is one of: none, unknown, n/a, na, nil, null, idk, unsure,
//    unanswerable, [i] dont know, [i] do not know, not known, no answer,
//    no idea, not available, not applicable, [im | i am] not sure,
//    cannot/cant be answered, [i] cannot/cant answer, cannot/cant be
//    determined, no information, no data, not enough information,
//    insufficient information; or
//  - its first line or sentence (up to a newline, or . ! ? ; : before
//    whitespace; at most 40 bytes) is one of those ("Unknown\n\nX is a
//    fictional character, and ...", however long); or
//  - it has at most 16 words and contains one of: dont know, do not know,
//    not sure, no idea, unknown, not known, cannot/cant be answered,
//    cannot/cant answer, cannot/cant be determined, cannot/cant
//    determine, cannot/cant say, cannot/cant provide, unable to, no
//    information, not enough information, insufficient information, i
//    dont have, i do not have, no way to know, not aware, no record[s]
//    ("I'm sorry, but I don't have information about events in 2025.").
//  "None of the colours I know of" does not abstain.
#ifndef FTB_JUDGE_RULES_GRADER_H_
#define FTB_JUDGE_RULES_GRADER_H_

#include <string>
#include <string_view>

#include "judge/grader.h"

namespace ftb::judge {

class RulesGrader : public Grader {
 public:
  static constexpr std::string_view kKind = "rules";
  // rules/2 (from rules/1): rule 6d (key fact of long references) and the
  // "or" copied from the question is no hedge.
  static constexpr std::string_view kId = "rules/2";

  std::string_view kind() const override { return kKind; }
  std::string_view id() const override { return kId; }
  Verdict Grade(const v1::JudgeItem& item) const override;
};

// The normalised form of `text` (rules above): tokens separated by single
// spaces, e.g. "The cost is $1,200.50!" -> "cost is 1200.5". For tests and
// debugging.
std::string NormalizeForGrading(std::string_view text);

}  // namespace ftb::judge

#endif  // FTB_JUDGE_RULES_GRADER_H_
