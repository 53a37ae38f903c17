#include "cost/retirement_table.h"

#include <cstdio>
#include <cstdlib>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status_macros.h"
#include "yaml-cpp/yaml.h"

namespace ftb::cost {

std::string_view EmbeddedRetirements();  // generated from pricing/retirements.yaml

namespace {

absl::Status Invalid(std::string_view file, const YAML::Node& node, const std::string& field,
                     const std::string& what) {
  const YAML::Mark m = node.Mark();
  return absl::InvalidArgumentError(absl::StrCat(std::string(file), ":", m.line + 1, ":",
                                                 m.column + 1, ": ", field, ": ", what));
}

}  // namespace

absl::StatusOr<absl::CivilDay> ParseDay(std::string_view text_view, std::string_view what_view) {
  // This Abseil's string_view is not std::string_view.
  const std::string text(text_view), what(what_view);
  absl::CivilDay day;
  // Exactly YYYY-MM-DD: ParseCivilTime alone also takes "2027-1-6".
  bool shape = text.size() == 10 && text[4] == '-' && text[7] == '-';
  if (!shape || !absl::ParseCivilTime(text, &day) || absl::FormatCivilTime(day) != text) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": expected a date YYYY-MM-DD, got \"", text, "\""));
  }
  return day;
}

absl::CivilDay TodayUtc() { return absl::ToCivilDay(absl::Now(), absl::UTCTimeZone()); }

absl::Status RetirementTable::Add(std::string_view yaml, std::string_view filename) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(filename), ":", e.mark.line + 1,
                                                   ":", e.mark.column + 1,
                                                   ": YAML syntax error: ", e.msg));
  }
  static const std::set<std::string> kRowKeys = {"backend", "model", "kind",  "date",
                                                 "source",  "as_of", "note", "verified"};
  std::set<std::tuple<std::string, std::string, Retirement::Kind>> seen;
  for (const Retirement& r : rows_) seen.emplace(r.backend, r.model, r.kind);
  for (const YAML::Node& doc : docs) {
    if (doc.IsNull()) continue;
    if (!doc.IsMap()) return Invalid(filename, doc, "(document)", "expected a mapping");
    for (const char* key : {"version", "retirements"}) {
      if (!doc[key]) return Invalid(filename, doc, key, "required");
    }
    YAML::Node list = doc["retirements"];
    if (!list.IsSequence()) return Invalid(filename, list, "retirements", "expected a list");
    for (size_t i = 0; i < list.size(); ++i) {
      const YAML::Node row = list[i];
      const std::string path = absl::StrCat("retirements[", i, "]");
      if (!row.IsMap()) return Invalid(filename, row, path, "expected a mapping");
      for (const auto& field : row) {
        std::string k = field.first.as<std::string>();
        if (!kRowKeys.contains(k)) {
          return Invalid(filename, field.first, absl::StrCat(path, ".", k), "unknown field");
        }
      }
      for (const char* key : {"backend", "model", "kind", "date", "source", "as_of"}) {
        if (!row[key] || !row[key].IsScalar() || row[key].Scalar().empty()) {
          return Invalid(filename, row, absl::StrCat(path, ".", key), "required");
        }
      }
      Retirement r;
      r.backend = row["backend"].Scalar();
      r.model = row["model"].Scalar();
      const std::string kind = row["kind"].Scalar();
      if (kind == "fine_tuning") {
        r.kind = Retirement::Kind::kFineTuning;
      } else if (kind == "inference") {
        r.kind = Retirement::Kind::kInference;
      } else {
        return Invalid(filename, row["kind"], absl::StrCat(path, ".kind"),
                       absl::StrCat("expected fine_tuning or inference, got \"", kind, "\""));
      }
      absl::StatusOr<absl::CivilDay> day =
          ParseDay(row["date"].Scalar(), absl::StrCat(path, ".date"));
      if (!day.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(std::string(filename), ":", row["date"].Mark().line + 1, ":",
                         row["date"].Mark().column + 1, ": ", day.status().message()));
      }
      r.date = *day;
      r.source = row["source"].Scalar();
      r.as_of = row["as_of"].Scalar();
      if (row["note"]) r.note = row["note"].as<std::string>();
      if (row["verified"]) {
        bool v = true;
        if (!YAML::convert<bool>::decode(row["verified"], v)) {
          return Invalid(filename, row["verified"], absl::StrCat(path, ".verified"),
                         "expected true or false");
        }
        r.verified = v;
      }
      if (!seen.emplace(r.backend, r.model, r.kind).second) {
        return Invalid(filename, row, path,
                       absl::StrCat(r.backend, "/", r.model, " ", kind, " defined twice"));
      }
      rows_.push_back(std::move(r));
    }
  }
  return absl::OkStatus();
}

const RetirementTable& RetirementTable::Builtin() {
  static const RetirementTable* table = [] {
    auto* t = new RetirementTable;
    absl::Status s = t->Add(EmbeddedRetirements(), "<embedded>/pricing/retirements.yaml");
    if (!s.ok()) {
      // The build embeds a file the tests parse; failing here is a bug.
      fprintf(stderr, "ftb: embedded retirement table: %s\n", std::string(s.message()).c_str());
      abort();
    }
    return t;
  }();
  return *table;
}

std::vector<const Retirement*> RetirementTable::Matching(std::string_view backend,
                                                         std::string_view model) const {
  std::vector<const Retirement*> out;
  for (const Retirement& r : rows_) {
    if (r.backend == backend && (r.model == model || r.model == "*")) out.push_back(&r);
  }
  return out;
}

std::vector<std::string> RetirementTable::Warnings(std::string_view backend,
                                                   std::string_view model, absl::CivilDay today,
                                                   int window_days) const {
  std::vector<std::string> out;
  const std::string backend_s(backend), model_s(model);
  for (const Retirement* r : Matching(backend, model)) {
    const int64_t days = r->date - today;
    if (days > window_days) continue;
    const bool fine_tuning = r->kind == Retirement::Kind::kFineTuning;
    const std::string what = fine_tuning ? (r->model == "*" ? "new fine-tuning jobs on "
                                                                   "this backend"
                                                             : "new fine-tuning jobs")
                                         : "the model";
    std::string when;
    if (days <= 0) {
      when = absl::StrCat(fine_tuning ? " stopped on " : " was retired on ",
                          absl::FormatCivilTime(r->date));
    } else {
      when = absl::StrCat(fine_tuning ? " stop on " : " will be retired on ",
                          absl::FormatCivilTime(r->date), ", in ", days,
                          days == 1 ? " day" : " days");
    }
    out.push_back(absl::StrCat(model_s, " (", backend_s, "): ", what, when, " (source: ", r->source,
                               ", as of ", r->as_of, r->verified ? "" : "; unverified", ")",
                               r->note.empty() ? "" : absl::StrCat(". ", r->note)));
  }
  return out;
}

}  // namespace ftb::cost
