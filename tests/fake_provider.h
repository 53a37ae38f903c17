// Helpers for tests of provider backends against the fake provider servers
// of tests/fakes/ (Python standard library) run as child processes: the
// server (its port from its first line of output; /_fake/* control calls),
// an in-memory stand-in for the coordinator's intent table, and a log sink.
// Header-only; thread-safe where noted.
#ifndef FTB_TESTS_FAKE_PROVIDER_H_
#define FTB_TESTS_FAKE_PROVIDER_H_

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "providers/http.h"
#include "providers/rest_client.h"
#include "tests/test_process.h"
#include "workers/backend.h"

namespace ftb::testing {

// $FTB_SOURCE_DIR (set by ctest), else ".".
inline std::string SourceDir() {
  const char* dir = std::getenv("FTB_SOURCE_DIR");
  return dir != nullptr ? dir : ".";
}

// tests/fakes/<script> with `args`, listening on 127.0.0.1:<port>.
class FakeProviderServer {
 public:
  FakeProviderServer(const std::string& script, std::vector<std::string> args) {
    dir_ = MakeTempDir("fake-provider");
    std::vector<std::string> argv = {"/usr/bin/python3", SourceDir() + "/tests/fakes/" + script};
    argv.insert(argv.end(), args.begin(), args.end());
    process_ = std::make_unique<ChildProcess>(argv, dir_ + "/fake.log");
    process_->Start();
    for (int i = 0; i < 200 && port_ == 0; ++i) {
      std::ifstream in(dir_ + "/fake.log");
      std::string line;
      if (std::getline(in, line) && !line.empty() && line.back() != '\r') {
        port_ = std::atoi(line.c_str());
      }
      if (port_ == 0) usleep(50'000);
    }
    transport_ = providers::NewCurlTransport();
  }
  ~FakeProviderServer() {
    process_.reset();
    std::filesystem::remove_all(dir_);
  }

  int port() const { return port_; }
  std::string origin() const { return absl::StrCat("http://127.0.0.1:", port_); }

  providers::Json Control(const std::string& method, const std::string& path,
                          const providers::Json& body = {}) {
    providers::HttpRequest r;
    r.method = method;
    r.url = origin() + path;
    if (method == "POST") {
      r.body = body.is_null() ? "{}" : body.dump();
      r.headers.emplace_back("Content-Type", "application/json");
    }
    absl::StatusOr<providers::HttpResponse> reply = transport_->Send(r);
    EXPECT_TRUE(reply.ok()) << reply.status();
    if (!reply.ok()) return providers::Json();
    return providers::Json::parse(reply->body);
  }
  providers::Json Stats() { return Control("GET", "/_fake/stats"); }
  void Fault(const providers::Json& fault) { Control("POST", "/_fake/faults", fault); }
  std::string log() const { return ReadFile(dir_ + "/fake.log"); }

 private:
  std::string dir_;
  std::unique_ptr<ChildProcess> process_;
  std::unique_ptr<providers::HttpTransport> transport_;
  int port_ = 0;
};

// Stands in for the coordinator's intent table: keeps what attempts record.
// Thread-safe.
class IntentStore {
 public:
  workers::IntentSink Sink(uint32_t attempt) {
    return [this, attempt](const v1::TaskIntent& intent)
               -> absl::StatusOr<v1::RecordTaskIntentResponse> {
      absl::MutexLock lock(&mu_);
      v1::TaskIntent* stored = intents_.Add();
      *stored = intent;
      stored->set_attempt(attempt);
      v1::RecordTaskIntentResponse r;
      r.set_outcome(v1::COMPLETION_OUTCOME_ACCEPTED);
      r.set_campaign_cancelled(campaign_cancelled_);
      return r;
    };
  }
  google::protobuf::RepeatedPtrField<v1::TaskIntent> intents() {
    absl::MutexLock lock(&mu_);
    return intents_;
  }
  void set_campaign_cancelled(bool v) {
    absl::MutexLock lock(&mu_);
    campaign_cancelled_ = v;
  }

 private:
  absl::Mutex mu_;
  google::protobuf::RepeatedPtrField<v1::TaskIntent> intents_ ABSL_GUARDED_BY(mu_);
  bool campaign_cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

// Collects a task's log lines. Thread-safe.
struct Logs {
  absl::Mutex mu;
  std::string text;
  workers::LogSink sink() {
    return [this](std::string_view line) {
      absl::MutexLock lock(&mu);
      absl::StrAppend(&text, std::string(line), "\n");
    };
  }
};

// Runs one attempt of `task` on `backend` with a fresh TaskContext (intents
// recorded in `intents` and lines in `logs`, each if not null), running
// `during` on a side thread meanwhile (e.g. to cancel the context).
inline absl::StatusOr<v1::TaskResult> RunProviderTask(
    workers::TuningBackend& backend, const v1::TaskAssignment& task, IntentStore* intents,
    Logs* logs = nullptr, std::function<void(workers::TaskContext&)> during = {}) {
  workers::TaskContext ctx(task.task_id(), task.attempt(),
                           logs != nullptr ? logs->sink() : workers::LogSink());
  if (intents != nullptr) ctx.SetIntentSink(intents->Sink(task.attempt()));
  std::thread side;
  if (during) side = std::thread([&] { during(ctx); });
  absl::StatusOr<v1::TaskResult> r = backend.Run(task, ctx);
  if (side.joinable()) side.join();
  return r;
}

}  // namespace ftb::testing

#endif  // FTB_TESTS_FAKE_PROVIDER_H_
