#include <deque>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/cord.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "providers/http.h"
#include "providers/openai_client.h"
#include "providers/provider_stats.h"
#include "providers/rate_limit.h"
#include "providers/retry.h"
#include "providers/vertex_client.h"

namespace ftb::providers {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

HttpResponse Reply(int status, std::string body = "{}",
                   std::map<std::string, std::string> headers = {}) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

std::string ErrorBody(const std::string& code, const std::string& type = "invalid_request_error",
                      const std::string& message = "boom") {
  return Json{{"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", code}}}}
      .dump();
}

// --- header parsing -------------------------------------------------------------

TEST(ParseResetDuration, OpenAiFormats) {
  EXPECT_EQ(ParseResetDuration("1s"), absl::Seconds(1));
  EXPECT_EQ(ParseResetDuration("6m0s"), absl::Minutes(6));
  EXPECT_EQ(ParseResetDuration("20ms"), absl::Milliseconds(20));
  EXPECT_EQ(ParseResetDuration("1m30.5s"), absl::Milliseconds(90500));
  EXPECT_EQ(ParseResetDuration("2h0m0s"), absl::Hours(2));
  EXPECT_EQ(ParseResetDuration("0.5"), absl::Milliseconds(500));
  EXPECT_EQ(ParseResetDuration("57.912s"), absl::Milliseconds(57912));
  EXPECT_EQ(ParseResetDuration(""), std::nullopt);
  EXPECT_EQ(ParseResetDuration("soon"), std::nullopt);
  EXPECT_EQ(ParseResetDuration("5x"), std::nullopt);
  EXPECT_EQ(ParseResetDuration("-1"), std::nullopt);
}

TEST(ParseRetryAfter, MillisecondsWinOverSeconds) {
  EXPECT_EQ(ParseRetryAfter(Reply(429, "", {{"retry-after", "3"}})), absl::Seconds(3));
  EXPECT_EQ(ParseRetryAfter(Reply(429, "", {{"retry-after", "1.5"}})), absl::Milliseconds(1500));
  EXPECT_EQ(ParseRetryAfter(Reply(429, "", {{"retry-after", "3"}, {"retry-after-ms", "250"}})),
            absl::Milliseconds(250));
  EXPECT_EQ(ParseRetryAfter(Reply(429)), std::nullopt);
  EXPECT_EQ(ParseRetryAfter(Reply(429, "", {{"retry-after", "soon"}})), std::nullopt);
  EXPECT_EQ(ParseRetryAfter(Reply(429, "", {{"retry-after", "-3"}})), std::nullopt);
}

// RFC 9110 section 10.2.3: Retry-After = HTTP-date / delay-seconds; the
// three date forms of section 5.6.7, as openai-python reads them
// (email.utils.parsedate_tz, the wait being the date minus now).
TEST(ParseRetryAfter, HttpDateIsTheDateMinusNow) {
  const absl::Time now = absl::FromUnixSeconds(1445412470);  // 2015-10-21 07:27:50 UTC
  EXPECT_EQ(ParseRetryAfter(Reply(429, "", {{"retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"}}),
                            now),
            absl::Seconds(10));
  EXPECT_EQ(ParseRetryAfter(Reply(503, "", {{"retry-after", "Wednesday, 21-Oct-15 07:28:05 GMT"}}),
                            now),
            absl::Seconds(15));
  EXPECT_EQ(ParseRetryAfter(Reply(503, "", {{"retry-after", "Wed Oct 21 07:29:50 2015"}}), now),
            absl::Minutes(2));
  // A date already past: no wait.
  EXPECT_EQ(ParseRetryAfter(Reply(429, "", {{"retry-after", "Tue, 20 Oct 2015 07:28:00 GMT"}}),
                            now),
            absl::ZeroDuration());
  // retry-after-ms still wins.
  EXPECT_EQ(ParseRetryAfter(Reply(429, "", {{"retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"},
                                            {"retry-after-ms", "40"}}),
                            now),
            absl::Milliseconds(40));
}

