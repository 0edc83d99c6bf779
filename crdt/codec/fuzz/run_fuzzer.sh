#!/usr/bin/env bash
# Builds the codec's libFuzzer target with clang and runs it over the seed
# corpus (TESTPLAN S2).
#
#   crdt/codec/fuzz/run_fuzzer.sh <source dir> <work dir> <runs> [libFuzzer flags...]
#
# <work dir> receives the fuzzer build (build/), the corpus of inputs found
# in this and earlier runs (corpus/; the seed corpus in
# crdt/codec/fuzz-corpus/ is only read) and crash reproducers (artifacts/).
# Runs until <runs> executions; fails on any crash, sanitizer report, leak,
# timeout or abort of the target. Prints the figures (executions, exec/s,
# coverage) last. FUZZ_SEED=<n> replays a run (libFuzzer prints "Seed: n").
#
# Exits 77 (ctest SKIP_RETURN_CODE) when clang-14 or its libFuzzer runtime
# is missing.
set -euo pipefail

if (($# < 3)); then
  echo "usage: $0 <source dir> <work dir> <runs> [libFuzzer flags...]" >&2
  exit 2
fi
readonly source_dir="$1" work_dir="$2" runs="$3"
shift 3
readonly skip=77

cxx="${FUZZ_CXX:-clang++-14}"
cc="${FUZZ_CC:-clang-14}"
if ! command -v "${cxx}" >/dev/null 2>&1; then
  echo "SKIPPED: ${cxx} not found; the fuzzer needs clang with libFuzzer" \
    "(Debian: apt-get install clang-14 libclang-rt-14-dev)"
  exit "${skip}"
fi
runtime_dir="$("${cxx}" -print-runtime-dir 2>/dev/null || true)"
if ! ls "${runtime_dir}"/libclang_rt.fuzzer*.a >/dev/null 2>&1; then
  echo "SKIPPED: no libFuzzer runtime in '${runtime_dir}' (Debian: apt-get install libclang-rt-14-dev)"
  exit "${skip}"
fi

mkdir -p "${work_dir}/build" "${work_dir}/corpus" "${work_dir}/artifacts"
build_dir="${work_dir}/build"
generator=()
if [[ ! -f "${build_dir}/CMakeCache.txt" ]] && command -v ninja >/dev/null 2>&1; then
  generator=(-G Ninja)
fi
echo "==> building the fuzzer with ${cxx} in ${build_dir}"
if ! cmake -S "${source_dir}/crdt/codec/fuzz" -B "${build_dir}" "${generator[@]}" \
  -DCMAKE_CXX_COMPILER="${cxx}" -DCMAKE_C_COMPILER="${cc}" >"${work_dir}/configure.log" 2>&1; then
  cat "${work_dir}/configure.log"
  echo "run_fuzzer: configuring the fuzzer failed" >&2
  exit 1
fi
cmake --build "${build_dir}"

seed_args=()
if [[ -n "${FUZZ_SEED:-}" ]]; then seed_args=("-seed=${FUZZ_SEED}"); fi
log="${work_dir}/fuzz.log"
echo "==> ${runs} executions over ${source_dir}/crdt/codec/fuzz-corpus"
status=0
"${build_dir}/converge_decode_fuzzer" \
  -runs="${runs}" -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="${work_dir}/artifacts/" "${seed_args[@]}" "$@" \
  "${work_dir}/corpus" "${source_dir}/crdt/codec/fuzz-corpus" >"${log}" 2>&1 || status=$?
# Initialisation, then the last status lines, the final stats and any report.
grep -E "Seed:|INFO: seed corpus|INITED|DONE|ERROR|SUMMARY|stat::|Test unit written|decode_fuzzer:|==[0-9]+==" \
  "${log}" | tail -n 40 || true
if ((status != 0)); then
  echo "run_fuzzer: the fuzzer failed (exit ${status}); full log: ${log}" >&2
  tail -n 60 "${log}" >&2
  exit 1
fi
done_line="$(grep -E "^#[0-9]+[[:space:]]+DONE" "${log}" | tail -n 1)"
execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "${log}" | tail -n 1)"
rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "${log}" | tail -n 1)"
cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"${done_line}")"
ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"${done_line}")"
corpus="$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"${done_line}")"
echo "fuzz figures: executions=${execs} exec/s=${rate} cov=${cov} ft=${ft} corpus=${corpus} crashes=0"
