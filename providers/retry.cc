#include "providers/retry.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace ftb::providers {

absl::Status InsufficientQuotaError(std::string_view message) {
  absl::Status status = absl::ResourceExhaustedError(std::string(message));
  status.SetPayload(kPausePayload, absl::Cord("insufficient_quota"));
  return status;
}

bool IsInsufficientQuota(const absl::Status& status) {
  return status.GetPayload(kPausePayload).has_value();
}

bool IsMaybeCreated(const absl::Status& status) {
  return status.GetPayload(kMaybeCreatedPayload).has_value();
}

namespace {

absl::Status MaybeCreatedError(absl::StatusCode code, const std::string& message) {
  absl::Status status(code, absl::StrCat(message,
                                         " (a create call: not repeated, since the provider may "
                                         "have carried it out; look it up by its tag first)"));
  status.SetPayload(kMaybeCreatedPayload, absl::Cord("maybe created"));
  return status;
}

}  // namespace

ProviderError ParseProviderError(std::string_view body) {
  ProviderError out;
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("error") || !j["error"].is_object()) return out;
  const nlohmann::json& e = j["error"];
  auto get = [&e](const char* name) {
    auto it = e.find(name);
    return it != e.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  out.message = get("message");
  out.type = get("type");
  out.param = get("param");
  out.code = get("code");
  // Google APIs: {"error": {"code": 429, "message", "status": "RESOURCE_EXHAUSTED"}}.
  if (out.code.empty()) out.code = get("status");
  return out;
}

absl::StatusCode RetryPolicy::CodeForHttpStatus(int status) {
  switch (status) {
    case 400:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 408:
      return absl::StatusCode::kDeadlineExceeded;
    case 409:
      return absl::StatusCode::kAborted;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    default:
      return status >= 500 ? absl::StatusCode::kUnavailable
                           : absl::StatusCode::kFailedPrecondition;
  }
}

bool RetryPolicy::IsRetryableHttpStatus(int status) {
  return status == 408 || status == 409 || status == 429 || status >= 500;
}

absl::Duration RetryPolicy::Backoff(int attempt, Rng& rng) const {
  absl::Duration d = options_.initial_backoff;
  for (int i = 1; i < attempt && d < options_.max_backoff; ++i) d *= 2;
  d = std::min(d, options_.max_backoff);
  int64_t us = absl::ToInt64Microseconds(d);
  return absl::Microseconds(rng.Uniform(us / 2, us));
}

RetryDecision RetryPolicy::Decide(int attempt, std::string_view what,
                                  const absl::StatusOr<HttpResponse>& reply, Rng& rng,
                                  bool idempotent) const {
  RetryDecision d;
  const bool last = attempt >= options_.max_attempts;
  if (!reply.ok()) {
    const bool transient = reply.status().code() == absl::StatusCode::kUnavailable ||
                           reply.status().code() == absl::StatusCode::kDeadlineExceeded;
    if (transient && !idempotent && !RequestNotSent(reply.status())) {
      d.error = MaybeCreatedError(reply.status().code(), std::string(reply.status().message()));
      return d;
    }
    if (transient && !last) {
      d.retry = true;
      d.delay = Backoff(attempt, rng);
      return d;
    }
    d.error = transient ? absl::Status(reply.status().code(),
                                       absl::StrCat(std::string(reply.status().message()), " (after ", attempt,
                                                    " attempts)"))
                        : reply.status();
    return d;
  }
  const HttpResponse& r = *reply;
  if (r.status >= 200 && r.status < 300) return d;
  // "If the server explicitly says whether or not to retry, obey"
  // (openai-python `_should_retry`).
  const std::string should_retry = absl::AsciiStrToLower(r.Header("x-should-retry"));
  ProviderError e = ParseProviderError(r.body);
  std::string detail = e.message.empty() ? std::string(r.body.substr(0, 300)) : e.message;
  std::string message = absl::StrCat(std::string(what), ": HTTP ", r.status,
                                     e.code.empty() ? "" : absl::StrCat(" ", e.code), ": ", detail);
  if (r.status == 429 && (e.code == "insufficient_quota" || e.type == "insufficient_quota")) {
    d.error = InsufficientQuotaError(
        absl::StrCat(message, " (the provider account is out of quota: add credit, then resume)"));
    return d;
  }
  if (should_retry == "false") {
    absl::StrAppend(&message, " (the server said x-should-retry: false)");
    d.error = absl::Status(CodeForHttpStatus(r.status), message);
    return d;
  }
  const bool server_says_retry = should_retry == "true";
  if (!server_says_retry && !idempotent && r.status != 429 && IsRetryableHttpStatus(r.status)) {
    d.error = MaybeCreatedError(CodeForHttpStatus(r.status), message);
    return d;
  }
  const bool retryable = server_says_retry || IsRetryableHttpStatus(r.status);
  if (retryable && !last) {
    std::optional<absl::Duration> after = ParseRetryAfter(r);
    if (after && *after > options_.max_retry_after) {
      // Fail this attempt rather than sleep for minutes inside one call; a
      // retryable status, so the task is tried again later.
      absl::StrAppend(&message, " (the provider asks to wait ", absl::FormatDuration(*after),
                      ", more than the ", absl::FormatDuration(options_.max_retry_after),
                      " one call waits; giving up this attempt, to be retried later)");
      absl::StatusCode code = CodeForHttpStatus(r.status);
      if (code != absl::StatusCode::kResourceExhausted) code = absl::StatusCode::kUnavailable;
      d.error = absl::Status(code, message);
      return d;
    }
    d.retry = true;
    d.delay = after ? *after : Backoff(attempt, rng);
    return d;
  }
  if (retryable) absl::StrAppend(&message, " (after ", attempt, " attempts)");
  d.error = absl::Status(CodeForHttpStatus(r.status), message);
  return d;
}

