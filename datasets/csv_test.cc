#include "datasets/csv.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/rng.h"
#include "datasets/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ftb::datasets {
namespace {

using ::ftb::datasets::testing::CodeAndMessage;
using ::ftb::datasets::testing::ScratchDir;
using ::testing::ElementsAre;

using Rows = std::vector<std::vector<std::string>>;

CsvTable ParseOk(std::string_view text) {
  absl::StatusOr<CsvTable> table = ParseCsv(text, "t.csv");
  EXPECT_TRUE(table.ok()) << table.status();
  return table.ok() ? *std::move(table) : CsvTable{};
}

// The full error, code included, for `text` parsed as "t.csv".
std::string ParseError(std::string_view text) {
  absl::StatusOr<CsvTable> table = ParseCsv(text, "t.csv");
  if (table.ok()) return "OK";
  return CodeAndMessage(table.status());
}

TEST(CsvTest, ParsesSimpleTable) {
  CsvTable t = ParseOk("a,b\n1,2\n3,4\n");
  EXPECT_EQ(t.filename, "t.csv");
  EXPECT_THAT(t.header, ElementsAre("a", "b"));
  EXPECT_EQ(t.rows, (Rows{{"1", "2"}, {"3", "4"}}));
  EXPECT_THAT(t.row_lines, ElementsAre(2, 3));
  EXPECT_EQ(t.Column("a"), 0);
  EXPECT_EQ(t.Column("b"), 1);
  EXPECT_EQ(t.Column("c"), -1);
}

TEST(CsvTest, QuotedFieldsHoldCommasDoubledQuotesAndNewlines) {
  CsvTable t = ParseOk("id,text\n1,\"x, \"\"y\"\"\nz\"\n2,\"\"\n3,\"\"\"\"\n");
  EXPECT_EQ(t.rows, (Rows{{"1", "x, \"y\"\nz"}, {"2", ""}, {"3", "\""}}));
  // The first row spans lines 2-3.
  EXPECT_THAT(t.row_lines, ElementsAre(2, 4, 5));
}

TEST(CsvTest, CrlfLineEndsAndCrlfKeptInsideQuotes) {
  CsvTable t = ParseOk("a,b\r\n1,\"p\r\nq\"\r\n3,4\r\n");
  EXPECT_EQ(t.rows, (Rows{{"1", "p\r\nq"}, {"3", "4"}}));
  EXPECT_THAT(t.row_lines, ElementsAre(2, 4));
}

TEST(CsvTest, BomIsSkippedAndLastRecordNeedsNoNewline) {
  CsvTable t = ParseOk(
      "\xEF\xBB\xBF"
      "a,b\n1,2");
  EXPECT_THAT(t.header, ElementsAre("a", "b"));
  EXPECT_EQ(t.rows, (Rows{{"1", "2"}}));
  CsvTable quoted = ParseOk("a,b\n1,\"2\"");
  EXPECT_EQ(quoted.rows, (Rows{{"1", "2"}}));
  CsvTable cr_at_end = ParseOk("a,b\r\n1,2\r");
  EXPECT_EQ(cr_at_end.rows, (Rows{{"1", "2"}}));
}

TEST(CsvTest, EmptyFields) {
  CsvTable t = ParseOk("a,b,c\n,,\n1,,\n,\"\",3\n4,5,");
  EXPECT_EQ(t.rows, (Rows{{"", "", ""}, {"1", "", ""}, {"", "", "3"}, {"4", "5", ""}}));
}

TEST(CsvTest, BlankLinesAreSkipped) {
  CsvTable t = ParseOk("\na,b\n\n1,2\r\n\r\n3,4\n\n");
  EXPECT_EQ(t.rows, (Rows{{"1", "2"}, {"3", "4"}}));
  EXPECT_THAT(t.row_lines, ElementsAre(4, 6));
}

TEST(CsvTest, HeaderOnlyGivesNoRows) {
  CsvTable t = ParseOk("a,b\n");
  EXPECT_THAT(t.header, ElementsAre("a", "b"));
  EXPECT_TRUE(t.rows.empty());
}

TEST(CsvTest, UnnamedFirstColumnIsAllowedOnce) {
  CsvTable t = ParseOk(",id\n0,x\n");
  EXPECT_EQ(t.Column(""), 0);
  EXPECT_EQ(t.Column("id"), 1);
}

TEST(CsvTest, FieldPositionsCountCodePoints) {
  // "é" and "ü" are two bytes each but one column.
  CsvTable t = ParseOk("a,b,c\n\"é\",ü,x\n\"p\nq\",r,s\n");
  EXPECT_EQ(t.Location(0, 0), "t.csv:2:1");
  EXPECT_EQ(t.Location(0, 1), "t.csv:2:5");
  EXPECT_EQ(t.Location(0, 2), "t.csv:2:7");
  EXPECT_EQ(t.Location(1, 0), "t.csv:3:1");
  EXPECT_EQ(t.Location(1, 1), "t.csv:4:4");
  EXPECT_EQ(t.Location(1, 2), "t.csv:4:6");
}

// Malformed input: every case checks the exact message.

TEST(CsvErrorTest, UnterminatedQuotedFieldPointsAtOpeningQuote) {
  EXPECT_EQ(ParseError("a,b\n1,\"abc\n\ndef\n"),
            "INVALID_ARGUMENT: t.csv:2:3: unterminated quoted field: no closing quote before "
            "the end of the file");
}

TEST(CsvErrorTest, QuoteInsideUnquotedField) {
  EXPECT_EQ(ParseError("a,b\n1,ab\"c\n"),
            "INVALID_ARGUMENT: t.csv:2:5: '\"' inside an unquoted field (quote the whole field "
            "and double the quotes inside it)");
}

TEST(CsvErrorTest, GarbageAfterClosingQuote) {
  EXPECT_EQ(ParseError("a,b\n1,\"abc\"x\n"),
            "INVALID_ARGUMENT: t.csv:2:8: unexpected 'x' after a closing quote; expected ',' "
            "or the end of the line");
}

TEST(CsvErrorTest, SpaceAndControlAndNonAsciiAfterClosingQuote) {
  EXPECT_EQ(ParseError("a\n\"x\" \n"),
            "INVALID_ARGUMENT: t.csv:2:4: unexpected ' ' after a closing quote; expected ',' "
            "or the end of the line");
  EXPECT_EQ(ParseError("a\n\"x\"\t\n"),
            "INVALID_ARGUMENT: t.csv:2:4: unexpected byte 0x09 after a closing quote; "
            "expected ',' or the end of the line");
  EXPECT_EQ(ParseError("a,b\n\"é\"ü,1\n"),
            "INVALID_ARGUMENT: t.csv:2:4: unexpected 'ü' after a closing quote; expected ',' "
            "or the end of the line");
}

TEST(CsvErrorTest, GarbageAfterMultiLineQuotedFieldReportsItsLine) {
  EXPECT_EQ(ParseError("a,b\n\"x\ny\ny\"z,1\n"),
            "INVALID_ARGUMENT: t.csv:4:3: unexpected 'z' after a closing quote; expected ',' "
            "or the end of the line");
}

TEST(CsvErrorTest, TooFewFieldsInMultiLineRecordPointsAtRecordStart) {
  EXPECT_EQ(ParseError("a,b,c\n1,2,3\n\"x\ny\nz\",2\n4,5,6\n"),
            "INVALID_ARGUMENT: t.csv:3:1: expected 3 fields (as in the header), got 2");
}

TEST(CsvErrorTest, TooManyFieldsAfterMultiLineRecord) {
  EXPECT_EQ(ParseError("a,b\n\"p\nq\",1\n1,2,3\n"),
            "INVALID_ARGUMENT: t.csv:4:1: expected 2 fields (as in the header), got 3");
}

TEST(CsvErrorTest, EmptyFile) {
  const std::string expected = "INVALID_ARGUMENT: t.csv:1:1: empty file: expected a header line";
  EXPECT_EQ(ParseError(""), expected);
  EXPECT_EQ(ParseError("\xEF\xBB\xBF"), expected);
  EXPECT_EQ(ParseError("\n\r\n\n"), expected);
}

TEST(CsvErrorTest, DuplicateColumnName) {
  EXPECT_EQ(ParseError("id,x,id\n1,2,3\n"),
            "INVALID_ARGUMENT: t.csv:1:6: duplicate column name \"id\" (same as header field 1)");
}

TEST(CsvErrorTest, SecondUnnamedColumn) {
  EXPECT_EQ(ParseError(",a,\n"),
            "INVALID_ARGUMENT: t.csv:1:4: empty column name (only the first column may be "
            "unnamed)");
}

TEST(CsvErrorTest, BareCarriageReturn) {
  EXPECT_EQ(ParseError("a,b\r1,2\n"),
            "INVALID_ARGUMENT: t.csv:1:4: carriage return not followed by a line feed");
}

// Random tables, encoded with random quoting and line ends, parse back to
// the same fields and row lines.
TEST(CsvPropertyTest, RandomTablesRoundTrip) {
  static constexpr std::string_view kAlphabet[] = {"a",    "b",  " ",        ",",  "\"", "\n",
                                                   "\r\n", "\r", "\xC3\xA9", "\t", "x"};
  Rng rng(2024);
  for (int iteration = 0; iteration < 500; ++iteration) {
    const int columns = static_cast<int>(rng.Uniform(2, 4));
    const int rows = static_cast<int>(rng.Uniform(0, 6));
    const bool crlf = rng.Uniform(0, 1) == 1;
    Rows expected;
    std::vector<int> expected_lines;
    std::string text;
    int line = 1;
    auto append = [&](std::string_view piece) {
      for (char c : piece) line += c == '\n';
      text.append(piece);
    };
    auto end_line = [&] { append(crlf ? "\r\n" : "\n"); };
    for (int c = 0; c < columns; ++c) {
      if (c > 0) append(",");
      append("c" + std::to_string(c));
    }
    for (int r = 0; r < rows; ++r) {
      end_line();
      expected_lines.push_back(line);
      std::vector<std::string>& row = expected.emplace_back();
      for (int c = 0; c < columns; ++c) {
        std::string field;
        const int length = static_cast<int>(rng.Uniform(0, 5));
        for (int k = 0; k < length; ++k) field += std::string(kAlphabet[rng.Uniform(0, 10)]);
        row.push_back(field);
        const bool must_quote = field.find_first_of(",\"\r\n") != std::string::npos;
        if (c > 0) append(",");
        if (must_quote || rng.Uniform(0, 3) == 0) {
          std::string quoted = "\"";
          for (char ch : field) quoted += ch == '"' ? std::string("\"\"") : std::string(1, ch);
          append(quoted + "\"");
        } else {
          append(field);
        }
      }
    }
    if (rng.Uniform(0, 1) == 1) end_line();
    absl::StatusOr<CsvTable> t = ParseCsv(text, "t.csv");
    ASSERT_TRUE(t.ok()) << t.status() << "\n" << text;
    EXPECT_EQ(t->rows, expected) << text;
    EXPECT_EQ(t->row_lines, expected_lines) << text;
  }
}

// Random bytes never crash the parser; failures are located errors.
TEST(CsvPropertyTest, RandomInputIsParsedOrLocatedError) {
  static constexpr char kBytes[] = {'a', ',', '"', '\n', '\r', ' ', '\xC3', '\xA9'};
  Rng rng(7);
  int errors = 0;
  for (int iteration = 0; iteration < 2000; ++iteration) {
    std::string text;
    const int length = static_cast<int>(rng.Uniform(0, 30));
    for (int k = 0; k < length; ++k) text += kBytes[rng.Uniform(0, 7)];
    absl::StatusOr<CsvTable> t = ParseCsv(text, "t.csv");
    if (t.ok()) {
      for (const auto& row : t->rows) EXPECT_EQ(row.size(), t->header.size());
      continue;
    }
    ++errors;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StartsWith(t.status().message(), "t.csv:")) << t.status();
  }
  EXPECT_GT(errors, 0);
}

