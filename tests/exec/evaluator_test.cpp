// tests/exec/evaluator_test.cpp — the planner's store/add decisions: a leaf read through several
// index maps in one pass, every gradient entry point, and gradients written over inputs
// SPDX-License-Identifier: MIT

#include "../testing.hpp"

#include <fusegrad/dynamic.hpp>

#include <algorithm>
#include <vector>

namespace {

using namespace fg;

// d f / d x_i by fourth-order central differences (error far below 1e-7 at these scales).
template <class Make, class X> std::vector<double> numeric_gradient(Make make, X& x) {
  std::vector<double> g(std::size_t(x.size()));
  for (index_t i = 0; i < x.size(); ++i) {
    const double keep = x[i], h = 1e-4;
    auto f = [&](double v) {
      x[i] = v;
      return double(eval(make(x)));
    };
    g[std::size_t(i)] =
        (-f(keep + 2 * h) + 8 * f(keep + h) - 8 * f(keep - h) + f(keep - 2 * h)) / (12 * h);
    x[i] = keep;
  }
  return g;
}

void check_close(const double* got, const std::vector<double>& want, double rel) {
  for (std::size_t i = 0; i < want.size(); ++i) {
    INFO("element " << i << ": " << got[i] << ", want " << want[i]);
    CHECK(std::abs(got[i] - want[i]) <= rel * std::max(1.0, std::abs(want[i])));
  }
}
template <class G> void check_close(const G& got, const std::vector<double>& want, double rel) {
  REQUIRE(std::size_t(got.size()) == want.size());
  check_close(got.data(), want, rel);
}
template <class G> std::vector<double> values(const G& g) {
  return std::vector<double>(g.data(), g.data() + g.size());
}

// The expressions: f over the static path (make) and over fg::var (make_var), checked
// against differences and each other, with static extents and with fg::dyn.
template <index_t R, index_t C, class Make, class MakeVar> void check_case(Make make, MakeVar mv) {
  tensor<double, shape<R, C>> xs;
  for (index_t i = 0; i < xs.size(); ++i)
    xs[i] = std::sin(1.3 * double(i) + 0.2) + 0.05 * double(i);
  tensor<double, shape<dyn, dyn>> xd(dims_t<2>{R, C});
  for (index_t i = 0; i < xd.size(); ++i)
    xd[i] = xs[i];

  const auto want = numeric_gradient(make, xs);
  const auto [v, g] = value_and_grad(make(xs), xs);
  CHECK(v == doctest::Approx(double(eval(make(xs)))).epsilon(1e-12));
  check_close(g, want, 1e-7);
  const auto [vd, gd] = value_and_grad(make(xd), xd);
  CHECK(vd == doctest::Approx(v).epsilon(1e-12));
  check_close(gd, want, 1e-7);

  var x = var::empty(extents{R, C}, dtype::float64);
  for (index_t i = 0; i < xs.size(); ++i)
    x.set(i, xs[i]);
  x.requires_grad(true);
  var y = mv(x);
  y.backward();
  CHECK(y.item() == doctest::Approx(v).epsilon(1e-12));
  const var gx = x.grad();
  const double* gv = gx.data<double>();
  check_close(gv, want, 1e-7);
}

auto sym_var = [](const var& x) { return fg::sum(fg::square(x - fg::transpose(x))); };

}  // namespace

TEST_CASE("planner: a leaf read directly and through transpose or reshape in one pass") {
  SUBCASE("sum(x * transpose(x))") {
    check_case<3, 3>([](auto& x) { return sum(x * transpose(x)); },
                     [](const var& x) { return fg::sum(x * fg::transpose(x)); });
  }
  SUBCASE("sum(square(x - transpose(x))), a symmetry penalty") {
    check_case<3, 3>([](auto& x) { return sum(square(x - transpose(x))); }, sym_var);
  }
  SUBCASE("logsumexp(x + transpose(x))") {
    check_case<3, 3>([](auto& x) { return logsumexp(x + transpose(x)); },
                     [](const var& x) { return fg::logsumexp(x + fg::transpose(x)); });
  }
  SUBCASE("sum(square(sum(transpose(x) + x, axes<0>)))") {
    check_case<3, 3>(
        [](auto& x) { return sum(square(sum(transpose(x) + x, axes<0>{}))); },
        [](const var& x) { return fg::sum(fg::square(fg::sum(fg::transpose(x) + x, {0}))); });
  }
  SUBCASE("sum(reshape<2, 4>(x) * transpose(x)), x of [4, 2]") {
    check_case<4, 2>(
        [](auto& x) {
          if constexpr (std::remove_cvref_t<decltype(x)>::shape_type::is_static)
            return sum(reshape<shape<2, 4>>(x) * transpose(x));
          else
            return sum(reshape<shape<dyn, dyn>>(x, {2, 4}) * transpose(x));
        },
        [](const var& x) {
          return fg::sum(fg::reshape(x, {2, 4}) * fg::transpose(x));
        });
  }
  SUBCASE("sum(where(reshape(x) >= 0, 1 + 0 * transpose(x), transpose(x))), x of [4, 2]") {
    check_case<4, 2>(
        [](auto& x) {
          if constexpr (std::remove_cvref_t<decltype(x)>::shape_type::is_static)
            return sum(
                where(reshape<shape<2, 4>>(x) >= 0.0, 1.0 + 0.0 * transpose(x), transpose(x)));
          else
            return sum(where(reshape<shape<dyn, dyn>>(x, {2, 4}) >= 0.0, 1.0 + 0.0 * transpose(x),
                             transpose(x)));
        },
        [](const var& x) {
          return fg::sum(fg::where(fg::reshape(x, {2, 4}) >= 0.0, 1.0 + 0.0 * fg::transpose(x),
                                   fg::transpose(x)));
        });
  }
  SUBCASE("the same leaf also read broadcast, and in a boundary's pass") {
    check_case<3, 3>(
        [](auto& x) { return sum(x * transpose(x) + sum<true>(x, axes<1>{}) * x); },
        [](const var& x) { return fg::sum(x * fg::transpose(x) + fg::sum(x, {1}, true) * x); });
  }
}

