#!/usr/bin/env bash
# Builds one of converge's libFuzzer targets with clang and runs it over its
# seed corpus (TESTPLAN S2).
#
#   crdt/codec/fuzz/run_fuzzer.sh [options] <source dir> <work dir> <runs> [libFuzzer flags...]
#
# Options (paths relative to <source dir>); without any, the codec's fuzzer:
#   --project DIR   the fuzzer's CMake project          (crdt/codec/fuzz)
#   --target NAME   the fuzzer executable it builds     (converge_decode_fuzzer)
#   --corpus DIR    the seed corpus, only read          (crdt/codec/fuzz-corpus)
#   --max-len N     the longest input libFuzzer makes   (4096)
#   --dict FILE     a libFuzzer dictionary              (none)
# The other fuzzers:
#   replication/fuzz (converge_frame_fuzzer, replication/fuzz/corpus)
#   examples/cart/fuzz (converge_http_fuzzer, examples/cart/fuzz/corpus)
#
# <work dir> receives the fuzzer build (build/), the corpus of inputs found
# in this and earlier runs (corpus/; the seed corpus is only read) and crash
# reproducers (artifacts/); one work dir per fuzzer. Runs until <runs>
# executions; fails on any crash, sanitizer report, leak, timeout or abort of
# the target. Prints the figures (executions, exec/s, coverage) last.
# FUZZ_SEED=<n> replays a run (libFuzzer prints "Seed: n").
#
# Exits 77 (ctest SKIP_RETURN_CODE) when clang-14 or its libFuzzer runtime
# is missing.
set -euo pipefail

project=crdt/codec/fuzz
target=converge_decode_fuzzer
corpus_rel=crdt/codec/fuzz-corpus
max_len=4096
dict=
while (($# > 0)); do
  case "$1" in
    --project) project="$2"; shift 2 ;;
    --target) target="$2"; shift 2 ;;
    --corpus) corpus_rel="$2"; shift 2 ;;
    --max-len) max_len="$2"; shift 2 ;;
    --dict) dict="$2"; shift 2 ;;
    --) shift; break ;;
    --*) echo "run_fuzzer: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done

if (($# < 3)); then
  echo "usage: $0 [--project DIR --target NAME --corpus DIR --max-len N --dict FILE]" \
    "<source dir> <work dir> <runs> [libFuzzer flags...]" >&2
  exit 2
fi
readonly source_dir="$1" work_dir="$2" runs="$3"
shift 3
readonly skip=77
readonly seed_corpus="${source_dir}/${corpus_rel}"

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
if ! cmake -S "${source_dir}/${project}" -B "${build_dir}" "${generator[@]}" \
  -DCMAKE_CXX_COMPILER="${cxx}" -DCMAKE_C_COMPILER="${cc}" >"${work_dir}/configure.log" 2>&1; then
  cat "${work_dir}/configure.log"
  echo "run_fuzzer: configuring the fuzzer failed" >&2
  exit 1
fi
cmake --build "${build_dir}" --target "${target}"

extra_args=()
if [[ -n "${FUZZ_SEED:-}" ]]; then extra_args+=("-seed=${FUZZ_SEED}"); fi
if [[ -n "${dict}" ]]; then extra_args+=("-dict=${source_dir}/${dict}"); fi
log="${work_dir}/fuzz.log"
echo "==> ${runs} executions over ${seed_corpus}"
status=0
"${build_dir}/${target}" \
  -runs="${runs}" -max_len="${max_len}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="${work_dir}/artifacts/" "${extra_args[@]}" "$@" \
  "${work_dir}/corpus" "${seed_corpus}" >"${log}" 2>&1 || status=$?
# Initialisation, then the last status lines, the final stats and any report.
grep -E "Seed:|INFO: seed corpus|INITED|DONE|ERROR|SUMMARY|stat::|Test unit written|[a-z]+_fuzzer:|==[0-9]+==" \
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
