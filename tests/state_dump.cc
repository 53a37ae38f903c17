// ftb_state_dump DIR: writes every key and value of a RocksDB state
// directory to stdout, decompressed (values are raw protobuf bytes, so
// strings in them appear verbatim). For tests that grep stored state: SST
// files are compressed, so grepping the directory alone could miss a value.
#include <iostream>

#include "storage/rocksdb_state_store.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: ftb_state_dump STATE_DIR\n";
    return 2;
  }
  auto store = ftb::storage::RocksDbStateStore::Open(argv[1]);
  if (!store.ok()) {
    std::cerr << "ftb_state_dump: " << store.status().message() << "\n";
    return 1;
  }
  size_t entries = 0;
  absl::Status s = (*store)->Scan("", {}, [&](std::string_view key, std::string_view value) {
    std::cout << key << "\t" << value << "\n";
    ++entries;
    return true;
  });
  if (!s.ok()) {
    std::cerr << "ftb_state_dump: " << s.message() << "\n";
    return 1;
  }
  std::cerr << "ftb_state_dump: " << entries << " entries\n";
  return 0;
}
