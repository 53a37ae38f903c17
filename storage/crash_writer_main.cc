// Child process of RocksDbStateStoreTest.CrashKeepsEveryAcknowledgedWrite.
//
//   storage_crash_writer DIR TAG THREADS
//
// Opens the store in DIR and, from THREADS threads, writes until killed:
// thread t's j-th write is either a Put of key TAG/t/j (value "v:" + key) or,
// for every third j, a batch of TAG/t/j/a, /b, /c (same value scheme). After
// each write is acknowledged (Write returned OK) it prints one line to
// stdout with a single write(2) (atomic on a pipe):
//   "P <key>\n" for a put, "B <key prefix>\n" for a batch.
// Exits 2 on any error (message on stderr), 0 after kMaxWritesPerThread.

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "storage/rocksdb_state_store.h"
#include "storage/state_store.h"

namespace {

constexpr int kMaxWritesPerThread = 100000;

void Die(const std::string& message) {
  std::fprintf(stderr, "storage_crash_writer: %s\n", message.c_str());
  std::_Exit(2);
}

void Report(const std::string& line) {
  const ssize_t n = ::write(STDOUT_FILENO, line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size())) Die("short write to stdout");
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0;
  if (argc != 4 || !absl::SimpleAtoi(argv[3], &threads) || threads < 1) {
    Die("usage: storage_crash_writer DIR TAG THREADS");
  }
  const std::string dir = argv[1];
  const std::string tag = argv[2];
  auto store = ftb::storage::RocksDbStateStore::Open(dir);
  if (!store.ok()) Die(store.status().ToString());

  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int j = 0; j < kMaxWritesPerThread; ++j) {
        const std::string key = absl::StrCat(tag, "/", t, "/", j);
        ftb::storage::WriteBatch batch;
        if (j % 3 == 0) {
          for (const char* part : {"/a", "/b", "/c"}) {
            const std::string k = key + part;
            batch.Put(k, "v:" + k);
          }
        } else {
          batch.Put(key, "v:" + key);
        }
        const absl::Status status = (*store)->Write(batch);
        if (!status.ok()) Die(status.ToString());
        Report(absl::StrCat(j % 3 == 0 ? "B " : "P ", key, "\n"));
      }
    });
  }
  for (std::thread& w : workers) w.join();
  return 0;
}
