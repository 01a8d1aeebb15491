// tests/nn/nn_testing.hpp — a small classification problem and model that several tests train
#pragma once

#include <fusegrad/nn.hpp>

#include <cstdint>

namespace fg::testing {

// 64 points of N(0, 1)^2 in two classes, split by the sign of x0 + x1; labels int64.
struct two_blobs {
  var x, y;
  explicit two_blobs(std::uint64_t seed = 1)
      : x(var::empty({64, 2})), y(var::empty({64}, dtype::int64)) {
    generator g(seed);
    x = var::randn({64, 2}, g);
    for (index_t i = 0; i < 64; ++i)
      y.set(sindex_t(i), x.at(2 * i) + x.at(2 * i + 1) > 0 ? 1 : 0);
  }
};

// Linear(2, 8) - Tanh - Linear(8, 2), initialised from `seed`.
inline nn::Sequential small_mlp(std::uint64_t seed) {
  generator g(seed);
  return nn::Sequential(nn::Linear(2, 8, g), nn::Tanh(), nn::Linear(8, 2, g));
}

}  // namespace fg::testing
