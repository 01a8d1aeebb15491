// tests/dynamic/dynamic_testing.hpp — finite-difference checks for the dynamic (tape) path
#pragma once

#include "../testing.hpp"

#include <fusegrad/dynamic.hpp>

#include <cstring>
#include <functional>
#include <vector>

namespace fg::testing {

// The same dtype, extents and elements, bit for bit (undefined only equals undefined).
inline bool bitwise_equal(const var& a, const var& b) {
  if (!a.defined() || !b.defined())
    return a.defined() == b.defined();
  if (a.dtype() != b.dtype() || !(a.shape() == b.shape()))
    return false;
  const std::size_t bytes = a.size() * dynamic::element_size(a.dtype());
  return bytes == 0 || std::memcmp(a.ready().first_byte(), b.ready().first_byte(), bytes) == 0;
}

// A float64 var of extents e, uniform in [lo, hi), requiring a gradient.
inline var leaf(const extents& e, double lo, double hi) {
  var v = var::empty(e, dtype::float64);
  std::uniform_real_distribution<double> u(lo, hi);
  for (index_t i = 0; i < v.size(); ++i)
    v.data<double>()[i] = u(rng());
  return v.requires_grad(true);
}

// backward() of the scalar f(xs) against central differences of f, element by element.
inline void check_var_gradient(const std::function<var(const std::vector<var>&)>& f,
                               std::vector<var> xs) {
  for (var& x : xs)
    x.zero_grad();
  var y = f(xs);
  REQUIRE(y.size() == 1);
  y.backward();
  for (std::size_t k = 0; k < xs.size(); ++k) {
    var& x = xs[k];
    REQUIRE(x.grad().defined());
    for (index_t i = 0; i < x.size(); ++i) {
      const double keep = x.at(i), h = 1e-6 * std::max(1.0, std::abs(keep));
      double fp, fm;
      {
        no_grad off;
        x.set(i, keep + h);
        fp = f(xs).item();
        x.set(i, keep - h);
        fm = f(xs).item();
        x.set(i, keep);
      }
      INFO("argument " << k << ", element " << i << " of " << x.size());
      CHECK(x.grad().at(i) == doctest::Approx((fp - fm) / (2 * h)).epsilon(1e-6).scale(1.0));
    }
  }
}

}  // namespace fg::testing
