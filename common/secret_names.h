// Which environment variable names hold secrets. Used where a value must not
// travel: `${NAME}` expansion in a campaign spec (the expanded spec is stored
// and served, spec/spec.h) and the environment a `command` backend's
// submitted commands inherit from the worker (workers/command_backend.h).
// Pure functions; thread-safe.
#ifndef FTB_COMMON_SECRET_NAMES_H_
#define FTB_COMMON_SECRET_NAMES_H_

#include <iterator>
#include <string>
#include <string_view>

#include "absl/strings/ascii.h"

namespace ftb {

// The words that mark a secret, matched anywhere in the name, ignoring case:
// OPENAI_API_KEY, FTB_AUTH_TOKEN, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
// PGPASSWORD, GOOGLE_APPLICATION_CREDENTIALS, HF_TOKEN, ... (docs/spec.md,
// "Environment variables", lists them).
inline constexpr std::string_view kSecretNameWords[] = {
    "KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "COOKIE"};

// True if `name` contains one of kSecretNameWords (case-insensitive). Errs
// on the side of calling a name secret (MONKEY_COUNT is one).
inline bool LooksLikeSecretName(std::string_view name) {
  std::string upper(name);
  for (char& c : upper) c = absl::ascii_toupper(static_cast<unsigned char>(c));
  for (std::string_view word : kSecretNameWords) {
    if (upper.find(word) != std::string::npos) return true;
  }
  return false;
}

// "KEY, TOKEN, ... or COOKIE", for error messages.
inline std::string SecretNameWordsText() {
  std::string out;
  const size_t n = std::size(kSecretNameWords);
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out += i + 1 == n ? " or " : ", ";
    out += kSecretNameWords[i];
  }
  return out;
}

}  // namespace ftb

#endif  // FTB_COMMON_SECRET_NAMES_H_
