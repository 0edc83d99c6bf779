// converge_storage_crash_writer: the process that fault tests kill.
//
// Opens a RocksStore and applies random cart updates (CartWorkload) until
// killed or --ops updates were made, then closes the store. Every
// acknowledged update is reported on stdout as one Ledger line, written with
// a single writev(2) after storage::Update returned ok, so a SIGKILL never
// leaves half a line and an update is never reported before it is durable.
// Lines starting with '#' are comments (identity, failures).
//
//   converge_storage_crash_writer --dir D [--durability sync|buffered]
//       [--seed N] [--keys N] [--items N] [--ops N] [--boot-id ID]
//       [--dot-lease-block N]
//
// Exit status: 0 after --ops updates and a clean Close, 2 on a usage or
// open error, 3 if Close failed.

#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "storage/rocks_store.h"
#include "storage/testing/cart_workload.h"

namespace {

// One writev per line: atomic on a pipe (below PIPE_BUF) and untouched by
// fiu's posix/io/rw/write fault point, which the disk-fault test enables.
void EmitLine(const std::string& text) {
  std::string line = text + "\n";
  const char* data = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    iovec v{const_cast<char*>(data), left};
    const ssize_t n = ::writev(STDOUT_FILENO, &v, 1);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      std::_Exit(4);  // the reader is gone
    }
    data += n;
    left -= static_cast<std::size_t>(n);
  }
}

bool ParseU64(const char* text, std::uint64_t* out) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0') return false;
  *out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  using converge::storage::Durability;
  std::string dir;
  converge::storage::RocksStoreOptions options;
  std::uint64_t seed = 1;
  std::uint64_t keys = 8;
  std::uint64_t items = 4;
  std::uint64_t ops = 0;  // 0: until killed
  options.dot_lease_block = 16;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    const char* value = argv[i + 1];
    bool ok = true;
    if (flag == "--dir") {
      dir = value;
    } else if (flag == "--durability") {
      const std::string_view d = value;
      ok = d == "sync" || d == "buffered";
      options.durability = d == "sync" ? Durability::kSync : Durability::kBuffered;
    } else if (flag == "--seed") {
      ok = ParseU64(value, &seed);
    } else if (flag == "--keys") {
      ok = ParseU64(value, &keys) && keys > 0;
    } else if (flag == "--items") {
      ok = ParseU64(value, &items) && items > 0;
    } else if (flag == "--ops") {
      ok = ParseU64(value, &ops);
    } else if (flag == "--boot-id") {
      options.boot_id = value;
    } else if (flag == "--dot-lease-block") {
      ok = ParseU64(value, &options.dot_lease_block);
    } else {
      ok = false;
    }
    if (!ok) {
      EmitLine("# bad flag " + std::string(flag) + " " + value);
      return 2;
    }
  }
  if (dir.empty() || argc % 2 == 0) {
    EmitLine("# usage: converge_storage_crash_writer --dir D [--durability sync|buffered] ...");
    return 2;
  }
  options.registry = std::make_shared<converge::codec::TypeRegistry>(
      converge::codec::TypeRegistry::WithBuiltins());
  auto store = converge::storage::RocksStore::Open(dir, options);
  if (!store.ok()) {
    EmitLine("# open failed: " + store.status().ToString());
    return 2;
  }
  const converge::storage::Identity id = (*store)->identity();
  EmitLine("# id " + std::to_string(id.replica.value()) + " incarnation " +
           std::to_string(id.incarnation) + " crashed " +
           std::to_string(id.recovered_from_crash ? 1 : 0) + " lease " +
           std::to_string((*store)->dot_lease_end()));
  converge::storage::testing::CartWorkload workload(seed, static_cast<int>(keys),
                                                    static_cast<int>(items));
  std::uint64_t failures = 0;
  for (std::uint64_t done = 0; ops == 0 || done < ops; ++done) {
    const converge::Status s = workload.Step(**store, EmitLine);
    if (!s.ok()) {
      ++failures;
      EmitLine("# fail " + s.ToString());
      ::usleep(1000);  // a failing disk: do not spin
    }
  }
  const converge::Status closed = (*store)->Close();
  EmitLine("# closed " + closed.ToString() + " failures " + std::to_string(failures) +
           " recoveries " + std::to_string((*store)->disk_error_recoveries()));
  return closed.ok() ? 0 : 3;
}