// openai-python `_should_retry`: "If the server explicitly says whether or
// not to retry, obey."
TEST(RetryPolicy, ObeysXShouldRetry) {
  RetryPolicy policy(RetryOptions{.max_attempts = 3});
  Rng rng(1);
  // false: a 503 or 429 is final.
  for (int http : {429, 500, 503}) {
    RetryDecision d = policy.Decide(1, "GET /x", Reply(http, ErrorBody(""),
                                                       {{"x-should-retry", "false"}}), rng);
    EXPECT_FALSE(d.retry) << http;
    EXPECT_EQ(d.error.code(), RetryPolicy::CodeForHttpStatus(http)) << http;
    EXPECT_THAT(d.error.message(), HasSubstr("x-should-retry: false")) << http;
  }
  // false on a create: final and not "maybe created" (no blind re-create).
  RetryDecision d = policy.Decide(1, "POST /jobs", Reply(500, ErrorBody(""),
                                                         {{"x-should-retry", "false"}}),
                                  rng, /*idempotent=*/false);
  EXPECT_FALSE(d.retry);
  EXPECT_FALSE(IsMaybeCreated(d.error));
  // true: even a 400 is retried, and so is a create's 500 (the server says
  // it did not carry it out).
  d = policy.Decide(1, "GET /x", Reply(400, ErrorBody(""), {{"x-should-retry", "true"}}), rng);
  EXPECT_TRUE(d.retry);
  d = policy.Decide(1, "POST /jobs", Reply(500, ErrorBody(""), {{"x-should-retry", "true"}}), rng,
                    /*idempotent=*/false);
  EXPECT_TRUE(d.retry);
  // Without the header a create's 500 is final and "maybe created".
  d = policy.Decide(1, "POST /jobs", Reply(500, ErrorBody("")), rng, /*idempotent=*/false);
  EXPECT_FALSE(d.retry);
  EXPECT_TRUE(IsMaybeCreated(d.error));
  // Still bounded by max_attempts.
  d = policy.Decide(3, "GET /x", Reply(400, ErrorBody(""), {{"x-should-retry", "true"}}), rng);
  EXPECT_FALSE(d.retry);
  EXPECT_THAT(d.error.message(), HasSubstr("after 3 attempts"));
}

// openai-python `_calculate_retry_timeout` honours a retry-after only when
// 0 < wait <= 60 s. ftb waits up to max_retry_after (60 s by default) and,
// past it, fails the attempt at once with a retryable error naming the wait,
// instead of sleeping 300 s inside one call.
TEST(RetryPolicy, CapsASingleWaitAndFailsTheAttemptPastIt) {
  RetryPolicy policy;
  EXPECT_EQ(policy.options().max_retry_after, absl::Seconds(60));
  Rng rng(1);
  RetryDecision d = policy.Decide(1, "POST /x", Reply(429, ErrorBody("rate_limit_exceeded"),
                                                      {{"retry-after", "60"}}),
                                  rng);
  EXPECT_TRUE(d.retry);
  EXPECT_EQ(d.delay, absl::Seconds(60));
  d = policy.Decide(1, "POST /x", Reply(429, ErrorBody("rate_limit_exceeded"),
                                        {{"retry-after", "300"}}),
                    rng);
  EXPECT_FALSE(d.retry);
  EXPECT_EQ(d.error.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(IsInsufficientQuota(d.error));  // retried later, not a pause
  EXPECT_THAT(d.error.message(), HasSubstr("asks to wait 5m"));
  EXPECT_THAT(d.error.message(), HasSubstr("retried later"));
  const std::string in_two_hours =
      absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", absl::Now() + absl::Hours(2),
                       absl::UTCTimeZone());
  d = policy.Decide(1, "GET /x", Reply(503, ErrorBody(""), {{"retry-after", in_two_hours}}), rng);
  EXPECT_FALSE(d.retry);
  EXPECT_EQ(d.error.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(d.error.message(), HasSubstr("asks to wait 1h59m"));
  const std::string in_five_seconds =
      absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", absl::Now() + absl::Seconds(6),
                       absl::UTCTimeZone());
  d = policy.Decide(1, "GET /x", Reply(503, ErrorBody(""), {{"retry-after", in_five_seconds}}),
                    rng);
  EXPECT_TRUE(d.retry);
  EXPECT_GT(d.delay, absl::Seconds(3));
  EXPECT_LE(d.delay, absl::Seconds(6));
  // A custom cap.
  RetryPolicy tight(RetryOptions{.max_retry_after = absl::Seconds(5)});
  d = tight.Decide(1, "GET /x", Reply(503, ErrorBody(""), {{"retry-after-ms", "5001"}}), rng);
  EXPECT_FALSE(d.retry);
}

TEST(ParseProviderError, ReadsOpenAiErrorBody) {
  ProviderError e = ParseProviderError(ErrorBody("insufficient_quota", "insufficient_quota", "x"));
  EXPECT_EQ(e.code, "insufficient_quota");
  EXPECT_EQ(e.type, "insufficient_quota");
  EXPECT_EQ(e.message, "x");
  EXPECT_EQ(e.param, "");
  EXPECT_EQ(ParseProviderError("not json").code, "");
}

// --- retry policy -------------------------------------------------------------------

TEST(RetryPolicy, RetriesTransientStatusesOnly) {
  for (int s : {408, 409, 429, 500, 502, 503, 504}) {
    EXPECT_TRUE(RetryPolicy::IsRetryableHttpStatus(s)) << s;
  }
  for (int s : {400, 401, 403, 404, 422}) EXPECT_FALSE(RetryPolicy::IsRetryableHttpStatus(s)) << s;
}