// Issue 17, finding 6: what is not UTF-8 text, or is too large, was
// accepted without a word. Each case is a located error now.
TEST(CsvLimitsTest, NulByteIsALocatedError) {
  EXPECT_EQ(ParseError(std::string("a,b\n1,x\0y\n", 10)),
            "INVALID_ARGUMENT: t.csv:2:4: NUL byte (0x00): not a text file (a UTF-16 export? "
            "save it as UTF-8)");
  // UTF-16LE "a,b": every other byte is NUL.
  EXPECT_THAT(ParseError(std::string("\xFF\xFE" "a\0,\0b\0", 8)),
              ::testing::HasSubstr("t.csv:1:1: byte 0xFF is not valid UTF-8"));
}

TEST(CsvLimitsTest, InvalidUtf8IsALocatedError) {
  // Latin-1 "é" (0xE9) after two code points of a UTF-8 line.
  EXPECT_EQ(ParseError("a,b\n\xC3\xA9t\xE9,2\n"),
            "INVALID_ARGUMENT: t.csv:2:3: byte 0xE9 is not valid UTF-8 (a Latin-1 or "
            "Windows-1252 export? save it as UTF-8)");
  EXPECT_THAT(ParseError("a\n\xC0\xAF\n"), ::testing::HasSubstr("t.csv:2:1: byte 0xC0"));
  EXPECT_THAT(ParseError("a\n\xED\xA0\x80\n"), ::testing::HasSubstr("t.csv:2:1: byte 0xED"));
  EXPECT_THAT(ParseError("a\nx\xE2\x82"), ::testing::HasSubstr("t.csv:2:2: byte 0xE2"));
  // Well-formed 2-, 3- and 4-byte sequences pass.
  EXPECT_EQ(ParseOk("a\n\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\n").rows,
            (Rows{{"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"}}));
}

