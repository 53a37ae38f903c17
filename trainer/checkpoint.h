// Model weights on disk.
//
// Format (little-endian): the 8 bytes "FTBMODL\0", u32 format version (1),
// u32 vocab_size, layers, width, heads, max_len, tie_embeddings (0/1), u64
// parameter count, the float32 parameters in Model layout, then the SHA-256
// of everything before it (32 bytes).
//
// SaveModel writes a temporary file next to `path`, fsyncs it and renames
// it over `path`, so a reader sees the old file, the new file or none, never
// a partial one; concurrent savers of the same path leave one complete file.
// Thread-safe.
#ifndef FTB_TRAINER_CHECKPOINT_H_
#define FTB_TRAINER_CHECKPOINT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "trainer/model.h"

namespace ftb::trainer {

// Errors: kInternal if the file cannot be written or renamed (the message
// names the path and the OS error); the directory must exist.
absl::Status SaveModel(const Model& model, const std::string& path);

// Errors: kNotFound if `path` does not exist; kDataLoss if it is not a
// weights file, is truncated, or its checksum does not match (the message
// names the path and what is wrong); kInternal on read errors;
// kInvalidArgument if the stored config is invalid.
absl::StatusOr<Model> LoadModel(const std::string& path);

}  // namespace ftb::trainer

#endif  // FTB_TRAINER_CHECKPOINT_H_
