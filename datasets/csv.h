// RFC 4180 CSV parsing with precise error locations. Handles quoted fields
// with embedded commas, doubled quotes and newlines, CRLF or LF line ends, a
// UTF-8 BOM, and a final record with or without a trailing newline. Blank
// lines between records are skipped (as Python's csv module does). Inside a
// quoted field every byte is kept as is (a CRLF stays CRLF).
//
// Not text, not accepted: a NUL byte or a byte sequence that is not UTF-8
// is an error at its position (a CSV exported in Latin-1 or UTF-16 must be
// converted first). A UTF-8 BOM is accepted and skipped (Excel writes one).
// Sizes are bounded by CsvLimits (a field, the columns of the header, the
// file), each an error naming the limit.
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

// Bounds on what ParseCsv accepts. The defaults hold every published
// FineTuneBench file with room to spare (largest field 23 kB, 17 columns,
// 3.2 MB), while a runaway export fails at once.
struct CsvLimits {
  size_t max_field_bytes = 1 << 20;
  size_t max_columns = 256;
  size_t max_file_bytes = size_t{256} << 20;
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
// quote; for a NUL byte, invalid UTF-8 or a field over the limit: at the
// byte or the field).
absl::StatusOr<CsvTable> ParseCsv(std::string_view text, std::string_view filename,
                                  const CsvLimits& limits = {});

// Reads and parses a file; `path` is the filename in error messages.
// kNotFound ("<path>: no such file") when it does not exist,
// kFailedPrecondition when it cannot be read, kInvalidArgument ("<path>: N
// bytes; the limit is M") when it exceeds limits.max_file_bytes (before
// reading it), else as ParseCsv.
absl::StatusOr<CsvTable> ReadCsvFile(const std::string& path, const CsvLimits& limits = {});

}  // namespace ftb::datasets

#endif  // FTB_DATASETS_CSV_H_
