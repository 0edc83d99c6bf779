// Small helpers shared by the storage tests: scratch directories, and the
// seed and round count of the fault tests.

#ifndef CONVERGE_STORAGE_TESTING_TEST_UTIL_H_
#define CONVERGE_STORAGE_TESTING_TEST_UTIL_H_

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <system_error>

namespace converge::storage::testing {

// A fresh directory under `parent` (::testing::TempDir() in tests), removed
// with everything in it when the object goes.
class ScratchDir {
 public:
  ScratchDir(const std::string& parent, const std::string& name) {
    static std::atomic<int> sequence{0};
    path_ =
        (std::filesystem::path(parent) /
         ("converge-" + name + "-" + std::to_string(::getpid()) + "-" + std::to_string(sequence++)))
            .string();
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
    std::filesystem::create_directories(path_, ec);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// CONVERGE_FAULT_ROUNDS, or `fallback` when unset: how many kills, power
// losses or fault windows a fault test runs (the "slow" ctest label sets
// it high).
inline int FaultRounds(int fallback) {
  const char* env = std::getenv("CONVERGE_FAULT_ROUNDS");
  if (env == nullptr || *env == '\0') return fallback;
  const int rounds = std::atoi(env);
  return rounds > 0 ? rounds : fallback;
}

// CONVERGE_FAULT_SEED to replay a run, else a fresh one; tests print it.
inline std::uint64_t FaultSeed() {
  if (const char* env = std::getenv("CONVERGE_FAULT_SEED"); env != nullptr && *env != '\0') {
    return std::strtoull(env, nullptr, 10);
  }
  std::random_device device;
  return (std::uint64_t{device()} << 32) ^ device();
}

}  // namespace converge::storage::testing

#endif  // CONVERGE_STORAGE_TESTING_TEST_UTIL_H_
