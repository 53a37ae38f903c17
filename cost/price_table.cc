#include "cost/price_table.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "common/status_macros.h"
#include "yaml-cpp/yaml.h"

namespace ftb::cost {

std::string_view EmbeddedPricing();  // generated from pricing/*.yaml

namespace {

std::string Where(std::string_view file, const YAML::Node& node) {
  const YAML::Mark m = node.Mark();
  return absl::StrCat(std::string(file), ":", m.line + 1, ":", m.column + 1, ": ");
}

absl::Status Invalid(std::string_view file, const YAML::Node& node, const std::string& field,
                     const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(Where(file, node), field, ": ", what));
}

// A price field: a non-negative number, or the unquoted word `unknown`
// (*unknown set, value 0).
absl::StatusOr<double> Price(std::string_view file, const YAML::Node& entry,
                             const std::string& path, const char* key, bool* unknown) {
  YAML::Node v = entry[key];
  if (!v) return Invalid(file, entry, path, absl::StrCat("missing ", key));
  if (v.IsScalar() && v.Tag() != "!" && v.Scalar() == "unknown") {
    *unknown = true;
    return 0.0;
  }
  double d = 0;
  if (!v.IsScalar() || !YAML::convert<double>::decode(v, d) || d < 0 ||
      v.Tag() == "!" /* quoted */) {
    return Invalid(file, v, absl::StrCat(path, ".", key),
                   absl::StrCat("expected a non-negative number or unknown, got \"", v.Scalar(),
                                "\""));
  }
  return d;
}

}  // namespace

absl::Status PriceTable::Add(std::string_view yaml, std::string_view filename) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(filename), ":", e.mark.line + 1,
                                                   ":", e.mark.column + 1,
                                                   ": YAML syntax error: ", e.msg));
  }
  static const std::set<std::string> kEntryKeys = {
      "training_per_1m_tokens",    "input_per_1m_tokens",       "output_per_1m_tokens",
      "base_input_per_1m_tokens", "base_output_per_1m_tokens", "source",
      "as_of",                    "note",                      "verified"};
  for (const YAML::Node& doc : docs) {
    if (doc.IsNull()) continue;
    if (!doc.IsMap()) return Invalid(filename, doc, "(document)", "expected a mapping");
    for (const char* key : {"version", "backend", "models"}) {
      if (!doc[key]) return Invalid(filename, doc, key, "required");
    }
    std::string version = doc["version"].as<std::string>();
    std::string backend = doc["backend"].as<std::string>();
    YAML::Node models = doc["models"];
    if (!models.IsMap()) return Invalid(filename, models, "models", "expected a mapping");
    for (const auto& kv : models) {
      std::string model = kv.first.as<std::string>();
      std::string path = absl::StrCat("models.", model);
      const YAML::Node& entry = kv.second;
      if (!entry.IsMap()) return Invalid(filename, entry, path, "expected a mapping");
      for (const auto& field : entry) {
        std::string k = field.first.as<std::string>();
        if (!kEntryKeys.contains(k)) {
          return Invalid(filename, field.first, absl::StrCat(path, ".", k), "unknown field");
        }
      }
      ModelPrice p;
      bool in_unknown = false, out_unknown = false;
      FTB_ASSIGN_OR_RETURN(
          p.training_per_1m_tokens,
          Price(filename, entry, path, "training_per_1m_tokens", &p.training_unknown));
      FTB_ASSIGN_OR_RETURN(p.input_per_1m_tokens,
                           Price(filename, entry, path, "input_per_1m_tokens", &in_unknown));
      FTB_ASSIGN_OR_RETURN(p.output_per_1m_tokens,
                           Price(filename, entry, path, "output_per_1m_tokens", &out_unknown));
      p.inference_unknown = in_unknown || out_unknown;
      p.base_input_per_1m_tokens = p.input_per_1m_tokens;
      p.base_output_per_1m_tokens = p.output_per_1m_tokens;
      bool base_in_unknown = in_unknown, base_out_unknown = out_unknown;
      if (entry["base_input_per_1m_tokens"]) {
        base_in_unknown = false;
        FTB_ASSIGN_OR_RETURN(
            p.base_input_per_1m_tokens,
            Price(filename, entry, path, "base_input_per_1m_tokens", &base_in_unknown));
      }
      if (entry["base_output_per_1m_tokens"]) {
        base_out_unknown = false;
        FTB_ASSIGN_OR_RETURN(
            p.base_output_per_1m_tokens,
            Price(filename, entry, path, "base_output_per_1m_tokens", &base_out_unknown));
      }
      p.base_inference_unknown = base_in_unknown || base_out_unknown;
      if (!entry["source"] || !entry["as_of"]) {
        return Invalid(filename, entry, path, "every price needs its source and as_of date");
      }
      p.source = entry["source"].as<std::string>();
      p.as_of = entry["as_of"].as<std::string>();
      if (entry["note"]) p.note = entry["note"].as<std::string>();
      p.version = version;
      if (entry["verified"]) p.verified = entry["verified"].as<bool>();
      if (!prices_.emplace(std::make_pair(backend, model), p).second) {
        return Invalid(filename, kv.first, path,
                       absl::StrCat("defined twice for backend ", backend));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<PriceTable> PriceTable::LoadDirectory(const std::string& dir) {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    // retirements.yaml is the RetirementTable's, not a price table.
    if (e.path().extension() == ".yaml" && e.path().filename() != "retirements.yaml") {
      files.push_back(e.path());
    }
  }
  if (ec) return absl::NotFoundError(absl::StrCat(dir, ": ", ec.message()));
  std::sort(files.begin(), files.end());
  PriceTable table;
  for (const auto& f : files) {
    std::ifstream in(f);
    std::stringstream s;
    s << in.rdbuf();
    FTB_RETURN_IF_ERROR(table.Add(s.str(), f.string()));
  }
  return table;
}

const PriceTable& PriceTable::Builtin() {
  static const PriceTable* table = [] {
    auto* t = new PriceTable;
    absl::Status s = t->Add(EmbeddedPricing(), "<embedded>/pricing");
    if (!s.ok()) {
      // The build embeds files the tests parse; failing here is a bug.
      fprintf(stderr, "ftb: embedded price table: %s\n", std::string(s.message()).c_str());
      abort();
    }
    return t;
  }();
  return *table;
}

std::string StalePriceWarning(const ModelPrice& price, std::string_view backend_view,
                              std::string_view model_view, absl::CivilDay today) {
  const std::string backend(backend_view), model(model_view);
  absl::CivilDay as_of;
  if (!absl::ParseCivilTime(price.as_of, &as_of)) {
    return absl::StrCat("price of ", model, " (", backend, "): as_of \"", price.as_of,
                        "\" is not a date; check ", price.source);
  }
  if (today - as_of <= 365) return "";
  return absl::StrCat("price of ", model, " (", backend, ") from ", price.as_of,
                      " is over a year old; check ", price.source);
}

const ModelPrice* PriceTable::Find(std::string_view backend, std::string_view model) const {
  auto it = prices_.find(std::make_pair(std::string(backend), std::string(model)));
  if (it != prices_.end()) return &it->second;
  it = prices_.find(std::make_pair(std::string(backend), std::string("*")));
  return it == prices_.end() ? nullptr : &it->second;
}

}  // namespace ftb::cost
