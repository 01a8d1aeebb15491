#!/usr/bin/env bash
# fusegrad's single entry point for users and CI.
#
#   bash cmake/fusegrad.sh test                  configure + build + run every test (preset ci)
#   bash cmake/fusegrad.sh quickstart            build and run examples/quickstart (preset quickstart)
#   bash cmake/fusegrad.sh fashion_mnist [epochs] the main job: train the CNN on Fashion-MNIST to
#                                                90% test accuracy, save it, reload it and check it
#   bash cmake/fusegrad.sh bench [filter] [args] build (preset bench) and run every benchmark with
#                                                --benchmark_filter=<filter> (default: all); extra
#                                                arguments go to each benchmark binary
#   bash cmake/fusegrad.sh safetensors_bench [args]  load a 1 GiB safetensors file, fusegrad
#                                                against PyPI's safetensors (in a venv under
#                                                build/), same rounds (benchmarks/safetensors_load.py)
#   bash cmake/fusegrad.sh compile_bench [args]  W1 and W5: fusegrad's static, traced and eager
#                                                paths against PyTorch 2.x torch.compile and
#                                                jax.jit (PyPI, in a venv under build/: several
#                                                GB), same rounds (benchmarks/compiled_peers.py)
#
# Each command first installs the Debian packages it needs and lacks (apt-get; sudo if not root).
# Works from any directory.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'fusegrad.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

