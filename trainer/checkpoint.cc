#include "trainer/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/hash.h"

namespace ftb::trainer {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the weights format is little-endian; add byte swapping for this platform");

constexpr char kMagic[8] = {'F', 'T', 'B', 'M', 'O', 'D', 'L', '\0'};
constexpr uint32_t kFormatVersion = 1;
constexpr size_t kHeaderSize = sizeof(kMagic) + 7 * sizeof(uint32_t) + sizeof(uint64_t);
constexpr size_t kDigestSize = 32;

template <typename T>
void Append(std::string* out, T value) {
  out->append(reinterpret_cast<const char*>(&value), sizeof(value));
}

template <typename T>
T Read(std::string_view data, size_t* offset) {
  T value;
  std::memcpy(&value, data.data() + *offset, sizeof(T));
  *offset += sizeof(T);
  return value;
}

std::string ErrnoText() { return std::strerror(errno); }

absl::Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat("writing ", path, ": ", ErrnoText()));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SaveModel(const Model& model, const std::string& path) {
  const ModelConfig& c = model.config();
  std::string data;
  data.reserve(kHeaderSize + model.parameters().size() * sizeof(float) + kDigestSize);
  data.append(kMagic, sizeof(kMagic));
  Append<uint32_t>(&data, kFormatVersion);
  Append<uint32_t>(&data, static_cast<uint32_t>(c.vocab_size));
  Append<uint32_t>(&data, static_cast<uint32_t>(c.layers));
  Append<uint32_t>(&data, static_cast<uint32_t>(c.width));
  Append<uint32_t>(&data, static_cast<uint32_t>(c.heads));
  Append<uint32_t>(&data, static_cast<uint32_t>(c.max_len));
  Append<uint32_t>(&data, c.tie_embeddings ? 1u : 0u);
  Append<uint64_t>(&data, model.parameters().size());
  data.append(reinterpret_cast<const char*>(model.parameters().data()),
              model.parameters().size() * sizeof(float));
  Sha256 hash;
  hash.Update(data);
  const std::array<uint8_t, 32> digest = hash.Finish();
  data.append(reinterpret_cast<const char*>(digest.data()), digest.size());

  static std::atomic<uint64_t> counter{0};
  const std::string temp = absl::StrCat(path, ".tmp.", ::getpid(), ".", counter.fetch_add(1));
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return absl::InternalError(absl::StrCat("creating ", temp, ": ", ErrnoText()));
  absl::Status status = WriteAll(fd, data, temp);
  if (status.ok() && ::fsync(fd) != 0) {
    status = absl::InternalError(absl::StrCat("syncing ", temp, ": ", ErrnoText()));
  }
  if (::close(fd) != 0 && status.ok()) {
    status = absl::InternalError(absl::StrCat("closing ", temp, ": ", ErrnoText()));
  }
  if (status.ok() && ::rename(temp.c_str(), path.c_str()) != 0) {
    status = absl::InternalError(absl::StrCat("renaming ", temp, " to ", path, ": ", ErrnoText()));
  }
  if (!status.ok()) ::unlink(temp.c_str());
  return status;
}

absl::StatusOr<Model> LoadModel(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
    return absl::InternalError(absl::StrCat("opening ", path, ": ", ErrnoText()));
  }
  std::string data;
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string error = ErrnoText();
      ::close(fd);
      return absl::InternalError(absl::StrCat("reading ", path, ": ", error));
    }
    if (n == 0) break;
    data.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);

  if (data.size() < kHeaderSize + kDigestSize ||
      std::memcmp(data.data(), kMagic, sizeof(kMagic)) != 0) {
    return absl::DataLossError(absl::StrCat(path, ": not a weights file (bad magic or too short)"));
  }
  size_t offset = sizeof(kMagic);
  const uint32_t version = Read<uint32_t>(data, &offset);
  if (version != kFormatVersion) {
    return absl::DataLossError(
        absl::StrCat(path, ": format version ", version, ", expected ", kFormatVersion));
  }
  ModelConfig config;
  config.vocab_size = static_cast<int>(Read<uint32_t>(data, &offset));
  config.layers = static_cast<int>(Read<uint32_t>(data, &offset));
  config.width = static_cast<int>(Read<uint32_t>(data, &offset));
  config.heads = static_cast<int>(Read<uint32_t>(data, &offset));
  config.max_len = static_cast<int>(Read<uint32_t>(data, &offset));
  config.tie_embeddings = Read<uint32_t>(data, &offset) != 0;
  const uint64_t count = Read<uint64_t>(data, &offset);
  if (count > (data.size() - kHeaderSize - kDigestSize) / sizeof(float) ||
      data.size() != kHeaderSize + count * sizeof(float) + kDigestSize) {
    return absl::DataLossError(absl::StrCat(path, ": ", data.size(), " bytes, but the header says ",
                                            count, " parameters (truncated or padded)"));
  }
  Sha256 hash;
  hash.Update(std::string_view(data).substr(0, data.size() - kDigestSize));
  const std::array<uint8_t, 32> digest = hash.Finish();
  if (std::memcmp(digest.data(), data.data() + data.size() - kDigestSize, kDigestSize) != 0) {
    return absl::DataLossError(absl::StrCat(path, ": checksum mismatch"));
  }
  std::vector<float> parameters(count);
  std::memcpy(parameters.data(), data.data() + kHeaderSize, count * sizeof(float));
  absl::StatusOr<Model> model = Model::FromParameters(config, parameters);
  if (!model.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", model.status().message()));
  }
  return model;
}

}  // namespace ftb::trainer
