# Shared by scripts/test and scripts/demo (sourced, not run): the Debian
# packages converge builds, tests and runs with, and the configure step.

# Debian 12 packages the project builds, tests, benchmarks and demos with.
CONVERGE_PACKAGES=(
  build-essential cmake ninja-build pkg-config curl ca-certificates
  googletest libgtest-dev libgmock-dev libbenchmark-dev librapidcheck-dev
  libboost-dev libboost-system-dev librocksdb-dev rocksdb-tools
  libcapnp-dev capnproto prometheus-cpp-dev libcli11-dev nlohmann-json3-dev
  libspdlog-dev libfmt-dev libssl-dev openssl
  clang-14 libclang-rt-14-dev clang-format
  iproute2 iptables fiu-utils faketime wrk gnuplot-nox nginx-light slowhttptest
  python3 valgrind chromium
)

# converge_install_packages TOOL [PACKAGE...]: installs the missing ones (as
# root), or says how to and returns 1.
converge_install_packages() {
  local tool=$1
  shift
  local missing=() pkg status
  for pkg in "$@"; do
    status="$(dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null || true)"
    [[ "${status}" == "install ok installed" ]] || missing+=("${pkg}")
  done
  if ((${#missing[@]} == 0)); then
    printf '==> all %d Debian packages present\n' "$#"
    return 0
  fi
  if ((EUID != 0)); then
    echo "${tool}: missing Debian packages: ${missing[*]}" >&2
    echo "${tool}: run as root, or install them with:" >&2
    echo "  sudo apt-get install --no-install-recommends ${missing[*]}" >&2
    return 1
  fi
  printf '==> installing missing Debian packages: %s\n' "${missing[*]}"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

# converge_configure SOURCE_DIR BUILD_DIR [CMAKE ARGS...]: configures with
# CMake (Ninja when available for a new tree).
converge_configure() {
  local source_dir=$1 build_dir=$2
  shift 2
  local args=(-S "${source_dir}" -B "${build_dir}")
  if [[ ! -f "${build_dir}/CMakeCache.txt" ]] && command -v ninja >/dev/null 2>&1; then
    args+=(-G Ninja)
  fi
  printf '==> configuring: cmake %s\n' "${args[*]} $*"
  cmake "${args[@]}" "$@"
}
