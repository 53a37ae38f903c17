// A word-level tokenizer built from the texts of one campaign dataset.
//
// Text is cut into pieces: runs of letters (bytes >= 0x80 count as letters,
// so UTF-8 characters stay whole), numbers (digit runs, with one decimal
// point between digits: "2.5"), single punctuation characters, and single
// whitespace characters. A piece preceded by exactly one space carries that
// space (" Paris"), so Decode(Encode(text)) == text for any text whose
// pieces are all in the vocabulary. Case is kept.
//
// Ids 0..4 are the special tokens below; the rest are the distinct pieces of
// the build texts in byte order, so the same texts always give the same ids.
// Immutable after Build; thread-safe.
#ifndef FTB_TRAINER_TOKENIZER_H_
#define FTB_TRAINER_TOKENIZER_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace ftb::trainer {

inline constexpr int kPadId = 0;
inline constexpr int kUnkId = 1;
// Starts every sequence.
inline constexpr int kBosId = 2;
// Between question and answer.
inline constexpr int kSepId = 3;
// Ends an answer.
inline constexpr int kEosId = 4;
inline constexpr int kNumSpecialTokens = 5;

class Tokenizer {
 public:
  // The vocabulary of `texts`.
  static Tokenizer Build(const std::vector<std::string_view>& texts);

  // Ids of the pieces of `text`; a piece not in the vocabulary becomes
  // kUnkId. No special tokens are added.
  std::vector<int> Encode(std::string_view text) const;
  // Concatenates the pieces of `ids`. <pad>, <bos>, <sep> and <eos> decode
  // to nothing, <unk> and ids out of range to "<unk>".
  std::string Decode(const std::vector<int>& ids) const;

  int vocab_size() const { return static_cast<int>(pieces_.size()); }
  // The piece of `id` ("<unk>" etc. for the special tokens).
  const std::string& piece(int id) const { return pieces_.at(static_cast<size_t>(id)); }

  // The pieces of `text` (what Encode looks up), for tests and diagnostics.
  static std::vector<std::string_view> Split(std::string_view text);

 private:
  std::vector<std::string> pieces_;
  absl::flat_hash_map<std::string, int> ids_;
};

}  // namespace ftb::trainer

#endif  // FTB_TRAINER_TOKENIZER_H_