TEST(CsvLimitsTest, BomIsAcceptedAndNotCounted) {
  CsvTable t = ParseOk("\xEF\xBB\xBF" "a,b\n1,2\n");
  EXPECT_THAT(t.header, ElementsAre("a", "b"));
}

TEST(CsvLimitsTest, FieldOverTheLimitIsALocatedError) {
  CsvLimits limits;
  limits.max_field_bytes = 8;
  EXPECT_TRUE(ParseCsv("a,b\n12345678,\"x\"\n", "t.csv", limits).ok());
  EXPECT_EQ(CodeAndMessage(ParseCsv("a,b\n1,\"123456789\"\n", "t.csv", limits).status()),
            "INVALID_ARGUMENT: t.csv:2:3: field of 9 bytes; the limit is 8 bytes");
  // The default: 1 MiB.
  const std::string big(CsvLimits().max_field_bytes + 1, 'x');
  EXPECT_THAT(ParseError("a\n" + big + "\n"),
              ::testing::HasSubstr("t.csv:2:1: field of 1048577 bytes; the limit is 1048576"));
}

TEST(CsvLimitsTest, TooManyColumnsIsALocatedError) {
  std::string header = "c0";
  for (int k = 1; k < 100000; ++k) header += ",c" + std::to_string(k);
  const std::string error = ParseError(header + "\n");
  EXPECT_THAT(error, ::testing::HasSubstr("t.csv:1:"));
  EXPECT_THAT(error, ::testing::HasSubstr("more than 256 fields in a record; the limit is 256"));
  CsvLimits limits;
  limits.max_columns = 3;
  EXPECT_TRUE(ParseCsv("a,b,c\n1,2,3\n", "t.csv", limits).ok());
  EXPECT_EQ(CodeAndMessage(ParseCsv("a,b,c\n1,2,3,4\n", "t.csv", limits).status()),
            "INVALID_ARGUMENT: t.csv:2:7: more than 3 fields in a record; the limit is 3 columns");
}

