// Training-file export in the formats tuning APIs accept. Thread-safe.
#ifndef FTB_DATASETS_EXPORT_H_
#define FTB_DATASETS_EXPORT_H_

#include <string>
#include <string_view>
#include <optional>
#include <vector>

#include "ftb/v1/dataset.pb.h"

namespace ftb::datasets {

enum class ExportFormat {
  // {"messages":[{"role":"user","content":Q},{"role":"assistant","content":A}]}
  kOpenAiChat,
  // {"contents":[{"role":"user","parts":[{"text":Q}]},{"role":"model","parts":[{"text":A}]}]}
  kVertex,
};

std::optional<ExportFormat> ParseExportFormat(std::string_view name);

// One JSON object per line, one line per item, in order; UTF-8 kept as is.
std::string ExportJsonl(const std::vector<const v1::QaItem*>& items,
                        ExportFormat format);
std::string ExportTrainingJsonl(const v1::Dataset& dataset, ExportFormat format);

}  // namespace ftb::datasets

#endif  // FTB_DATASETS_EXPORT_H_
