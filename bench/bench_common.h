// What every benchmark binary of bench/ does at start: take bench/run's own
// flags out of argv, record how the binary was built in the JSON context
// (bench/report.py shows it beside each suite), and run.

#ifndef CONVERGE_BENCH_BENCH_COMMON_H_
#define CONVERGE_BENCH_BENCH_COMMON_H_

#include <benchmark/benchmark.h>

#include <cstring>
#include <string>

namespace converge::bench {

// Removes `--name` (or, given `value`, also `--name=value`) from argv;
// returns whether it was there and stores the value.
inline bool TakeFlag(int& argc, char** argv, const char* name, std::string* value = nullptr) {
  bool found = false;
  int out = 1;
  const std::string prefix = std::string(name) + "=";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) {
      found = true;
    } else if (value != nullptr && std::strncmp(argv[i], prefix.c_str(), prefix.size()) == 0) {
      found = true;
      *value = argv[i] + prefix.size();
    } else {
      argv[out++] = argv[i];
    }
  }
  argc = out;
  argv[argc] = nullptr;
  return found;
}

// Compiler, build type and flags, optimization, assertions, and the mode.
inline void AddBuildContext(bool quick) {
#if defined(__clang__)
  benchmark::AddCustomContext("converge_compiler", std::string("clang ") + __clang_version__);
#elif defined(__GNUC__)
  benchmark::AddCustomContext("converge_compiler", std::string("g++ ") + __VERSION__);
#endif
#ifdef CONVERGE_BENCH_BUILD_TYPE
  benchmark::AddCustomContext("converge_build_type", CONVERGE_BENCH_BUILD_TYPE);
#endif
#ifdef CONVERGE_BENCH_CXX_FLAGS
  benchmark::AddCustomContext("converge_cxx_flags", CONVERGE_BENCH_CXX_FLAGS);
#endif
#ifdef __OPTIMIZE__
  benchmark::AddCustomContext("converge_optimized", "yes");
#else
  benchmark::AddCustomContext("converge_optimized", "no");
#endif
#ifdef NDEBUG
  benchmark::AddCustomContext("converge_assertions", "off");
#else
  benchmark::AddCustomContext("converge_assertions", "on");
#endif
  benchmark::AddCustomContext("converge_mode", quick ? "quick" : "full");
}

// Runs the registered benchmarks with the remaining flags; the exit status.
inline int RunRegistered(int& argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

// The whole main() of a suite whose only flag is --quick:
// register_all(quick) registers its benchmarks.
template <class Register>
int QuickMain(int argc, char** argv, Register register_all) {
  const bool quick = TakeFlag(argc, argv, "--quick");
  AddBuildContext(quick);
  register_all(quick);
  return RunRegistered(argc, argv);
}

}  // namespace converge::bench

#endif  // CONVERGE_BENCH_BENCH_COMMON_H_
