// tests/compose/generate.cpp — writes the static-path half of the composition test: trees
// [begin, end) of a seed, each compiled for its variants (variants.hpp), into one translation
// unit.
//
//   compose_generate <seed> <depth> <begin> <end> <out.cpp>
// SPDX-License-Identifier: MIT

#include "emit.hpp"

#include <cstdlib>
#include <fstream>
#include <iostream>

int main(int argc, char** argv) {
  if (argc != 6) {
    std::cerr << "usage: compose_generate <seed> <depth> <begin> <end> <out.cpp>\n";
    return 2;
  }
  const std::uint64_t seed = std::strtoull(argv[1], nullptr, 10);
  const int depth = std::atoi(argv[2]);
  const std::size_t begin = std::strtoull(argv[3], nullptr, 10);
  const std::size_t end = std::strtoull(argv[4], nullptr, 10);
  std::ofstream o(argv[5]);
  compose::emit_begin(o, "seed " + std::to_string(seed) + ", depth " + std::to_string(depth) +
                             ", trees " + std::to_string(begin) + " to " + std::to_string(end));
  for (std::size_t i = begin; i < end; ++i) {
    const compose::tree t = compose::make_tree(seed, i, depth);
    compose::emit_tree(
        o, t, i, [&](compose::static_variant v) { return compose::compiled(v, i, t.kernel_form); });
  }
  compose::emit_end(o);
  return o ? 0 : 1;
}
