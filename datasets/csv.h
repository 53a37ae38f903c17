// RFC 4180 CSV parsing with precise error locations. Handles quoted fields
// with embedded commas, doubled quotes and newlines, CRLF or LF line ends, a
// UTF-8 BOM, and a final record with or without a trailing newline.
// Thread-safe (pure functions).
#ifndef FTB_DATASETS_CSV_H_
#define FTB_DATASETS_CSV_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace ftb::datasets {

struct CsvTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  // 1-based physical line on which each row starts (rows span several lines
  // when a quoted field holds newlines).
  std::vector<int> row_lines;

  // Index of column `name` in the header, or -1.
  int Column(std::string_view name) const;
};

// Parses `text`. Every record must have as many fields as the header.
// Errors are kInvalidArgument with the message
// "<filename>:<line>:<column>: <what is wrong>", where line and column are
// 1-based and point at the offending character (for a wrong field count: at
// the start of the record).
absl::StatusOr<CsvTable> ParseCsv(std::string_view text, std::string_view filename);

// Reads and parses a file. kNotFound when it does not exist.
absl::StatusOr<CsvTable> ReadCsvFile(const std::string& path);

}  // namespace ftb::datasets

#endif  // FTB_DATASETS_CSV_H_
