#include "storage/tables.h"

#include <string>
#include <vector>

#include "ftb/v1/coordinator.pb.h"
#include "ftb/v1/state.pb.h"
#include "gtest/gtest.h"
#include "storage/memory_state_store.h"

namespace ftb::storage::tables {
namespace {

TEST(TablesTest, TaskRowsScanInIndexOrder) {
  MemoryStateStore store;
  WriteBatch batch;
  for (uint32_t task : {256u, 1u, 65536u, 0u, 255u}) {
    v1::TaskRecord r;
    r.set_attempt(task);
    PutProto(batch, TaskRecord("cab", task), r);
  }
  ASSERT_TRUE(store.Write(batch).ok());
  std::vector<uint32_t> seen;
  ASSERT_TRUE(store
                  .Scan(TaskRecordPrefix("cab"), {},
                        [&](std::string_view key, std::string_view value) {
                          uint32_t task = 0;
                          EXPECT_TRUE(TaskIndexFromKey(key, &task));
                          auto r = ParseProto<v1::TaskRecord>(key, value);
                          EXPECT_TRUE(r.ok()) << r.status();
                          EXPECT_EQ(r->attempt(), task);
                          seen.push_back(task);
                          return true;
                        })
                  .ok());
  EXPECT_EQ(seen, (std::vector<uint32_t>{0, 1, 255, 256, 65536}));
}

TEST(TablesTest, ACampaignsPrefixNeverCoversAnotherCampaign) {
  MemoryStateStore store;
  WriteBatch batch;
  batch.Put(Result("ab", 1), "x");
  batch.Put(Result("abc", 1), "y");
  batch.Put(Event("ab", 7), "z");
  ASSERT_TRUE(store.Write(batch).ok());
  EXPECT_EQ(store.ScanAll(ResultPrefix("ab"))->size(), 1u);
  EXPECT_EQ(store.ScanAll(ResultPrefix("abc"))->size(), 1u);
  EXPECT_EQ(store.ScanAll(EventPrefix("ab"))->size(), 1u);
  // Each table has its own prefix.
  EXPECT_NE(TaskRecordPrefix("c"), ResultPrefix("c"));
  EXPECT_NE(JudgeTaskPrefix("c"), IntentPrefix("c"));
  EXPECT_EQ(Campaign("c1"), "c/c1");
}

TEST(TablesTest, GetProtoReportsMissingAndUnreadableRows) {
  MemoryStateStore store;
  v1::Campaign c;
  c.set_id("c1");
  WriteBatch batch;
  PutProto(batch, Campaign("c1"), c);
  batch.Put(Campaign("bad"), std::string("\xff\xff\xff", 3));
  ASSERT_TRUE(store.Write(batch).ok());
  auto got = GetProto<v1::Campaign>(store, Campaign("c1"));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->id(), "c1");
  EXPECT_EQ(GetProto<v1::Campaign>(store, Campaign("none")).status().code(),
            absl::StatusCode::kNotFound);
  absl::Status bad = GetProto<v1::Campaign>(store, Campaign("bad")).status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(std::string(bad.message()), "unreadable ftb.v1.Campaign at key \"c/bad\"");
  uint32_t task = 0;
  EXPECT_FALSE(TaskIndexFromKey("abc", &task));
}

TEST(TablesTest, ScanTaskRowsDecodesAndStopsAtTheFirstError) {
  MemoryStateStore store;
  WriteBatch batch;
  for (uint32_t task : {3u, 1u, 2u}) {
    v1::TaskRecord r;
    r.set_attempt(task * 10);
    PutProto(batch, TaskRecord("c", task), r);
  }
  ASSERT_TRUE(store.Write(batch).ok());
  std::vector<std::pair<uint32_t, uint32_t>> seen;
  ASSERT_TRUE(ScanTaskRows<v1::TaskRecord>(store, TaskRecordPrefix("c"),
                                           [&](uint32_t task, const v1::TaskRecord& r) {
                                             seen.emplace_back(task, r.attempt());
                                             return absl::OkStatus();
                                           })
                  .ok());
  EXPECT_EQ(seen, (std::vector<std::pair<uint32_t, uint32_t>>{{1, 10}, {2, 20}, {3, 30}}));
  // The visitor's error ends the scan.
  int visits = 0;
  absl::Status stopped = ScanTaskRows<v1::TaskRecord>(
      store, TaskRecordPrefix("c"), [&](uint32_t, const v1::TaskRecord&) {
        ++visits;
        return absl::DataLossError("no");
      });
  EXPECT_EQ(stopped.message(), "no");
  EXPECT_EQ(visits, 1);
  // A key that is not prefix + 4-byte index, and a value that does not parse.
  ASSERT_TRUE(store.Put(TaskRecordPrefix("c") + "xy", "").ok());
  EXPECT_EQ(ScanTaskRows<v1::TaskRecord>(store, TaskRecordPrefix("c"),
                                         [](uint32_t, const v1::TaskRecord&) {
                                           return absl::OkStatus();
                                         })
                .code(),
            absl::StatusCode::kDataLoss);
  ASSERT_TRUE(store.Put(Result("d", 0), std::string("\xff\xff\xff", 3)).ok());
  EXPECT_EQ(ScanTaskRows<v1::TaskCompletion>(store, ResultPrefix("d"),
                                             [](uint32_t, const v1::TaskCompletion&) {
                                               return absl::OkStatus();
                                             })
                .code(),
            absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace ftb::storage::tables
