#include "trainer/tokenizer.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace ftb::trainer {
namespace {

constexpr const char* kSpecialPieces[kNumSpecialTokens] = {"<pad>", "<unk>", "<bos>", "<sep>",
                                                           "<eos>"};

bool IsLetter(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}
bool IsDigit(unsigned char c) { return c >= '0' && c <= '9'; }
bool IsSpace(unsigned char c) {
  return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

// Length of the word, number or single character starting at `i`.
size_t PieceLength(std::string_view text, size_t i) {
  const auto at = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  size_t j = i;
  if (IsLetter(at(j))) {
    while (j < text.size() && IsLetter(at(j))) ++j;
  } else if (IsDigit(at(j))) {
    while (j < text.size() && IsDigit(at(j))) ++j;
    if (j + 1 < text.size() && text[j] == '.' && IsDigit(at(j + 1))) {
      ++j;
      while (j < text.size() && IsDigit(at(j))) ++j;
    }
  } else {
    ++j;
  }
  return j - i;
}

}  // namespace

std::vector<std::string_view> Tokenizer::Split(std::string_view text) {
  std::vector<std::string_view> pieces;
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == ' ' && i + 1 < text.size() && !IsSpace(static_cast<unsigned char>(text[i + 1]))) {
      // One space glued to the piece after it.
      const size_t len = 1 + PieceLength(text, i + 1);
      pieces.push_back(text.substr(i, len));
      i += len;
    } else if (IsSpace(c)) {
      pieces.push_back(text.substr(i, 1));
      ++i;
    } else {
      const size_t len = PieceLength(text, i);
      pieces.push_back(text.substr(i, len));
      i += len;
    }
  }
  return pieces;
}

Tokenizer Tokenizer::Build(const std::vector<std::string_view>& texts) {
  std::vector<std::string> distinct;
  {
    absl::flat_hash_map<std::string_view, bool> seen;
    for (std::string_view text : texts) {
      for (std::string_view piece : Split(text)) {
        if (seen.emplace(piece, true).second) distinct.emplace_back(piece);
      }
    }
  }
  std::sort(distinct.begin(), distinct.end());
  Tokenizer tokenizer;
  for (const char* special : kSpecialPieces) tokenizer.pieces_.emplace_back(special);
  for (std::string& piece : distinct) tokenizer.pieces_.push_back(std::move(piece));
  // Special pieces are not looked up by Encode: text "<eos>" is ordinary
  // text ("<", "eos", ">").
  for (size_t id = kNumSpecialTokens; id < tokenizer.pieces_.size(); ++id) {
    tokenizer.ids_.emplace(tokenizer.pieces_[id], static_cast<int>(id));
  }
  return tokenizer;
}

std::vector<int> Tokenizer::Encode(std::string_view text) const {
  std::vector<int> ids;
  for (std::string_view piece : Split(text)) {
    auto it = ids_.find(absl::string_view(piece.data(), piece.size()));
    ids.push_back(it == ids_.end() ? kUnkId : it->second);
  }
  return ids;
}

std::string Tokenizer::Decode(const std::vector<int>& ids) const {
  std::string text;
  for (int id : ids) {
    if (id == kPadId || id == kBosId || id == kSepId || id == kEosId) continue;
    if (id < kNumSpecialTokens || id >= vocab_size()) {
      text += kSpecialPieces[kUnkId];
    } else {
      text += pieces_[static_cast<size_t>(id)];
    }
  }
  return text;
}

}  // namespace ftb::trainer