TEST(RetryPolicy, DecideHonoursRetryAfterAndMapsFinalErrors) {
  RetryPolicy policy(RetryOptions{.max_attempts = 3});
  Rng rng(1);
  RetryDecision d = policy.Decide(1, "POST /x", Reply(429, ErrorBody("rate_limit_exceeded"),
                                                      {{"retry-after-ms", "1234"}}),
                                  rng);
  EXPECT_TRUE(d.retry);
  EXPECT_EQ(d.delay, absl::Milliseconds(1234));

  d = policy.Decide(1, "POST /x", Reply(503, ErrorBody(""), {{"retry-after", "2"}}), rng);
  EXPECT_TRUE(d.retry);
  EXPECT_EQ(d.delay, absl::Seconds(2));

  d = policy.Decide(1, "POST /x", absl::UnavailableError("connection reset"), rng);
  EXPECT_TRUE(d.retry);
  EXPECT_GE(d.delay, absl::Milliseconds(250));
  EXPECT_LE(d.delay, absl::Milliseconds(500));

  d = policy.Decide(3, "POST /x", Reply(500, ErrorBody("")), rng);
  EXPECT_FALSE(d.retry);
  EXPECT_EQ(d.error.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(d.error.message(), HasSubstr("after 3 attempts"));

  for (auto [http, code] : std::vector<std::pair<int, absl::StatusCode>>{
           {400, absl::StatusCode::kInvalidArgument},
           {401, absl::StatusCode::kUnauthenticated},
           {403, absl::StatusCode::kPermissionDenied},
           {404, absl::StatusCode::kNotFound}}) {
    d = policy.Decide(1, "GET /y", Reply(http, ErrorBody("c", "t", "nope")), rng);
    EXPECT_FALSE(d.retry) << http;
    EXPECT_EQ(d.error.code(), code) << http;
    EXPECT_THAT(d.error.message(), HasSubstr("GET /y: HTTP")) << http;
    EXPECT_THAT(d.error.message(), HasSubstr("nope")) << http;
  }
}

TEST(RetryPolicy, InsufficientQuotaIsDistinctAndNotRetried) {
  RetryPolicy policy;
  Rng rng(1);
  RetryDecision d = policy.Decide(
      1, "POST /fine_tuning/jobs",
      Reply(429, ErrorBody("insufficient_quota", "insufficient_quota"), {{"retry-after", "1"}}),
      rng);
  EXPECT_FALSE(d.retry);
  EXPECT_EQ(d.error.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(IsInsufficientQuota(d.error));
  EXPECT_THAT(d.error.message(), HasSubstr("insufficient_quota"));
  // An ordinary 429 is retried and not marked.
  d = policy.Decide(1, "POST /x", Reply(429, ErrorBody("rate_limit_exceeded")), rng);
  EXPECT_TRUE(d.retry);
  EXPECT_FALSE(IsInsufficientQuota(absl::ResourceExhaustedError("x")));
}

TEST(RetryPolicy, BackoffGrowsWithJitterAndCap) {
  RetryPolicy policy(RetryOptions{.initial_backoff = absl::Milliseconds(100),
                                  .max_backoff = absl::Milliseconds(800)});
  Rng rng(7);
  for (int attempt = 1; attempt <= 6; ++attempt) {
    absl::Duration cap = std::min(absl::Milliseconds(100) * (1 << (attempt - 1)),
                                  absl::Milliseconds(800));
    for (int i = 0; i < 20; ++i) {
      absl::Duration d = policy.Backoff(attempt, rng);
      EXPECT_GE(d, cap / 2);
      EXPECT_LE(d, cap);
    }
  }
}

// --- token buckets ------------------------------------------------------------------

TEST(TokenBucket, TakesRefillsAndWaits) {
  TokenBucket b(/*capacity=*/3, /*per_second=*/1, /*now_ms=*/0);
  EXPECT_EQ(b.TryTake(1, 0), absl::ZeroDuration());
  EXPECT_EQ(b.TryTake(2, 0), absl::ZeroDuration());
  EXPECT_EQ(b.TryTake(1, 0), absl::Seconds(1));
  EXPECT_EQ(b.TryTake(1, 500), absl::Milliseconds(500));
  EXPECT_EQ(b.TryTake(1, 1000), absl::ZeroDuration());
  // Above the capacity: waits for a full bucket, then goes through.
  EXPECT_EQ(b.TryTake(10, 4000), absl::ZeroDuration());
}

TEST(TokenBucket, UnlimitedUntilObserved) {
  TokenBucket b(0, 0, 0);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(b.TryTake(1e6, 0), absl::ZeroDuration());
  b.Observe(/*limit=*/60, /*remaining=*/0, /*reset=*/absl::Seconds(6), /*now_ms=*/0);
  // 60 missing over 6 s: 10 per second.
  EXPECT_EQ(b.TryTake(1, 0), absl::Milliseconds(100));
  EXPECT_EQ(b.TryTake(1, 100), absl::ZeroDuration());
}

TEST(RateLimiter, CoordinatorShareIsACeilingTheHeadersCannotRaise) {
  FakeClock clock(0);
  RateLimiter limiter(0, 0, &clock);  // no limits of its own
  limiter.SetLimits(60, 0);           // this worker's share: 60 requests/min
  EXPECT_DOUBLE_EQ(limiter.available_requests(), 60);
  // The provider allows 100/min with 90 left: the share still caps it.
  limiter.Observe(Reply(200, "{}",
                        {{"x-ratelimit-limit-requests", "100"},
                         {"x-ratelimit-remaining-requests", "90"},
                         {"x-ratelimit-reset-requests", "6s"}}));
  EXPECT_DOUBLE_EQ(limiter.available_requests(), 60);
  // ... but a tighter provider wins.
  limiter.Observe(Reply(200, "{}",
                        {{"x-ratelimit-limit-requests", "100"},
                         {"x-ratelimit-remaining-requests", "5"},
                         {"x-ratelimit-reset-requests", "60s"}}));
  EXPECT_DOUBLE_EQ(limiter.available_requests(), 5);
  // Setting the same share again changes nothing; a new share applies.
  limiter.SetLimits(60, 0);
  EXPECT_DOUBLE_EQ(limiter.available_requests(), 5);
  limiter.SetLimits(3, 0);
  EXPECT_DOUBLE_EQ(limiter.available_requests(), 3);
  // Refill at the share's rate: 3/min = one per 20 s.
  int waited_ms = 0;
  auto sleep = [&](absl::Duration d) {
    waited_ms += static_cast<int>(absl::ToInt64Milliseconds(d));
    clock.AdvanceMs(absl::ToInt64Milliseconds(d));
    return true;
  };
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(limiter.Acquire(1, sleep));
  EXPECT_EQ(waited_ms, 20000);
}

TEST(RateLimiter, FedFromHeaders) {
  FakeClock clock(0);
  RateLimiter limiter(0, 0, &clock);
  limiter.Observe(Reply(200, "{}",
                        {{"x-ratelimit-limit-requests", "100"},
                         {"x-ratelimit-remaining-requests", "2"},
                         {"x-ratelimit-reset-requests", "49s"},
                         {"x-ratelimit-limit-tokens", "1000"},
                         {"x-ratelimit-remaining-tokens", "500"},
                         {"x-ratelimit-reset-tokens", "1s"}}));
  EXPECT_DOUBLE_EQ(limiter.available_requests(), 2);
  EXPECT_DOUBLE_EQ(limiter.available_tokens(), 500);
  std::vector<absl::Duration> waits;
  auto sleep = [&](absl::Duration d) {
    waits.push_back(d);
    clock.AdvanceMs(absl::ToInt64Milliseconds(d));
    return true;
  };
  EXPECT_TRUE(limiter.Acquire(100, sleep));
  EXPECT_TRUE(limiter.Acquire(100, sleep));
  EXPECT_TRUE(waits.empty());
  // Requests bucket empty: 98 missing over 49 s refill at 2/s, so ~500 ms.
  EXPECT_TRUE(limiter.Acquire(100, sleep));
  ASSERT_EQ(waits.size(), 1u);
  EXPECT_EQ(waits[0], absl::Milliseconds(500));
  // A cancelled sleep gives up.
  limiter.Observe(Reply(200, "{}", {{"x-ratelimit-limit-requests", "100"},
                                    {"x-ratelimit-remaining-requests", "0"},
                                    {"x-ratelimit-reset-requests", "1m"}}));
  EXPECT_FALSE(limiter.Acquire(1, [](absl::Duration) { return false; }));
}

// --- the client over a scripted transport ------------------------------------------

class ScriptedTransport : public HttpTransport {
 public:
  void Push(absl::StatusOr<HttpResponse> r) {
    absl::MutexLock lock(&mu_);
    script_.push_back(std::move(r));
  }
  absl::StatusOr<HttpResponse> Send(const HttpRequest& request) override {
    absl::MutexLock lock(&mu_);
    requests.push_back(request);
    if (script_.empty()) return Reply(200, "{\"ok\":true}");
    auto r = std::move(script_.front());
    script_.pop_front();
    return r;
  }
  std::vector<HttpRequest> requests;

 private:
  absl::Mutex mu_;
  std::deque<absl::StatusOr<HttpResponse>> script_;
};

struct ClientFixture {
  explicit ClientFixture(std::string key = "sk-secret-0123456789") {
    auto t = std::make_unique<ScriptedTransport>();
    transport = t.get();
    OpenAiClientOptions o;
    o.base_url = "http://fake/v1";
    o.api_key = std::move(key);
    o.provider = "test-provider";
    o.retry.max_attempts = 4;
    client = std::make_unique<OpenAiClient>(o, std::move(t));
  }
  Sleeper sleeper() {
    return [this](absl::Duration d) {
      slept.push_back(d);
      return true;
    };
  }
  ScriptedTransport* transport;
  std::unique_ptr<OpenAiClient> client;
  std::vector<absl::Duration> slept;
};

TEST(OpenAiClient, RetriesThenSucceedsAndCounts) {
  ClientFixture f;
  auto before = ProviderStats::Global().Get();
  f.transport->Push(Reply(429, ErrorBody("rate_limit_exceeded"), {{"retry-after-ms", "30"}}));
  f.transport->Push(absl::UnavailableError("connection reset by peer"));
  f.transport->Push(Reply(500, ErrorBody(""), {{"retry-after", "0.02"}}));
  f.transport->Push(Reply(200, R"({"id":"ftjob-1","status":"queued"})"));
  absl::StatusOr<Json> job = f.client->GetJob("ftjob-1", f.sleeper());
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ((*job)["id"], "ftjob-1");
  ASSERT_EQ(f.transport->requests.size(), 4u);
  EXPECT_EQ(f.transport->requests[0].url, "http://fake/v1/fine_tuning/jobs/ftjob-1");
  ASSERT_EQ(f.slept.size(), 3u);
  EXPECT_EQ(f.slept[0], absl::Milliseconds(30));
  EXPECT_EQ(f.slept[2], absl::Milliseconds(20));
  auto after = ProviderStats::Global().Get();
  EXPECT_EQ(after.retries["test-provider"] - before.retries["test-provider"], 3u);
  auto delta = [&](const char* status) {
    std::pair<std::string, std::string> key("test-provider", status);
    return after.requests[key] - before.requests[key];
  };
  EXPECT_EQ(delta("429"), 1u);
  EXPECT_EQ(delta("error"), 1u);
  EXPECT_EQ(delta("500"), 1u);
  EXPECT_EQ(delta("200"), 1u);
}

// Issue 13 section 2: a create is never repeated after a failure that may
// have happened after the provider committed it; it is marked
// IsMaybeCreated() for the backend to look the job up by its tag. 429 and a
// connection never made are still retried (nothing was created).
TEST(OpenAiClient, CreatesAreNotRepeatedAfterAmbiguousFailures) {
  absl::Status reset = absl::UnavailableError("Recv failure: Connection reset by peer");
  absl::Status timeout = absl::DeadlineExceededError("timed out");
  for (const absl::StatusOr<HttpResponse>& failure :
       {absl::StatusOr<HttpResponse>(reset), absl::StatusOr<HttpResponse>(timeout),
        absl::StatusOr<HttpResponse>(Reply(500, ErrorBody(""))),
        absl::StatusOr<HttpResponse>(Reply(503, ErrorBody(""))),
        absl::StatusOr<HttpResponse>(Reply(408, ErrorBody("")))}) {
    ClientFixture f;
    f.transport->Push(failure);
    f.transport->Push(Reply(200, R"({"id":"ftjob-2"})"));
    absl::StatusOr<Json> job = f.client->CreateJob(Json{{"model", "m"}}, f.sleeper());
    ASSERT_FALSE(job.ok());
    EXPECT_TRUE(IsMaybeCreated(job.status())) << job.status();
    EXPECT_THAT(job.status().message(), HasSubstr("not repeated"));
    EXPECT_EQ(f.transport->requests.size(), 1u) << job.status();
    // The same failure on a GET is retried.
    absl::StatusOr<Json> got = f.client->GetJob("ftjob-2", f.sleeper());
    EXPECT_TRUE(got.ok()) << got.status();
  }
  ClientFixture f;
  absl::Status refused = absl::UnavailableError("Couldn't connect to server");
  refused.SetPayload(kNotSentPayload, absl::Cord("not sent"));
  f.transport->Push(refused);
  f.transport->Push(Reply(429, ErrorBody("rate_limit_exceeded"), {{"retry-after-ms", "5"}}));
  f.transport->Push(Reply(200, R"({"id":"file-1"})"));
  absl::StatusOr<Json> file = f.client->UploadFile("a.jsonl", "{}\n", f.sleeper());
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(f.transport->requests.size(), 3u);
}

TEST(OpenAiClient, NeverRetriesClientErrors) {
  for (int status : {400, 401, 403, 404}) {
    ClientFixture f;
    f.transport->Push(Reply(status, ErrorBody("c")));
    absl::StatusOr<Json> r = f.client->GetJob("x", f.sleeper());
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(f.transport->requests.size(), 1u) << status;
    EXPECT_TRUE(f.slept.empty()) << status;
  }
}

TEST(OpenAiClient, InsufficientQuotaSurfacesAtOnce) {
  ClientFixture f;
  f.transport->Push(Reply(429, ErrorBody("insufficient_quota", "insufficient_quota")));
  absl::StatusOr<Json> r = f.client->CreateJob(Json{{"model", "m"}}, f.sleeper());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(IsInsufficientQuota(r.status()));
  EXPECT_EQ(f.transport->requests.size(), 1u);
}

TEST(OpenAiClient, KeyOnlyInAuthorizationAndRedactedFromErrors) {
  const std::string key = "sk-proj-SECRETSECRETSECRET42";
  ClientFixture f(key);
  // A provider that echoes the key (as a misbehaving proxy might).
  f.transport->Push(Reply(401, ErrorBody("invalid_api_key", "invalid_request_error",
                                         "Incorrect API key provided: " + key + ".")));
  absl::StatusOr<Json> r = f.client->GetFile("file-1", f.sleeper());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(r.status().message()), Not(HasSubstr(key)));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("[REDACTED]"));
  ASSERT_EQ(f.transport->requests.size(), 1u);
  const HttpRequest& sent = f.transport->requests[0];
  EXPECT_THAT(sent.url, Not(HasSubstr(key)));
  EXPECT_THAT(sent.body, Not(HasSubstr(key)));
  bool found = false;
  for (const auto& [name, value] : sent.headers) {
    if (name == "Authorization") {
      EXPECT_EQ(value, "Bearer " + key);
      found = true;
    }
  }
  EXPECT_TRUE(found);
  // A transport error message holding the key is redacted too.
  ClientFixture g(key);
  g.client->options();
  g.transport->Push(absl::InvalidArgumentError("bad url http://x/?k=" + key));
  r = g.client->GetFile("f", g.sleeper());
  EXPECT_THAT(std::string(r.status().message()), Not(HasSubstr(key)));
}

