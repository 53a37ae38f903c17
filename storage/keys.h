// Key-encoding helpers for the raw StateStore key space. Header-only,
// dependency-free apart from absl strings; every function is thread-safe
// (no shared state).
//
// Keys are byte strings compared bytewise as unsigned chars (RocksDB's
// BytewiseComparator, std::less<std::string>). A table is a key prefix; the
// typed layer above owns the concrete prefixes ("c/" campaigns, "t/" tasks,
// "e/" events, ...). These helpers only guarantee two properties the typed
// layer relies on:
//   * EncodeUint64 is order-preserving: a < b  <=>  EncodeUint64(a) <
//     EncodeUint64(b) bytewise. Used for sequence numbers in the per-campaign
//     append-only event log, so a prefix scan returns events in seq order.
//   * JoinKey/KeyPrefix produce prefixes that cannot capture a sibling:
//     the scan prefix for campaign "ab" is "e/ab/", which never matches keys
//     of campaign "abc".
#ifndef FTB_STORAGE_KEYS_H_
#define FTB_STORAGE_KEYS_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace ftb::storage {

// The separator between key parts.
inline constexpr char kKeySeparator = '/';

// Width in bytes of an encoded uint64.
inline constexpr size_t kEncodedUint64Size = 8;

// Appends the 8-byte big-endian encoding of `v` to `dst`.
inline void AppendUint64(std::string* dst, uint64_t v) {
  char buf[kEncodedUint64Size];
  for (size_t i = 0; i < kEncodedUint64Size; ++i) {
    buf[i] = static_cast<char>((v >> (8 * (kEncodedUint64Size - 1 - i))) & 0xff);
  }
  dst->append(buf, kEncodedUint64Size);
}

// The 8-byte big-endian encoding of `v` (order-preserving, fixed width).
inline std::string EncodeUint64(uint64_t v) {
  std::string out;
  AppendUint64(&out, v);
  return out;
}

// Decodes exactly 8 bytes produced by EncodeUint64. Returns std::nullopt if
// `in` is not exactly 8 bytes long.
inline std::optional<uint64_t> DecodeUint64(std::string_view in) {
  if (in.size() != kEncodedUint64Size) return std::nullopt;
  uint64_t v = 0;
  for (unsigned char c : in) v = (v << 8) | c;
  return v;
}

// If `*in` starts with an encoded uint64, stores it in `*v`, removes the 8
// bytes from `*in` and returns true; otherwise leaves both untouched and
// returns false.
inline bool ConsumeUint64(std::string_view* in, uint64_t* v) {
  if (in->size() < kEncodedUint64Size) return false;
  *v = *DecodeUint64(in->substr(0, kEncodedUint64Size));
  in->remove_prefix(kEncodedUint64Size);
  return true;
}

// True if `part` may appear as a non-final part of a key: non-empty and free
// of kKeySeparator. (The final part may be anything, e.g. an EncodeUint64
// value, which can contain the byte '/'.)
inline bool IsValidKeyPart(std::string_view part) {
  return !part.empty() && part.find(kKeySeparator) == std::string_view::npos;
}

// Joins parts with kKeySeparator: JoinKey({"e", "c1", EncodeUint64(7)}) ==
// "e/c1/" + EncodeUint64(7). Unambiguous (and prefix-safe) only if every part
// but the last satisfies IsValidKeyPart; callers validate ids at their edge.
inline std::string JoinKey(std::initializer_list<std::string_view> parts) {
  std::string out;
  size_t size = parts.size();
  for (std::string_view p : parts) size += p.size();
  out.reserve(size);
  bool first = true;
  for (std::string_view p : parts) {
    if (!first) out.push_back(kKeySeparator);
    out.append(p);
    first = false;
  }
  return out;
}

// JoinKey(parts) followed by a trailing separator: the scan prefix of every
// key that extends `parts`. KeyPrefix({"e", "ab"}) == "e/ab/", which does not
// match "e/abc/...".
inline std::string KeyPrefix(std::initializer_list<std::string_view> parts) {
  std::string out = JoinKey(parts);
  out.push_back(kKeySeparator);
  return out;
}

// The event-log key of event `seq` of `campaign_id` in the table `table`
// (e.g. "e"): table + '/' + campaign_id + '/' + EncodeUint64(seq). Keys of
// one campaign sort by seq; scan them with KeyPrefix({table, campaign_id}).
inline std::string SequenceKey(std::string_view table,
                               std::string_view campaign_id, uint64_t seq) {
  std::string out = KeyPrefix({table, campaign_id});
  AppendUint64(&out, seq);
  return out;
}

// The smallest key greater than every key that starts with `prefix`, i.e.
// the exclusive upper bound of a prefix scan. std::nullopt if no such key
// exists (prefix is empty or all 0xff bytes): the scan is unbounded above.
inline std::optional<std::string> PrefixSuccessor(std::string_view prefix) {
  std::string out(prefix);
  while (!out.empty()) {
    unsigned char last = static_cast<unsigned char>(out.back());
    if (last != 0xff) {
      out.back() = static_cast<char>(last + 1);
      return out;
    }
    out.pop_back();
  }
  return std::nullopt;
}

}  // namespace ftb::storage

#endif  // FTB_STORAGE_KEYS_H_
