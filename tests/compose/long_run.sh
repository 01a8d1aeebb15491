#!/usr/bin/env bash
# tests/compose/long_run.sh — the composition test's long run, beyond what CI compiles:
#
#   bash tests/compose/long_run.sh <build-dir> <run-time trees> <static trees> [seed] [jobs]
#
# runs <run-time trees> trees of `seed` (default 2) on the run-time paths (fg::var fused and under
# fg::no_fusion, float64 and float32) with the build's fusegrad_compose_test, then compiles the
# first <static trees> of them into the static path (every entry point, as CI does for its seed),
# in translation units of 16 trees built `jobs` at a time (default: the number of cores), and runs
# them. The build directory must have been configured with tests (preset ci or dev) and built.
set -euo pipefail

build=${1:?build directory}
runtime_trees=${2:?run-time trees}
static_trees=${3:?static trees}
seed=${4:-2}
jobs=${5:-$(nproc)}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="$(cd "$build" && pwd)"
depth=4

cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
arch=$(sed -n 's/^FUSEGRAD_ARCH_FLAGS:[A-Z]*=//p' "$build/CMakeCache.txt" | tr ';' ' ')
flags="-std=c++20 $arch -I$root/include -I$here"

echo "==> run-time paths: $runtime_trees trees of seed $seed"
"$build/tests/fusegrad_compose_test" --cases "$runtime_trees" --seed "$seed"

((static_trees > 0)) || exit 0
work="$build/compose_long_run/seed_$seed"
mkdir -p "$work"
echo "==> static path: $static_trees trees of seed $seed, compiled in $work ($jobs at a time)"
start=$(date +%s)
per=16
sources=()
for ((b = 0; b < static_trees; b += per)); do
  e=$((b + per < static_trees ? b + per : static_trees))
  src="$work/trees_$b.cpp"
  "$build/tests/fusegrad_compose_generate" "$seed" "$depth" "$b" "$e" "$src"
  sources+=("$src")
done
printf '%s\n' "${sources[@]}" |
  xargs -P "$jobs" -I{} sh -c "[ {}.o -nt {} ] || $cxx $flags -O1 -c {} -o {}.o"
$cxx $flags -O2 -DFUSEGRAD_COMPOSE_SEED="$seed" -DFUSEGRAD_COMPOSE_DEPTH=$depth \
  "-DFUSEGRAD_COMPOSE_CXX=\"$cxx $flags -O1\"" -c "$here/compose_test.cpp" -o "$work/runner.o"
objects=()
for src in "${sources[@]}"; do objects+=("$src.o"); done
$cxx -rdynamic "$work/runner.o" "${objects[@]}" -ldl -o "$work/compose_test"
echo "    compiled in $(($(date +%s) - start)) s"
"$work/compose_test" --cases "$static_trees" --seed "$seed"