TEST(OpenAiClient, CancelledSleepEndsTheCall) {
  ClientFixture f;
  f.transport->Push(Reply(503, ErrorBody("")));
  absl::StatusOr<Json> r = f.client->GetJob("x", [](absl::Duration) { return false; });
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
}

TEST(OpenAiClient, ListFollowsCursorsAndEncodesMetadataFilter) {
  ClientFixture f;
  f.transport->Push(Reply(200, R"({"object":"list","data":[{"id":"a"},{"id":"b"}],"has_more":true})"));
  f.transport->Push(Reply(200, R"({"object":"list","data":[{"id":"c"}],"has_more":false})"));
  absl::StatusOr<std::vector<Json>> jobs =
      f.client->ListJobsByMetadata("ftb_tag", "ftb-1 2", f.sleeper());
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  ASSERT_EQ(jobs->size(), 3u);
  ASSERT_EQ(f.transport->requests.size(), 2u);
  EXPECT_EQ(f.transport->requests[0].url,
            "http://fake/v1/fine_tuning/jobs?metadata%5Bftb_tag%5D=ftb-1%202&limit=100");
  EXPECT_EQ(f.transport->requests[1].url,
            "http://fake/v1/fine_tuning/jobs?metadata%5Bftb_tag%5D=ftb-1%202&limit=100&after=b");
}