# ensure_packages PKG... : install the given Debian packages that `dpkg -s` says are missing.
ensure_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    if dpkg -s "$pkg" >/dev/null 2>&1; then
      :
    else
      missing+=("$pkg")
    fi
  done
  if ((${#missing[@]} == 0)); then
    step "Debian packages present: $*"
    return 0
  fi
  command -v apt-get >/dev/null 2>&1 ||
    die "missing packages (${missing[*]}) and no apt-get: install them by hand"
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 ||
      die "missing packages (${missing[*]}): run as root or install sudo"
    sudo=(sudo)
  fi
  step "Installing missing Debian packages: ${missing[*]}"
  "${sudo[@]}" apt-get update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
}

# nlohmann-json3-dev: the safetensors header's JSON (fg::io, fg::nn checkpoints).
BASE_PKGS=(cmake g++ make libxsimd-dev xtl-dev nlohmann-json3-dev)
# The Cortex-M cross toolchain and QEMU run the embedded example as firmware (tests/CMakeLists.txt).
EMBEDDED_PKGS=(gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib
  qemu-system-arm)
# zlib reads the gzip IDX data sets; python3-numpy checks safetensors files against Python, and
# python3-torch (1.13) is the reference of tests/dynamic/torch_parity.py; python3-venv makes the
# venv in which PyPI's ONNX Runtime checks our ONNX files (tests/io/onnx_check.py); the
# main job's test trains on Debian's Fashion-MNIST; libblas-dev is fg::nn's optional BLAS (its
# products are tested against our own GEMM); clang checks the headers a second time and, with
# its libFuzzer runtime (libclang-rt-14-dev), fuzzes the loaders (tests/fuzz).
TEST_PKGS=("${BASE_PKGS[@]}" doctest-dev libbenchmark-dev libeigen3-dev zlib1g-dev python3-numpy
  python3-torch python3-venv dataset-fashion-mnist libblas-dev clang libclang-rt-14-dev "${EMBEDDED_PKGS[@]}")

cmd_test() {
  ensure_packages "${TEST_PKGS[@]}"
  step "cmake --workflow --preset ci"
  cmake --workflow --preset ci
}

cmd_quickstart() {
  ensure_packages "${BASE_PKGS[@]}"
  step "cmake --preset quickstart"
  cmake --preset quickstart
  step "cmake --build --preset quickstart --target quickstart"
  cmake --build --preset quickstart --target quickstart
  step "build/quickstart/examples/quickstart"
  ./build/quickstart/examples/quickstart
}

cmd_fashion_mnist() {
  ensure_packages "${BASE_PKGS[@]}" zlib1g-dev dataset-fashion-mnist
  step "cmake --preset quickstart"
  cmake --preset quickstart
  step "cmake --build --preset quickstart --target fashion_mnist"
  cmake --build --preset quickstart --target fashion_mnist
  step "build/quickstart/examples/fashion_mnist $*"
  (cd build/quickstart/examples && ./fashion_mnist "$@")
}

cmd_bench() {
  local filter="${1:-.}"
  (($# > 0)) && shift
  ensure_packages "${TEST_PKGS[@]}" libadolc-dev libtorch-dev libopenblas0-openmp libtbb-dev
  step "cmake --preset bench"
  cmake --preset bench
  step "cmake --build --preset bench"
  cmake --build --preset bench
  local list="build/bench/benchmarks/benchmarks.txt"
  [[ -f $list ]] || die "$list not found (no benchmarks/*.cpp?)"
  local ran=0 bin
  while IFS= read -r bin; do
    [[ -n $bin ]] || continue
    if [[ $bin == *adolc* ]]; then
      # ADOL-C: one process per case (a large tape slows later small ones; BENCHMARKS.md).
      local case
      while IFS= read -r case; do
        step "$bin --benchmark_filter=^${case}\$ $*"
        "$bin" "--benchmark_filter=^${case}\$" "$@"
      done < <("$bin" "--benchmark_filter=$filter" --benchmark_list_tests)
    else
      step "$bin --benchmark_filter=$filter $*"
      "$bin" "--benchmark_filter=$filter" "$@"
    fi
    ran=$((ran + 1))
  done <"$list"
  ((ran > 0)) || die "no benchmark binaries listed in $list"
  step "ran $ran benchmark binaries"
}

# bench_in_venv VENV "PYPI PACKAGES" "TARGETS" SCRIPT [args]: a Python peer from PyPI in a venv
# under build/, the C++ side built (preset bench), and the script comparing them run with args.
bench_in_venv() {
  local venv=$1 pkgs=$2 targets=$3 script=$4
  shift 4
  ensure_packages "${TEST_PKGS[@]}" util-linux
  local modules=${pkgs// /, }
  if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c "import $modules" 2>/dev/null; then
    step "python3 -m venv $venv && pip install $pkgs"
    python3 -m venv "$venv"
    # shellcheck disable=SC2086  # the package list is meant to split
    "$venv/bin/pip" install --quiet $pkgs
  fi
  step "cmake --preset bench && build $targets"
  cmake --preset bench
  # shellcheck disable=SC2086  # the target list is meant to split
  cmake --build --preset bench --target $targets
  step "$script $*"
  "$venv/bin/python" "$script" "$@"
}

cmd_safetensors_bench() {
  bench_in_venv build/venv-bench "safetensors numpy" fusegrad_bench_safetensors_load \
    benchmarks/safetensors_load.py --bench build/bench/benchmarks/safetensors_load "$@"
}

cmd_compile_bench() {
  bench_in_venv build/venv-compile "torch numpy jax" "fusegrad_bench_w1 fusegrad_bench_w5" \
    benchmarks/compiled_peers.py --w1 build/bench/benchmarks/w1 --w5 build/bench/benchmarks/w5 "$@"
}

main() {
  local cmd="${1:-}"
  (($# > 0)) && shift
  case "$cmd" in
    test) cmd_test "$@" ;;
    quickstart) cmd_quickstart "$@" ;;
    fashion_mnist) cmd_fashion_mnist "$@" ;;
    bench) cmd_bench "$@" ;;
    safetensors_bench) cmd_safetensors_bench "$@" ;;
    compile_bench) cmd_compile_bench "$@" ;;
    -h | --help | help) usage ;;
    *)
      usage >&2
      die "unknown command '${cmd}' (expected test, quickstart, fashion_mnist, bench, safetensors_bench or compile_bench)"
      ;;
  esac
}

main "$@"