TEST(CsvLimitsTest, FileOverTheLimitIsRefusedBeforeReading) {
  ScratchDir dir;
  const std::string path = dir.Write("big.csv", "a,b\n1,2\n");
  CsvLimits limits;
  limits.max_file_bytes = 7;
  EXPECT_EQ(CodeAndMessage(ReadCsvFile(path, limits).status()),
            "INVALID_ARGUMENT: " + path + ": 8 bytes; the limit is 7 bytes");
  limits.max_file_bytes = 8;
  EXPECT_TRUE(ReadCsvFile(path, limits).ok());
}

TEST(CsvFileTest, ReadsFile) {
  ScratchDir dir;
  const std::string path = dir.Write("x.csv", "a,b\n1,\"2\n3\"\n");
  absl::StatusOr<CsvTable> t = ReadCsvFile(path);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->filename, path);
  EXPECT_EQ(t->rows, (Rows{{"1", "2\n3"}}));
}

TEST(CsvFileTest, ErrorsNameTheFile) {
  ScratchDir dir;
  const std::string path = dir.Write("bad.csv", "a,b\n1\n");
  EXPECT_EQ(CodeAndMessage(ReadCsvFile(path).status()),
            "INVALID_ARGUMENT: " + path + ":2:1: expected 2 fields (as in the header), got 1");
}

TEST(CsvFileTest, MissingFileIsNotFound) {
  ScratchDir dir;
  const std::string path = dir.path() + "/absent.csv";
  EXPECT_EQ(CodeAndMessage(ReadCsvFile(path).status()), "NOT_FOUND: " + path + ": no such file");
}

TEST(CsvFileTest, DirectoryIsFailedPrecondition) {
  ScratchDir dir;
  EXPECT_EQ(CodeAndMessage(ReadCsvFile(dir.path()).status()),
            "FAILED_PRECONDITION: " + dir.path() + ": not a regular file");
}

}  // namespace
}  // namespace ftb::datasets
