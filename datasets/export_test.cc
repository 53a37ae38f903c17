#include "datasets/export.h"

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "datasets/builtin.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace ftb::datasets {
namespace {

v1::QaItem Item(const std::string& prompt, const std::string& answer) {
  v1::QaItem item;
  item.set_id("id");
  item.set_prompt(prompt);
  item.set_answer(answer);
  item.set_answer_before("ignored");
  item.set_context("ignored");
  return item;
}

std::vector<std::string> Lines(const std::string& jsonl) {
  std::vector<std::string> lines = absl::StrSplit(jsonl, '\n');
  EXPECT_EQ(lines.back(), "") << "JSONL must end with a newline";
  lines.pop_back();
  return lines;
}

// A prompt with a newline, quotes, a backslash, a tab and non-ASCII text.
const std::string kTrickyPrompt = "Answer the question.\nWhat does \"Zoë\" say?\t\\ café — 東京 ✓";
const std::string kTrickyAnswer = "Grüße \"x\"";

TEST(ExportTest, ParseExportFormat) {
  EXPECT_EQ(ParseExportFormat("openai"), ExportFormat::kOpenAiChat);
  EXPECT_EQ(ParseExportFormat("vertex"), ExportFormat::kVertex);
  EXPECT_EQ(ParseExportFormat("OpenAI"), std::nullopt);
  EXPECT_EQ(ParseExportFormat("jsonl"), std::nullopt);
  EXPECT_EQ(ParseExportFormat(""), std::nullopt);
}

TEST(ExportTest, OpenAiExactLine) {
  const v1::QaItem item = Item("Q?", "A");
  EXPECT_EQ(ExportJsonl({&item}, ExportFormat::kOpenAiChat),
            "{\"messages\":[{\"role\":\"user\",\"content\":\"Q?\"},"
            "{\"role\":\"assistant\",\"content\":\"A\"}]}\n");
}

TEST(ExportTest, VertexExactLine) {
  const v1::QaItem item = Item("Q?", "A");
  EXPECT_EQ(ExportJsonl({&item}, ExportFormat::kVertex),
            "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"Q?\"}]},"
            "{\"role\":\"model\",\"parts\":[{\"text\":\"A\"}]}]}\n");
}

TEST(ExportTest, OpenAiRoundTripsTrickyText) {
  const v1::QaItem first = Item(kTrickyPrompt, kTrickyAnswer);
  const v1::QaItem second = Item("second", "2");
  const std::string jsonl = ExportJsonl({&first, &second}, ExportFormat::kOpenAiChat);
  // UTF-8 is written as is, not \u-escaped.
  EXPECT_NE(jsonl.find("café — 東京 ✓"), std::string::npos) << jsonl;
  std::vector<std::string> lines = Lines(jsonl);
  ASSERT_EQ(lines.size(), 2u);
  const nlohmann::json j = nlohmann::json::parse(lines[0]);
  ASSERT_EQ(j.size(), 1u);
  const nlohmann::json& messages = j.at("messages");
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0].at("role"), "user");
  EXPECT_EQ(messages[0].at("content"), kTrickyPrompt);
  EXPECT_EQ(messages[0].size(), 2u);
  EXPECT_EQ(messages[1].at("role"), "assistant");
  EXPECT_EQ(messages[1].at("content"), kTrickyAnswer);
  const nlohmann::json k = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(k.at("messages")[0].at("content"), "second");
  EXPECT_EQ(k.at("messages")[1].at("content"), "2");
}

TEST(ExportTest, VertexRoundTripsTrickyText) {
  const v1::QaItem item = Item(kTrickyPrompt, kTrickyAnswer);
  std::vector<std::string> lines = Lines(ExportJsonl({&item}, ExportFormat::kVertex));
  ASSERT_EQ(lines.size(), 1u);
  const nlohmann::json j = nlohmann::json::parse(lines[0]);
  const nlohmann::json& contents = j.at("contents");
  ASSERT_EQ(contents.size(), 2u);
  EXPECT_EQ(contents[0].at("role"), "user");
  ASSERT_EQ(contents[0].at("parts").size(), 1u);
  EXPECT_EQ(contents[0].at("parts")[0].at("text"), kTrickyPrompt);
  EXPECT_EQ(contents[1].at("role"), "model");
  EXPECT_EQ(contents[1].at("parts")[0].at("text"), kTrickyAnswer);
}

TEST(ExportTest, InvalidUtf8IsReplacedNotThrown) {
  const v1::QaItem item = Item("bad \xff byte", "A");
  std::vector<std::string> lines = Lines(ExportJsonl({&item}, ExportFormat::kOpenAiChat));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(lines[0]).at("messages")[0].at("content"),
            "bad \xEF\xBF\xBD byte");
}

TEST(ExportTest, EmptyItemListIsEmpty) {
  EXPECT_EQ(ExportJsonl({}, ExportFormat::kOpenAiChat), "");
  EXPECT_EQ(ExportTrainingJsonl(v1::Dataset(), ExportFormat::kVertex), "");
}

TEST(ExportTest, TrainingSetOneLinePerItemInOrder) {
  const v1::Dataset d = *GenerateUpdates(10, 1);
  std::vector<std::string> lines = Lines(ExportTrainingJsonl(d, ExportFormat::kOpenAiChat));
  ASSERT_EQ(lines.size(), 10u);
  for (int i = 0; i < d.training_size(); ++i) {
    const nlohmann::json j = nlohmann::json::parse(lines[i]);
    EXPECT_EQ(j.at("messages")[0].at("content"), d.training(i).prompt());
    EXPECT_EQ(j.at("messages")[1].at("content"), d.training(i).answer());
  }
}

}  // namespace
}  // namespace ftb::datasets
