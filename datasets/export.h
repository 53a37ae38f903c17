// Training-file export in the formats tuning APIs accept. Thread-safe.
#ifndef FTB_DATASETS_EXPORT_H_
#define FTB_DATASETS_EXPORT_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ftb/v1/dataset.pb.h"

namespace ftb::datasets {

enum class ExportFormat {
  // {"messages":[{"role":"user","content":Q},{"role":"assistant","content":A}]}
  kOpenAiChat,
  // {"contents":[{"role":"user","parts":[{"text":Q}]},{"role":"model","parts":[{"text":A}]}]}
  kVertex,
};

// "openai" or "vertex"; nullopt otherwise.
std::optional<ExportFormat> ParseExportFormat(std::string_view name);

// One JSON object per line (keys in the order shown above, each line ending
// in '\n'), one line per item, in order; Q is the item's prompt and A its
// answer. UTF-8 is kept as is (not \u-escaped); invalid UTF-8 is replaced by
// U+FFFD. No items give an empty string.
std::string ExportJsonl(const std::vector<const v1::QaItem*>& items, ExportFormat format);
// ExportJsonl over dataset.training().
std::string ExportTrainingJsonl(const v1::Dataset& dataset, ExportFormat format);

}  // namespace ftb::datasets

#endif  // FTB_DATASETS_EXPORT_H_
