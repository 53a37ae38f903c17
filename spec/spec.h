// Campaign specs in YAML, mapped onto ftb::v1::CampaignSpec. Thread-safe.
//
// Every error is kInvalidArgument with a message of the form
//   <file>:<line>:<column>: <field path>: expected <what>, got <what>
// e.g. `campaign.yaml:12:5: models[1].epochs: expected a list of
// non-negative integers (0 = the base model), got "ten"`. Line and column are 1-based and point at the
// offending node. Unknown fields are errors. String values may reference
// environment variables as ${NAME}; an unset variable is an error naming it.
#ifndef FTB_SPEC_SPEC_H_
#define FTB_SPEC_SPEC_H_

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "ftb/v1/campaign.pb.h"
#include "google/protobuf/struct.pb.h"

namespace ftb::spec {

// Looks up an environment variable; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(std::string_view)>;
// The process environment.
EnvLookup ProcessEnv();
// Only the variables in `values`.
EnvLookup MapEnv(std::map<std::string, std::string> values);
// `base`, recording into *used each variable it finds (name -> value), e.g.
// to send a spec's variables along with it. `used` must outlive the lookup.
EnvLookup RecordingEnv(EnvLookup base, std::map<std::string, std::string>* used);

// Checks one model's options for its backend, e.g.
// workers::BackendRegistry::ValidateOptions (the spec library does not link
// the backends). Errors name the option as `model.options.<key>` (nested:
// `model.options.endpoint.model`) or, for an unknown key, as "<key>" in
// quotes; kNotFound (backend unknown to the checker) is ignored.
using ModelOptionsValidator =
    std::function<absl::Status(std::string_view backend, const google::protobuf::Struct& options)>;
// Installs the check ParseCampaignSpec runs on every model's options
// (process-wide; empty = no check, the default). The ftb binary installs the
// backend registry's check at startup, so `ftb plan`, `ftb run` and a
// coordinator's SubmitCampaign refuse `layerz: 2` with
// `<file>:<line>:<column>: models[i].options.layerz: <the backend's message>`.
// Call before parsing starts; not synchronised with concurrent parses.
void SetModelOptionsValidator(ModelOptionsValidator validator);

// Parses and validates a spec and fills defaults (see docs/spec.md).
absl::StatusOr<v1::CampaignSpec> ParseCampaignSpec(std::string_view yaml,
                                                   std::string_view filename,
                                                   const EnvLookup& env);

// Reads `path` and parses it with the process environment. kNotFound when
// the file cannot be read.
absl::StatusOr<v1::CampaignSpec> LoadCampaignSpecFile(const std::string& path);

}  // namespace ftb::spec

#endif  // FTB_SPEC_SPEC_H_
