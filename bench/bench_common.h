// What every benchmark binary of bench/ does at start: take bench/run's own
// flags out of argv and record how the binary was built in the JSON context
// (bench/report.py shows it beside each suite).

#ifndef CONVERGE_BENCH_BENCH_COMMON_H_
#define CONVERGE_BENCH_BENCH_COMMON_H_

#include <benchmark/benchmark.h>

#include <cstring>
#include <string>

namespace converge::bench {

// Removes `flag` from argv; returns whether it was there.
inline bool TakeFlag(int& argc, char** argv, const char* flag) {
  bool found = false;
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], flag) == 0) {
      found = true;
    } else {
      argv[out++] = argv[i];
    }
  }
  argc = out;
  argv[argc] = nullptr;
  return found;
}

inline void AddBuildContext(bool quick) {
#if defined(__clang__)
  benchmark::AddCustomContext("converge_compiler", std::string("clang ") + __clang_version__);
#elif defined(__GNUC__)
  benchmark::AddCustomContext("converge_compiler", std::string("g++ ") + __VERSION__);
#endif
#ifdef CONVERGE_BENCH_BUILD_TYPE
  benchmark::AddCustomContext("converge_build_type", CONVERGE_BENCH_BUILD_TYPE);
#endif
#ifdef NDEBUG
  benchmark::AddCustomContext("converge_assertions", "off");
#else
  benchmark::AddCustomContext("converge_assertions", "on");
#endif
  benchmark::AddCustomContext("converge_mode", quick ? "quick" : "full");
}

}  // namespace converge::bench

#endif  // CONVERGE_BENCH_BENCH_COMMON_H_
