// RFC 4180 CSV parsing with precise error locations. Handles quoted fields
// with embedded commas, doubled quotes and newlines, CRLF or LF line ends, a
// UTF-8 BOM, and a final record with or without a trailing newline. Blank
// lines between records are skipped (as Python's csv module does). Inside a
// quoted field every byte is kept as is (a CRLF stays CRLF).
//
// Positions are 1-based. A line ends at LF; a column counts UTF-8 code points
// from the start of the line (a BOM is not counted), so editors that count
// characters land on the right spot.
//
// Thread-safe (pure functions).
#ifndef FTB_DATASETS_CSV_H_
#define FTB_DATASETS_CSV_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace ftb::datasets {

struct CsvPosition {
  int line = 0;
  int column = 0;
};

struct CsvTable {
  // The name passed to ParseCsv, used in Location().
  std::string filename;
  std::vector<std::string> header;
  // Every row has exactly header.size() fields.
  std::vector<std::vector<std::string>> rows;
  // 1-based physical line on which each row starts (rows span several lines
  // when a quoted field holds newlines).
  std::vector<int> row_lines;
  // Where each field of each row starts (for a quoted field: its opening
  // quote); parallel to `rows`.
  std::vector<std::vector<CsvPosition>> field_positions;

  // Index of column `name` in the header, or -1.
  int Column(std::string_view name) const;

  // "<filename>:<line>:<column>" of field `field` of row `row`, for error
  // messages about a field's value. Both indexes must be in range.
  std::string Location(size_t row, size_t field) const;
};

// Parses `text`. The first record is the header: it must exist, and its
// names must be unique and non-empty, except that the first name may be empty
// (an unnamed index column as pandas writes it). Every record must have as
// many fields as the header.
// Errors are kInvalidArgument with the message
// "<filename>:<line>:<column>: <what is wrong>", where line and column are
// 1-based and point at the offending character (for a wrong field count: at
// the start of the record; for an unterminated quoted field: at its opening
// quote).
absl::StatusOr<CsvTable> ParseCsv(std::string_view text, std::string_view filename);

// Reads and parses a file; `path` is the filename in error messages.
// kNotFound ("<path>: no such file") when it does not exist,
// kFailedPrecondition when it cannot be read, else as ParseCsv.
absl::StatusOr<CsvTable> ReadCsvFile(const std::string& path);

}  // namespace ftb::datasets

#endif  // FTB_DATASETS_CSV_H_
