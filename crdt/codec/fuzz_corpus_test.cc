// The fuzzer's seed corpus (crdt/codec/fuzz-corpus/): real encodings of
// samples of every type, each prefixed with the type's index in
// codec::testing::CodecTypes (the byte decode_fuzzer.cc dispatches on).
//
// The files are committed; this test fails when one no longer matches what
// the codec writes (the format changed), and rewrites them all when run with
// CONVERGE_UPDATE_FUZZ_CORPUS=1 in the environment, e.g.
//   CONVERGE_UPDATE_FUZZ_CORPUS=1 build/crdt/codec/converge_codec_tests
//   --gtest_filter='FuzzCorpusTest.*'
// Files named regression-* (inputs a fuzzer run found) are kept as they are.

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "crdt/codec/codec.h"
#include "crdt/codec/testing/sample_states.h"

#ifndef CONVERGE_CODEC_SOURCE_DIR
#error "CONVERGE_CODEC_SOURCE_DIR must name crdt/codec in the source tree"
#endif

namespace converge::codec {
namespace {

namespace fs = std::filesystem;

// File name -> content of every seed input.
std::map<std::string, std::string> SeedInputs() {
  std::map<std::string, std::string> inputs;
  testing::ForEachCodecType([&]<class T>(std::size_t index) {
    std::set<std::string> seen;
    for (const std::uint64_t seed : {1u, 2u, 3u}) {
      for (const auto& sample : testing::Samples<T>(seed)) {
        std::string bytes = Encode(sample.value);
        if (!seen.insert(bytes).second) continue;
        const std::string name = std::string(testing::kTypeNames[index]) + "-" + sample.name + "-" +
                                 std::to_string(seed) + ".bin";
        inputs[name] = std::string(1, static_cast<char>(index)) + bytes;
      }
    }
  });
  return inputs;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(FuzzCorpusTest, SeedCorpusIsCurrent) {
  const fs::path dir = fs::path(CONVERGE_CODEC_SOURCE_DIR) / "fuzz-corpus";
  const std::map<std::string, std::string> inputs = SeedInputs();
  const char* update = std::getenv("CONVERGE_UPDATE_FUZZ_CORPUS");
  if (update != nullptr && std::string(update) == "1") {
    fs::create_directories(dir);
    for (const auto& entry : fs::directory_iterator(dir)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind("regression-", 0) != 0 && inputs.count(name) == 0) fs::remove(entry.path());
    }
    for (const auto& [name, content] : inputs) {
      std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
      out.write(content.data(), static_cast<std::streamsize>(content.size()));
      ASSERT_TRUE(out.good()) << "cannot write " << dir / name;
    }
    std::cout << "[ corpus   ] wrote " << inputs.size() << " files to " << dir << "\n";
    return;
  }
  for (const auto& [name, content] : inputs) {
    EXPECT_EQ(ReadFile(dir / name), content)
        << dir / name << " is missing or stale: the encoding changed? Regenerate with "
        << "CONVERGE_UPDATE_FUZZ_CORPUS=1 (see fuzz_corpus_test.cc)";
  }
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    EXPECT_TRUE(name.rfind("regression-", 0) == 0 || inputs.count(name) == 1)
        << entry.path() << " is not a current seed input; regenerate the corpus";
  }
}

// Every seed input decodes as the type its first byte names, so the fuzzer
// starts from inputs that reach every type's decoder.
TEST(FuzzCorpusTest, SeedInputsDecode) {
  std::size_t count = 0;
  testing::ForEachCodecType([&]<class T>(std::size_t index) {
    for (const auto& [name, content] : SeedInputs()) {
      if (static_cast<std::size_t>(content[0]) != index) continue;
      const auto decoded = Decode<T>(std::string_view(content).substr(1));
      EXPECT_TRUE(decoded.ok()) << name << ": " << decoded.status();
      ++count;
    }
  });
  EXPECT_GT(count, 100u);
}

}  // namespace
}  // namespace converge::codec
