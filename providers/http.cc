#include "providers/http.h"

#include <curl/curl.h>

#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace ftb::providers {
namespace {

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* response = static_cast<HttpResponse*>(user);
  std::string_view line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) response->headers.clear();  // a new reply (e.g. after 100)
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name = absl::AsciiStrToLower(std::string(line.substr(0, colon)));
    std::string value(absl::StripAsciiWhitespace(std::string(line.substr(colon + 1))));
    response->headers[name] = value;
  }
  return size * n;
}

class CurlTransport : public HttpTransport {
 public:
  CurlTransport() { GlobalInit(); }

  absl::StatusOr<HttpResponse> Send(const HttpRequest& request) override {
    CURL* curl = curl_easy_init();
    if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
    HttpResponse response;
    curl_slist* headers = nullptr;
    for (const auto& [name, value] : request.headers) {
      headers = curl_slist_append(headers, absl::StrCat(name, ": ", value).c_str());
    }
    // libcurl would otherwise send "Expect: 100-continue" for large bodies.
    headers = curl_slist_append(headers, "Expect:");
    curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                     static_cast<long>(absl::ToInt64Milliseconds(request.timeout)));
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response.body);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &response);
    if (request.method == "POST") {
      curl_easy_setopt(curl, CURLOPT_POST, 1L);
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(request.body.size()));
    } else if (request.method != "GET") {
      curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    }
    CURLcode code = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    if (code == CURLE_OPERATION_TIMEDOUT) {
      return absl::DeadlineExceededError(
          absl::StrCat(request.method, " ", request.url, ": timed out after ",
                       absl::FormatDuration(request.timeout)));
    }
    if (code == CURLE_URL_MALFORMAT || code == CURLE_UNSUPPORTED_PROTOCOL) {
      return absl::InvalidArgumentError(
          absl::StrCat(request.method, " ", request.url, ": ", curl_easy_strerror(code)));
    }
    if (code != CURLE_OK) {
      absl::Status error = absl::UnavailableError(
          absl::StrCat(request.method, " ", request.url, ": ", curl_easy_strerror(code)));
      if (code == CURLE_COULDNT_RESOLVE_HOST || code == CURLE_COULDNT_RESOLVE_PROXY ||
          code == CURLE_COULDNT_CONNECT) {
        error.SetPayload(kNotSentPayload, absl::Cord("not sent"));
      }
      return error;
    }
    response.status = static_cast<int>(status);
    return response;
  }
};

}  // namespace

std::string HttpResponse::Header(std::string_view name) const {
  auto it = headers.find(std::string(name));
  return it == headers.end() ? "" : it->second;
}

std::unique_ptr<HttpTransport> NewCurlTransport() { return std::make_unique<CurlTransport>(); }

void MultipartBody::AddField(std::string name, std::string value) {
  parts_.push_back(Part{std::move(name), "", "", std::move(value), false});
}

void MultipartBody::AddFile(std::string name, std::string filename, std::string content_type,
                            std::string content) {
  parts_.push_back(
      Part{std::move(name), std::move(filename), std::move(content_type), std::move(content), true});
}

std::string MultipartBody::Boundary() const {
  std::string boundary = "ftb-form-boundary-7MA4YWxkTrZu0gW";
  for (bool clash = true; clash;) {
    clash = false;
    for (const Part& p : parts_) {
      if (p.content.find(boundary) != std::string::npos) {
        boundary += "x";
        clash = true;
      }
    }
  }
  return boundary;
}

std::string MultipartBody::ContentType() const {
  return absl::StrCat("multipart/form-data; boundary=", Boundary());
}

std::string MultipartBody::Encode() const {
  const std::string boundary = Boundary();
  std::string out;
  for (const Part& p : parts_) {
    absl::StrAppend(&out, "--", boundary, "\r\nContent-Disposition: form-data; name=\"", p.name,
                    "\"");
    if (p.is_file) {
      absl::StrAppend(&out, "; filename=\"", p.filename, "\"\r\nContent-Type: ", p.content_type);
    }
    absl::StrAppend(&out, "\r\n\r\n", p.content, "\r\n");
  }
  absl::StrAppend(&out, "--", boundary, "--\r\n");
  return out;
}

std::string Redact(std::string_view text, std::string_view secret) {
  std::string out(text);
  if (secret.empty()) return out;
  for (size_t pos = out.find(secret); pos != std::string::npos;
       pos = out.find(secret, pos + 10)) {
    out.replace(pos, secret.size(), "[REDACTED]");
  }
  return out;
}

}  // namespace ftb::providers