TEST(MultipartBody, EncodesFieldsAndFile) {
  MultipartBody form;
  form.AddField("purpose", "fine-tune");
  form.AddFile("file", "train.jsonl", "application/jsonl", "{\"messages\":[]}\n");
  std::string body = form.Encode();
  EXPECT_THAT(form.ContentType(), HasSubstr("multipart/form-data; boundary="));
  EXPECT_THAT(body, HasSubstr("Content-Disposition: form-data; name=\"purpose\"\r\n\r\nfine-tune"));
  EXPECT_THAT(body, HasSubstr("name=\"file\"; filename=\"train.jsonl\""));
  EXPECT_THAT(body, HasSubstr("{\"messages\":[]}\n\r\n"));
}

TEST(Redact, ReplacesEveryOccurrence) {
  EXPECT_EQ(Redact("a KEY b KEY", "KEY"), "a [REDACTED] b [REDACTED]");
  EXPECT_EQ(Redact("nothing", ""), "nothing");
}


// --- VertexClient over a scripted transport -------------------------------------------

std::string GoogleError(int code, const std::string& status, const std::string& message) {
  return Json{{"error", {{"code", code}, {"message", message}, {"status", status}}}}.dump();
}

struct VertexFixture {
  explicit VertexFixture(VertexClientOptions o = {}) {
    auto t = std::make_unique<ScriptedTransport>();
    transport = t.get();
    if (o.project.empty()) o.project = "proj";
    if (o.access_token.empty() && o.token_command.empty()) o.access_token = "ya29.static-SECRET";
    o.rest.retry.max_attempts = 4;
    client = std::make_unique<VertexClient>(o, std::move(t));
  }
  Sleeper sleeper() {
    return [this](absl::Duration d) {
      slept.push_back(d);
      return true;
    };
  }
  std::string Header(size_t request, const std::string& name) const {
    for (const auto& [n, v] : transport->requests.at(request).headers) {
      if (n == name) return v;
    }
    return "";
  }
  ScriptedTransport* transport;
  std::unique_ptr<VertexClient> client;
  std::vector<absl::Duration> slept;
};

