#include "workers/subprocess.h"

#include <signal.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

#include "datasets/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ftb::workers {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Lines {
  std::vector<std::string> out, err;
};

SubprocessOptions Options(const std::string& command, Lines* lines) {
  SubprocessOptions o;
  o.command = command;
  o.on_line = [lines](std::string_view line, bool from_stderr) {
    (from_stderr ? lines->err : lines->out).emplace_back(line);
  };
  return o;
}

TEST(SubprocessTest, StreamsLinesAndReportsExitStatus) {
  Lines lines;
  auto r = RunSubprocess(Options("echo one; echo two >&2; printf 'three'; exit 3", &lines));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_FALSE(r->ok());
  EXPECT_THAT(lines.out, ElementsAre("one", "three"));
  EXPECT_THAT(lines.err, ElementsAre("two"));
  EXPECT_EQ(r->stderr_tail, "two\n");
}

TEST(SubprocessTest, KeepsOnlyTheTailOfStderr) {
  Lines lines;
  SubprocessOptions o = Options("for i in $(seq 1 2000); do echo line-$i >&2; done; exit 1", &lines);
  o.stderr_tail_bytes = 100;
  auto r = RunSubprocess(o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(lines.err.size(), 2000u);
  EXPECT_LE(r->stderr_tail.size(), 100u);
  EXPECT_THAT(r->stderr_tail, HasSubstr("line-2000\n"));
  EXPECT_EQ(r->stderr_tail.rfind("line-", 0), 0u) << "cut at a line start: " << r->stderr_tail;
}

TEST(SubprocessTest, PassesEnvironmentAndWorkingDirectory) {
  datasets::testing::ScratchDir dir;
  Lines lines;
  SubprocessOptions o = Options("echo \"$FTB_TEST_VALUE\"; pwd", &lines);
  o.env = {{"FTB_TEST_VALUE", "a b 'c'"}};
  o.working_dir = dir.path();
  auto r = RunSubprocess(o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->ok());
  ASSERT_EQ(lines.out.size(), 2u);
  EXPECT_EQ(lines.out[0], "a b 'c'");
  EXPECT_EQ(std::filesystem::canonical(lines.out[1]), std::filesystem::canonical(dir.path()));
}

TEST(SubprocessTest, TimeoutKillsTheWholeProcessGroup) {
  datasets::testing::ScratchDir dir;
  Lines lines;
  // The grandchild ignores nothing but would outlive a kill of the shell alone.
  const std::string marker = dir.path() + "/grandchild-survived";
  SubprocessOptions o =
      Options("(sleep 3; touch '" + marker + "') & echo started; sleep 30", &lines);
  o.timeout = absl::Milliseconds(300);
  o.kill_grace = absl::Milliseconds(200);
  auto r = RunSubprocess(o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_FALSE(r->ok());
  EXPECT_EQ(r->signal, SIGTERM);
  EXPECT_LT(r->seconds, 5);
  EXPECT_THAT(lines.out, ElementsAre("started"));
  absl::SleepFor(absl::Seconds(3.5));
  EXPECT_FALSE(std::filesystem::exists(marker)) << "the grandchild outlived the timeout";
}

TEST(SubprocessTest, SigkillAfterGraceWhenTermIsIgnored) {
  Lines lines;
  SubprocessOptions o = Options("trap '' TERM; echo ready; sleep 30", &lines);
  o.timeout = absl::Milliseconds(200);
  o.kill_grace = absl::Milliseconds(300);
  auto r = RunSubprocess(o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->signal, SIGKILL);
  EXPECT_LT(r->seconds, 5);
}

TEST(SubprocessTest, CancellationStopsTheChild) {
  Lines lines;
  std::atomic<int> polls{0};
  SubprocessOptions o = Options("sleep 30", &lines);
  o.cancelled = [&polls] { return ++polls > 3; };
  auto r = RunSubprocess(o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->cancelled);
  EXPECT_LT(r->seconds, 5);
}

TEST(SubprocessTest, ShellQuoteSurvivesTheShell) {
  for (std::string value : {"plain", "with space", "it's", "$HOME `id` \"q\" \\ ;|&"}) {
    Lines lines;
    auto r = RunSubprocess(Options("printf '%s\\n' " + ShellQuote(value), &lines));
    ASSERT_TRUE(r.ok());
    EXPECT_THAT(lines.out, ElementsAre(value));
  }
}

}  // namespace
}  // namespace ftb::workers