std::optional<absl::Duration> ParseRetryAfter(const HttpResponse& response, absl::Time now) {
  double v = 0;
  std::string ms = response.Header("retry-after-ms");
  if (!ms.empty() && absl::SimpleAtod(ms, &v) && v >= 0) {
    return absl::Microseconds(static_cast<int64_t>(v * 1000));
  }
  std::string s(absl::StripAsciiWhitespace(response.Header("retry-after")));
  if (s.empty()) return std::nullopt;
  if (absl::SimpleAtod(s, &v)) {
    if (v < 0) return std::nullopt;
    return absl::Microseconds(static_cast<int64_t>(v * 1e6));
  }
  // HTTP-date (RFC 9110 section 5.6.7): IMF-fixdate, then the obsolete
  // RFC 850 and asctime forms a recipient must also accept. Always GMT.
  for (const char* format : {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT",
                             "%a %b %e %H:%M:%S %Y"}) {
    absl::Time when;
    std::string error;
    if (absl::ParseTime(format, s, absl::UTCTimeZone(), &when, &error)) {
      return std::max(absl::ZeroDuration(), when - now);
    }
  }
  return std::nullopt;
}

std::optional<absl::Duration> ParseResetDuration(std::string_view text) {
  std::string t(absl::StripAsciiWhitespace(std::string(text)));
  if (t.empty()) return std::nullopt;
  double bare = 0;
  if (absl::SimpleAtod(t, &bare)) {
    if (bare < 0) return std::nullopt;
    return absl::Microseconds(static_cast<int64_t>(bare * 1e6));
  }
  absl::Duration total;
  size_t i = 0;
  while (i < t.size()) {
    size_t start = i;
    while (i < t.size() && (std::isdigit(static_cast<unsigned char>(t[i])) || t[i] == '.')) ++i;
    if (i == start) return std::nullopt;
    double value = 0;
    if (!absl::SimpleAtod(t.substr(start, i - start), &value)) return std::nullopt;
    size_t unit_start = i;
    while (i < t.size() && std::isalpha(static_cast<unsigned char>(t[i]))) ++i;
    std::string unit = t.substr(unit_start, i - unit_start);
    double seconds;
    if (unit == "h") {
      seconds = value * 3600;
    } else if (unit == "m") {
      seconds = value * 60;
    } else if (unit == "s") {
      seconds = value;
    } else if (unit == "ms") {
      seconds = value / 1000;
    } else {
      return std::nullopt;
    }
    total += absl::Microseconds(static_cast<int64_t>(seconds * 1e6));
  }
  return total;
}

}  // namespace ftb::providers
