// tests/testing.hpp — shared test helpers: seeded random tensors and a finite-difference checker
// SPDX-License-Identifier: MIT
#pragma once

#include <fusegrad/fusegrad.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <tuple>

namespace fg::testing {

inline std::mt19937& rng() {
  static std::mt19937 g(12345);
  return g;
}

template <class Tensor> void fill_uniform(Tensor& t, double lo, double hi) {
  std::uniform_real_distribution<double> u(lo, hi);
  for (index_t i = 0; i < t.size(); ++i)
    t[i] = typename Tensor::value_type(u(rng()));
}

// Checks fg's gradient of the scalar f(xs...) against central differences of f itself, element
// by element of every argument. `make` builds the expression from the tensors.
template <class Make, class... X> void check_gradient(Make make, X&... xs) {
  auto vg =
      std::apply([&](auto&... x) { return value_and_grad(make(x...), x...); }, std::tie(xs...));
  const double value = std::get<0>(vg);
  const double f0 = double(eval(make(xs...)));
  CHECK(value == doctest::Approx(f0).epsilon(1e-10));
  auto check_one = [&](auto& x, const auto& g) {
    for (index_t i = 0; i < x.size(); ++i) {
      const auto keep = x[i];
      const double h = 1e-6 * std::max(1.0, std::abs(double(keep)));
      x[i] = keep + h;
      const double fp = double(eval(make(xs...)));
      x[i] = keep - h;
      const double fm = double(eval(make(xs...)));
      x[i] = keep;
      const double fd = (fp - fm) / (2 * h);
      INFO("element " << i << " of an argument with " << x.size() << " elements");
      CHECK(double(g[i]) == doctest::Approx(fd).epsilon(1e-6).scale(1.0));
    }
  };
  std::apply([&](auto, auto&... g) { (check_one(xs, g), ...); }, vg);
}

}  // namespace fg::testing
