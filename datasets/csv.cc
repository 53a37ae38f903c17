#include "datasets/csv.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ftb::datasets {
namespace {

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

// This abseil build has its own string_view type; StrCat needs that one.
absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

bool IsUtf8Continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// Tracks the current line while the parser moves forward through the text and
// turns byte offsets into 1-based code-point columns. Column lookups on one
// line are incremental, so a long line costs linear time overall.
class Locator {
 public:
  Locator(std::string_view text, size_t first_line_start)
      : text_(text), line_start_(first_line_start), cached_offset_(first_line_start) {}

  // The next line starts at byte `offset` (just past an LF).
  void NewLine(size_t offset) {
    ++line_;
    line_start_ = offset;
    cached_offset_ = offset;
    cached_column_ = 1;
  }

  int line() const { return line_; }

  // Position of byte `offset`, which must lie on the current line.
  CsvPosition At(size_t offset) {
    if (offset < cached_offset_) {
      cached_offset_ = line_start_;
      cached_column_ = 1;
    }
    for (; cached_offset_ < offset; ++cached_offset_) {
      if (!IsUtf8Continuation(text_[cached_offset_])) ++cached_column_;
    }
    return CsvPosition{line_, cached_column_};
  }

 private:
  std::string_view text_;
  int line_ = 1;
  size_t line_start_;
  size_t cached_offset_;
  int cached_column_ = 1;
};

absl::Status ErrorAt(std::string_view filename, CsvPosition pos, std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(Sv(filename), ":", pos.line, ":", pos.column, ": ", Sv(what)));
}

// The character at `i` for an error message: 'x' for printable ASCII and
// whole UTF-8 sequences, "byte 0x09" for control bytes.
std::string DescribeChar(std::string_view text, size_t i) {
  unsigned char c = static_cast<unsigned char>(text[i]);
  if (c < 0x20 || c == 0x7f) return absl::StrFormat("byte 0x%02X", c);
  size_t end = i + 1;
  while (end < text.size() && IsUtf8Continuation(text[end])) ++end;
  return absl::StrCat("'", Sv(text.substr(i, end - i)), "'");
}

// The length of the UTF-8 sequence starting at text[i], or 0 when it is not
// a well-formed one (RFC 3629: no overlong forms, no surrogates, at most
// U+10FFFF).
size_t Utf8SequenceLength(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t len = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // Allowed range of the second byte.
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + len > text.size() || byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    if (!IsUtf8Continuation(text[i + k])) return 0;
  }
  return len;
}

