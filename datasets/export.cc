#include "datasets/export.h"

#include "nlohmann/json.hpp"

namespace ftb::datasets {
namespace {

// ordered_json keeps the keys in the order the provider documents show.
using Json = nlohmann::ordered_json;

Json Line(const v1::QaItem& item, ExportFormat format) {
  switch (format) {
    case ExportFormat::kVertex:
      return Json{
          {"contents",
           Json::array({
               Json{{"role", "user"}, {"parts", Json::array({Json{{"text", item.prompt()}}})}},
               Json{{"role", "model"}, {"parts", Json::array({Json{{"text", item.answer()}}})}},
           })}};
    case ExportFormat::kOpenAiChat:
    default:
      return Json{{"messages", Json::array({
                                   Json{{"role", "user"}, {"content", item.prompt()}},
                                   Json{{"role", "assistant"}, {"content", item.answer()}},
                               })}};
  }
}

}  // namespace

std::optional<ExportFormat> ParseExportFormat(std::string_view name) {
  if (name == "openai") return ExportFormat::kOpenAiChat;
  if (name == "vertex") return ExportFormat::kVertex;
  return std::nullopt;
}

std::string ExportJsonl(const std::vector<const v1::QaItem*>& items, ExportFormat format) {
  std::string out;
  for (const v1::QaItem* item : items) {
    // Invalid UTF-8 (which the loaders never produce) becomes U+FFFD instead
    // of throwing.
    out +=
        Line(*item, format).dump(-1, ' ', /*ensure_ascii=*/false, Json::error_handler_t::replace);
    out += '\n';
  }
  return out;
}

std::string ExportTrainingJsonl(const v1::Dataset& dataset, ExportFormat format) {
  std::vector<const v1::QaItem*> items;
  items.reserve(dataset.training_size());
  for (const v1::QaItem& item : dataset.training()) items.push_back(&item);
  return ExportJsonl(items, format);
}

}  // namespace ftb::datasets