TEST(VertexClient, PathsBodiesAndTheRegionalDefaultEndpoint) {
  VertexClientOptions o;
  o.location = "europe-west4";
  VertexFixture f(o);
  f.transport->Push(Reply(200, R"({"name":"projects/123/locations/europe-west4/tuningJobs/9","state":"JOB_STATE_PENDING"})"));
  absl::StatusOr<Json> job = f.client->CreateTuningJob(
      Json{{"baseModel", "gemini-1.5-flash-002"}}, f.sleeper());
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ((*job)["state"], "JOB_STATE_PENDING");
  const HttpRequest& create = f.transport->requests[0];
  EXPECT_EQ(create.method, "POST");
  EXPECT_EQ(create.url,
            "https://europe-west4-aiplatform.googleapis.com/v1/projects/proj/locations/"
            "europe-west4/tuningJobs");
  EXPECT_EQ(Json::parse(create.body)["baseModel"], "gemini-1.5-flash-002");
  EXPECT_EQ(f.Header(0, "Authorization"), "Bearer ya29.static-SECRET");
  EXPECT_EQ(f.Header(0, "Content-Type"), "application/json");

  // A bare id is completed with the parent; a full name (with the project
  // number, as Vertex returns it) is used as is.
  ASSERT_TRUE(f.client->GetTuningJob("42", f.sleeper()).ok());
  EXPECT_EQ(f.transport->requests[1].url,
            "https://europe-west4-aiplatform.googleapis.com/v1/projects/proj/locations/"
            "europe-west4/tuningJobs/42");
  EXPECT_EQ(f.transport->requests[1].method, "GET");
  ASSERT_TRUE(f.client->CancelTuningJob("projects/123/locations/europe-west4/tuningJobs/9",
                                        f.sleeper()).ok());
  EXPECT_EQ(f.transport->requests[2].url,
            "https://europe-west4-aiplatform.googleapis.com/v1/projects/123/locations/"
            "europe-west4/tuningJobs/9:cancel");
  Json request = {{"contents", Json::array({{{"role", "user"}, {"parts", Json::array({{{"text", "Q?"}}})}}})}};
  ASSERT_TRUE(f.client->GenerateContent("projects/123/locations/europe-west4/endpoints/77", request,
                                        10, f.sleeper()).ok());
  EXPECT_EQ(f.transport->requests[3].url,
            "https://europe-west4-aiplatform.googleapis.com/v1/projects/123/locations/"
            "europe-west4/endpoints/77:generateContent");
  EXPECT_EQ(Json::parse(f.transport->requests[3].body), request);
}