// Rejects what is not UTF-8 text: the first NUL byte or malformed sequence,
// at its line and column.
absl::Status CheckText(std::string_view text, size_t start, std::string_view filename) {
  int line = 1, column = 1;
  for (size_t i = start; i < text.size();) {
    const char c = text[i];
    if (c == '\0') {
      return ErrorAt(filename, CsvPosition{line, column},
                     "NUL byte (0x00): not a text file (a UTF-16 export? save it as UTF-8)");
    }
    const size_t len = Utf8SequenceLength(text, i);
    if (len == 0) {
      return ErrorAt(filename, CsvPosition{line, column},
                     absl::StrFormat("byte 0x%02X is not valid UTF-8 (a Latin-1 or Windows-1252 "
                                     "export? save it as UTF-8)",
                                     static_cast<unsigned char>(c)));
    }
    if (c == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
    i += len;
  }
  return absl::OkStatus();
}

absl::Status ValidateHeader(std::string_view filename, const std::vector<std::string>& names,
                            const std::vector<CsvPosition>& positions) {
  absl::flat_hash_map<absl::string_view, size_t> seen;
  for (size_t k = 0; k < names.size(); ++k) {
    if (names[k].empty() && k > 0) {
      return ErrorAt(filename, positions[k],
                     "empty column name (only the first column may be unnamed)");
    }
    auto [it, inserted] = seen.emplace(names[k], k);
    if (!inserted) {
      return ErrorAt(filename, positions[k],
                     absl::StrCat("duplicate column name \"", names[k], "\" (same as header field ",
                                  it->second + 1, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

int CsvTable::Column(std::string_view name) const {
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == name) return static_cast<int>(i);
  }
  return -1;
}

std::string CsvTable::Location(size_t row, size_t field) const {
  const CsvPosition& p = field_positions[row][field];
  return absl::StrCat(filename, ":", p.line, ":", p.column);
}

absl::StatusOr<CsvTable> ParseCsv(std::string_view text, std::string_view filename,
                                  const CsvLimits& limits) {
  CsvTable table;
  table.filename = std::string(filename);
  const size_t n = text.size();
  size_t i = text.starts_with(kUtf8Bom) ? kUtf8Bom.size() : 0;
  if (absl::Status s = CheckText(text, i, filename); !s.ok()) return s;
  Locator loc(text, i);

  // Length of the line terminator at `p` (LF, CRLF, or a CR ending the
  // text), or 0 if there is none.
  auto line_end = [&](size_t p) -> size_t {
    if (text[p] == '\n') return 1;
    if (text[p] == '\r') {
      if (p + 1 == n) return 1;
      if (text[p + 1] == '\n') return 2;
    }
    return 0;
  };

  bool have_header = false;
  std::vector<std::string> fields;
  std::vector<CsvPosition> positions;
  while (i < n) {
    if (size_t len = line_end(i); len > 0) {  // Blank line.
      i += len;
      loc.NewLine(i);
      continue;
    }
    const int record_line = loc.line();
    fields.clear();
    positions.clear();
    for (;;) {  // One field per iteration.
      const CsvPosition start = loc.At(i);
      positions.push_back(start);
      std::string& field = fields.emplace_back();
      if (i < n && text[i] == '"') {
        ++i;
        for (;;) {
          const size_t quote = text.find('"', i);
          if (quote == std::string_view::npos) {
            return ErrorAt(filename, start,
                           "unterminated quoted field: no closing quote before the end of "
                           "the file");
          }
          const std::string_view chunk = text.substr(i, quote - i);
          for (size_t p = chunk.find('\n'); p != std::string_view::npos;
               p = chunk.find('\n', p + 1)) {
            loc.NewLine(i + p + 1);
          }
          field.append(chunk);
          i = quote + 1;
          if (i < n && text[i] == '"') {  // Doubled quote.
            field.push_back('"');
            ++i;
            continue;
          }
          break;
        }
        if (i < n && text[i] != ',' && line_end(i) == 0) {
          return ErrorAt(filename, loc.At(i),
                         absl::StrCat("unexpected ", DescribeChar(text, i),
                                      " after a closing quote; expected ',' or the end of "
                                      "the line"));
        }
      } else {
        size_t j = i;
        for (; j < n; ++j) {
          const char c = text[j];
          if (c == ',' || c == '\n') break;
          if (c == '\r') {
            if (line_end(j) > 0) break;
            return ErrorAt(filename, loc.At(j), "carriage return not followed by a line feed");
          }
          if (c == '"') {
            return ErrorAt(filename, loc.At(j),
                           "'\"' inside an unquoted field (quote the whole field and double "
                           "the quotes inside it)");
          }
        }
        field.append(text.substr(i, j - i));
        i = j;
      }
      if (field.size() > limits.max_field_bytes) {
        return ErrorAt(filename, start,
                       absl::StrCat("field of ", field.size(), " bytes; the limit is ",
                                    limits.max_field_bytes, " bytes"));
      }
      if (fields.size() > limits.max_columns) {
        return ErrorAt(filename, start,
                       absl::StrCat("more than ", limits.max_columns,
                                    " fields in a record; the limit is ", limits.max_columns,
                                    " columns"));
      }
      if (i >= n) break;
      if (text[i] == ',') {
        ++i;
        continue;
      }
      i += line_end(i);
      loc.NewLine(i);
      break;
    }

    if (!have_header) {
      auto status = ValidateHeader(filename, fields, positions);
      if (!status.ok()) return status;
      table.header = std::move(fields);
      fields = {};
      have_header = true;
      continue;
    }
    if (fields.size() != table.header.size()) {
      return ErrorAt(filename, CsvPosition{record_line, 1},
                     absl::StrCat("expected ", table.header.size(),
                                  " fields (as in the header), got ", fields.size()));
    }
    table.rows.push_back(std::move(fields));
    table.field_positions.push_back(std::move(positions));
    table.row_lines.push_back(record_line);
    fields = {};
    positions = {};
  }
  if (!have_header) {
    return ErrorAt(filename, CsvPosition{1, 1}, "empty file: expected a header line");
  }
  return table;
}

absl::StatusOr<CsvTable> ReadCsvFile(const std::string& path, const CsvLimits& limits) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  }
  if (!std::filesystem::is_regular_file(status)) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": not a regular file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::FailedPreconditionError(absl::StrCat(path, ": cannot be opened"));
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  in.seekg(0, std::ios::beg);
  if (size < 0) return absl::FailedPreconditionError(absl::StrCat(path, ": cannot be read"));
  if (static_cast<size_t>(size) > limits.max_file_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", size, " bytes; the limit is ",
                                                   limits.max_file_bytes, " bytes"));
  }
  std::string data(static_cast<size_t>(size), '\0');
  if (size > 0 && !in.read(data.data(), size)) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": read error"));
  }
  return ParseCsv(data, path, limits);
}

}  // namespace ftb::datasets
