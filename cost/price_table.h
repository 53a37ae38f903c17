// Versioned price tables (pricing/*.yaml): per backend and model, dollars per
// million training, prompt and completion tokens, with the date and source
// of each figure. The tables in the repository are compiled into the binary
// (Builtin()); a directory of YAML files can replace them. Immutable after
// construction, so thread-safe.
#ifndef FTB_COST_PRICE_TABLE_H_
#define FTB_COST_PRICE_TABLE_H_

#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"

namespace ftb::cost {

struct ModelPrice {
  double training_per_1m_tokens = 0;
  double input_per_1m_tokens = 0;
  double output_per_1m_tokens = 0;
  // Inference on the untuned base model (cells at epochs 0), which providers
  // may price differently from their tuned models (OpenAI: lower). Equal to
  // input/output_per_1m_tokens unless the table gives base_input_per_1m_tokens
  // / base_output_per_1m_tokens.
  double base_input_per_1m_tokens = 0;
  double base_output_per_1m_tokens = 0;
  // A figure the table gives as `unknown` (the provider publishes none per
  // token, e.g. a dedicated endpoint billed by the minute, or none could be
  // found): counted as 0 and flagged by estimates that use it.
  bool training_unknown = false;
  bool inference_unknown = false;       // input or output
  bool base_inference_unknown = false;  // base input or base output
  std::string source;
  std::string as_of;
  std::string note;     // optional free text (where a figure came from)
  std::string version;  // of the table it came from
  bool verified = true;
};

// "price of MODEL (BACKEND) from AS_OF is over a year old; check SOURCE" when
// `price.as_of` is a YYYY-MM-DD more than 365 days before `today`, or
// "price of MODEL (BACKEND): as_of \"...\" is not a date; check SOURCE";
// empty otherwise.
std::string StalePriceWarning(const ModelPrice& price, std::string_view backend,
                              std::string_view model, absl::CivilDay today);

class PriceTable {
 public:
  // Parses one or more YAML documents, each
  //   {version: DATE, backend: NAME, models: {MODEL|"*": {training_per_1m_tokens,
  //    input_per_1m_tokens, output_per_1m_tokens, base_input_per_1m_tokens?,
  //    base_output_per_1m_tokens?, source, as_of, note?, verified?}}}
  // Each price is a non-negative number or the word `unknown`.
  // Errors (kInvalidArgument) read "<file>:<line>:<col>: <field>: <what>".
  // A (backend, model) defined twice is an error.
  absl::Status Add(std::string_view yaml, std::string_view filename);
  // Every *.yaml in `dir` but retirements.yaml (a RetirementTable), in name
  // order.
  static absl::StatusOr<PriceTable> LoadDirectory(const std::string& dir);
  // The tables of pricing/ at build time.
  static const PriceTable& Builtin();

  // The price of `model` on `backend`: an exact entry, else the backend's
  // "*" entry, else nullptr (unknown: estimates treat it as unpriced).
  const ModelPrice* Find(std::string_view backend, std::string_view model) const;

  size_t size() const { return prices_.size(); }

 private:
  std::map<std::pair<std::string, std::string>, ModelPrice, std::less<>> prices_;
};

}  // namespace ftb::cost

#endif  // FTB_COST_PRICE_TABLE_H_