TEST(VertexClient, ListFollowsPageTokensAndEncodesTheFilter) {
  VertexClientOptions o;
  o.base_url = "http://fake/";
  VertexFixture f(o);
  f.transport->Push(Reply(200, R"({"tuningJobs":[{"name":"a"},{"name":"b"}],"nextPageToken":"t=1"})"));
  f.transport->Push(Reply(200, R"({"tuningJobs":[{"name":"c"}]})"));
  absl::StatusOr<std::vector<Json>> jobs =
      f.client->ListTuningJobs("labels.ftb-tag=ftb-1-e2", f.sleeper());
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  ASSERT_EQ(jobs->size(), 3u);
  EXPECT_EQ((*jobs)[2]["name"], "c");
  ASSERT_EQ(f.transport->requests.size(), 2u);
  EXPECT_EQ(f.transport->requests[0].url,
            "http://fake/v1/projects/proj/locations/us-central1/tuningJobs?pageSize=100&filter="
            "labels.ftb-tag%3Dftb-1-e2");
  EXPECT_EQ(f.transport->requests[1].url,
            "http://fake/v1/projects/proj/locations/us-central1/tuningJobs?pageSize=100&filter="
            "labels.ftb-tag%3Dftb-1-e2&pageToken=t%3D1");
  // An empty list is an empty object.
  f.transport->Push(Reply(200, "{}"));
  jobs = f.client->ListTuningJobs("", f.sleeper());
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  EXPECT_TRUE(jobs->empty());
}