TEST_CASE("planner: every gradient entry point sees the two index maps") {
  tensor<double, shape<3, 3>> x, y;
  testing::fill_uniform(x, -1, 1);
  testing::fill_uniform(y, -1, 1);
  auto f = [&] { return sum(x * transpose(x) * y + square(x - transpose(x))); };
  auto make_x = [&](auto& xx) { return sum(xx * transpose(xx) * y + square(xx - transpose(xx))); };
  const auto want = numeric_gradient(make_x, x);

  check_close(grad(f(), x), want, 1e-7);
  check_close(eval(gradient(f(), x)), want, 1e-7);
  // vjp of the non-scalar expression with a seed of ones is the gradient of its sum.
  tensor<double, shape<3, 3>> ones;
  for (index_t i = 0; i < 9; ++i)
    ones[i] = 1;
  check_close(vjp(x * transpose(x) * y + square(x - transpose(x)), ones, x), want, 1e-7);
  tensor<double, shape<3, 3>> gx, gy;
  value_and_grad_into(f(), std::tie(gx, gy), x, y);
  check_close(gx, want, 1e-7);
  // Planned inside a workspace: the same plan, another place.
  static gradient_workspace<decltype(f())> ws;
  tensor<double, shape<3, 3>> gx2, gy2;
  value_and_grad_into(ws, f(), std::tie(gx2, gy2), x, y);
  check_close(gx2, want, 1e-7);
}

TEST_CASE("planner: a gradient written over the tensors the expression reads") {
  tensor<double, shape<3, 3>> x, y;
  testing::fill_uniform(x, -1, 1);
  testing::fill_uniform(y, -1, 1);
  auto f = [](const auto& a, const auto& b) {
    return sum(a * transpose(a) + exp(b) * a) + sum(matmul(a, b));
  };
  const auto [v, gx, gy] = value_and_grad(f(x, y), x, y);

  SUBCASE("x's gradient into x itself") {
    auto xa = x;
    tensor<double, shape<3, 3>> g2;
    const double va = value_and_grad_into(f(xa, y), std::tie(xa, g2), xa, y);
    CHECK(va == doctest::Approx(v).epsilon(1e-12));
    check_close(xa, values(gx), 1e-12);
    check_close(g2, values(gy), 1e-12);
  }
  SUBCASE("y's gradient into x, x's into y") {
    auto xb = x, yb = y;
    value_and_grad_into(f(xb, yb), std::tie(yb, xb), xb, yb);
    check_close(yb, values(gx), 1e-12);
    check_close(xb, values(gy), 1e-12);
  }
  SUBCASE("with fg::dyn extents") {
    tensor<double, shape<dyn, dyn>> xd(dims_t<2>{3, 3}), yd(dims_t<2>{3, 3}), g2;
    std::copy_n(x.data(), 9, xd.data());
    std::copy_n(y.data(), 9, yd.data());
    value_and_grad_into(f(xd, yd), std::tie(xd, g2), xd, yd);
    check_close(xd, values(gx), 1e-12);
    check_close(g2, values(gy), 1e-12);
  }
}

// Found by tests/compose (seed 1, tree 16) before the fix: b read through a reshape and a
// transpose in one pass, beside matmuls of b. Its shrinker reduced it to the second expression:
// the reshaped read (a condition: gradient 0) stored first, over the transposed read's sums.
TEST_CASE("planner: composition test regression, seed 1 tree 16") {
  tensor<double, shape<3, 2>> a, a2;
  tensor<double, shape<2, 3>> b;
  tensor<double, shape<3, 1>> c;
  testing::fill_uniform(a, -1, 1);
  testing::fill_uniform(a2, -1, 1);
  testing::fill_uniform(b, -1, 1);
  testing::fill_uniform(c, -1, 1);
  auto make = [&](auto& bb) {
    return sum(matmul(where(not_equal((square(reshape<shape<3, 2>>(bb)) *
                                       (transpose(reshape<shape<2, 3>>(a)) < transpose(bb))),
                                      (c + transpose(bb))),
                            log1p(square(log1p(square(transpose(bb))))), square(a2)),
                      transpose(maximum(matmul(bb, transpose(bb)), 0.5))));
  };
  check_close(grad(make(b), b), numeric_gradient(make, b), 1e-7);
  auto shrunk = [&](auto& bb) { return sum(where(reshape<shape<3, 2>>(bb), transpose(bb), a2)); };
  check_close(grad(shrunk(b), b), numeric_gradient(shrunk, b), 1e-7);
}