TEST(VertexClient, RetriesGoogleErrorsAndNamesTheStatus) {
  VertexFixture f;
  auto before = ProviderStats::Global().Get();
  f.transport->Push(Reply(429, GoogleError(429, "RESOURCE_EXHAUSTED", "Quota exceeded"),
                          {{"retry-after", "2"}}));
  f.transport->Push(Reply(503, GoogleError(503, "UNAVAILABLE", "try later")));
  f.transport->Push(Reply(200, R"({"state":"JOB_STATE_RUNNING"})"));
  absl::StatusOr<Json> job = f.client->GetTuningJob("1", f.sleeper());
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_EQ(f.slept.size(), 2u);
  EXPECT_EQ(f.slept[0], absl::Seconds(2));
  auto after = ProviderStats::Global().Get();
  EXPECT_EQ(after.retries["vertex"] - before.retries["vertex"], 2u);

  for (int status : {400, 403, 404}) {
    VertexFixture g;
    g.transport->Push(Reply(status, GoogleError(status, status == 404 ? "NOT_FOUND" : "X", "nope")));
    absl::StatusOr<Json> r = g.client->GetTuningJob("1", g.sleeper());
    EXPECT_EQ(r.status().code(), RetryPolicy::CodeForHttpStatus(status));
    EXPECT_EQ(g.transport->requests.size(), 1u) << status;
    if (status == 404) {
      EXPECT_THAT(std::string(r.status().message()), HasSubstr("NOT_FOUND: nope"));
    }
  }
  // Retries exhausted: kResourceExhausted, retryable at the task level.
  VertexFixture h;
  for (int i = 0; i < 4; ++i) h.transport->Push(Reply(429, GoogleError(429, "RESOURCE_EXHAUSTED", "q")));
  absl::StatusOr<Json> r = h.client->GetTuningJob("1", h.sleeper());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(IsInsufficientQuota(r.status()));
  EXPECT_EQ(h.transport->requests.size(), 4u);
}

TEST(VertexClient, StaticTokenIsNotRetriedOn401AndIsRedacted) {
  VertexFixture f;
  f.transport->Push(Reply(401, GoogleError(401, "UNAUTHENTICATED",
                                           "bad credentials ya29.static-SECRET")));
  absl::StatusOr<Json> r = f.client->GetTuningJob("1", f.sleeper());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(f.transport->requests.size(), 1u);
  EXPECT_THAT(std::string(r.status().message()), Not(HasSubstr("ya29.static-SECRET")));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("[REDACTED]"));
}

TEST(VertexClient, TokenCommandRunsOnceAndRefreshesOn401) {
  char dir_template[] = "/tmp/ftb-vertex-token-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  VertexClientOptions o;
  // Prints token-<number of runs so far>, counting runs in a file.
  o.token_command = absl::StrCat("echo x >> ", dir, "/runs; echo ya29.cmd-SECRET-$(wc -l < ",
                                 dir, "/runs)");
  VertexFixture f(o);
  ASSERT_TRUE(f.client->GetTuningJob("1", f.sleeper()).ok());
  ASSERT_TRUE(f.client->GetTuningJob("2", f.sleeper()).ok());
  EXPECT_EQ(f.Header(0, "Authorization"), "Bearer ya29.cmd-SECRET-1");
  EXPECT_EQ(f.Header(1, "Authorization"), "Bearer ya29.cmd-SECRET-1");
  // Expired: one refresh, one repeat.
  f.transport->Push(Reply(401, GoogleError(401, "UNAUTHENTICATED", "expired ya29.cmd-SECRET-1")));
  ASSERT_TRUE(f.client->GetTuningJob("3", f.sleeper()).ok());
  ASSERT_EQ(f.transport->requests.size(), 4u);
  EXPECT_EQ(f.Header(3, "Authorization"), "Bearer ya29.cmd-SECRET-2");
  // Rejected even when fresh: the error names neither token.
  f.transport->Push(Reply(401, GoogleError(401, "UNAUTHENTICATED", "no ya29.cmd-SECRET-2")));
  f.transport->Push(Reply(401, GoogleError(401, "UNAUTHENTICATED", "no ya29.cmd-SECRET-3")));
  absl::StatusOr<Json> r = f.client->GetTuningJob("4", f.sleeper());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(r.status().message()), Not(HasSubstr("SECRET")));
  std::filesystem::remove_all(dir);
}

TEST(RunTokenCommand, TrimsOutputAndReportsFailures) {
  absl::StatusOr<std::string> t = RunTokenCommand("printf '  ya29.abc \\n'", absl::Seconds(5));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, "ya29.abc");
  t = RunTokenCommand("echo 'not logged in' >&2; exit 3", absl::Seconds(5));
  EXPECT_EQ(t.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("exit 3"));
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("not logged in"));
  t = RunTokenCommand("true", absl::Seconds(5));
  EXPECT_EQ(t.status().code(), absl::StatusCode::kUnauthenticated);
  t = RunTokenCommand("sleep 5", absl::Milliseconds(100));
  EXPECT_EQ(t.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("timed out"));
}

TEST(ParseProviderError, ReadsGoogleErrorBody) {
  ProviderError e = ParseProviderError(GoogleError(404, "NOT_FOUND", "no such job"));
  EXPECT_EQ(e.code, "NOT_FOUND");
  EXPECT_EQ(e.message, "no such job");
}

}  // namespace
}  // namespace ftb::providers
