// LSTM and GRU: one step against the formulas written out, sequences of different lengths,
// PyTorch's parameter names, gradients against finite differences.
#include "../dynamic/dynamic_testing.hpp"

#include <fusegrad/nn/recurrent.hpp>

using namespace fg;
using fg::testing::check_var_gradient;
using fg::testing::leaf;

namespace {
double sig(double v) {
  return 1 / (1 + std::exp(-v));
}
// Row r of W [G, in] times x (a pointer to `in` values of var x at offset), plus b[r].
double affine(const var& w, const var& b, index_t r, const var& x, index_t off, index_t in) {
  double s = b.at(r);
  for (index_t k = 0; k < in; ++k)
    s += w.at(r * in + k) * x.at(off + k);
  return s;
}
}  // namespace

TEST_CASE("nn / LSTM: a step by the formulas, PyTorch's names, lengths that differ") {
  generator g(4);
  nn::LSTM lstm(3, 2, g, dtype::float64);
  std::vector<std::string> names;
  for (auto& [name, p] : lstm.named_parameters())
    names.push_back(name);
  CHECK(names ==
        std::vector<std::string>{"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"});
  var x = leaf({3, 2, 3}, -1, 1);
  const nn::rnn_result r = lstm.run(x, {3, 1});
  REQUIRE(r.output.shape() == extents{3, 2, 2});
  // Step 0 from zero state: c = sig(i) tanh(g), h = sig(o) tanh(c).
  for (index_t b = 0; b < 2; ++b)
    for (index_t j = 0; j < 2; ++j) {
      auto gate = [&](index_t k) {
        return affine(lstm.weight_ih, lstm.bias_ih, k * 2 + j, x, b * 3, 3) +
               lstm.bias_hh.at(k * 2 + j);
      };
      const double c = sig(gate(0)) * std::tanh(gate(2)), h = sig(gate(3)) * std::tanh(c);
      CHECK(r.output.at(b * 2 + j) == doctest::Approx(h).epsilon(1e-12));
      if (b == 1) {  // length 1: its final state is step 0's, its later outputs are zero
        CHECK(r.h.at(2 + j) == doctest::Approx(h).epsilon(1e-12));
        CHECK(r.c.at(2 + j) == doctest::Approx(c).epsilon(1e-12));
        CHECK(r.output.at(4 + 2 + j) == 0.0);
        CHECK(r.output.at(8 + 2 + j) == 0.0);
      }
    }
  CHECK(r.h.at(0) == r.output.at(8));  // sequence 0 ran all 3 steps
  var w = leaf({3, 2, 2}, -1, 1);
  check_var_gradient(
      [&](const auto& v) {
        const nn::rnn_result q = lstm.run(v[0], {3, 2});
        return sum(q.output * v[1]) + sum(q.c) + sum(q.h);
      },
      {x, w});
  check_var_gradient(
      [&](const auto&) {
        return sum(lstm.run(x, {2, 3}).output * w);
      },
      {lstm.weight_ih, lstm.weight_hh, lstm.bias_ih, lstm.bias_hh});
  CHECK_THROWS_WITH_AS(lstm.run(x, {4, 1}), "fg::nn::LSTM: a length of 4 for sequences of 3 steps",
                       shape_error);
  CHECK_THROWS_AS(lstm.run(var::zeros({3, 2, 4})), shape_error);
}

TEST_CASE("nn / GRU: a step by the formulas and gradients with lengths that differ") {
  generator g(5);
  nn::GRU gru(2, 3, g, dtype::float64);
  var x = leaf({2, 2, 2}, -1, 1);
  const nn::rnn_result r = gru.run(x);
  CHECK(!r.c.defined());
  for (index_t b = 0; b < 2; ++b)
    for (index_t j = 0; j < 3; ++j) {  // h0 = 0: hidden projections are the biases
      const double rr = sig(affine(gru.weight_ih, gru.bias_ih, j, x, b * 2, 2) + gru.bias_hh.at(j));
      const double z =
          sig(affine(gru.weight_ih, gru.bias_ih, 3 + j, x, b * 2, 2) + gru.bias_hh.at(3 + j));
      const double n = std::tanh(affine(gru.weight_ih, gru.bias_ih, 6 + j, x, b * 2, 2) +
                                 rr * gru.bias_hh.at(6 + j));
      CHECK(r.output.at(b * 3 + j) == doctest::Approx((1 - z) * n).epsilon(1e-12));
    }
  var w = leaf({2, 2, 3}, -1, 1);
  check_var_gradient(
      [&](const auto& v) {
        return sum(gru.run(v[0], {1, 2}).output * v[1]);
      },
      {x, w});
  check_var_gradient(
      [&](const auto&) {
        return sum(gru.run(x, {2, 1}).h);
      },
      {gru.weight_ih, gru.weight_hh, gru.bias_ih, gru.bias_hh});
}

TEST_CASE("nn / lstm_cell: one fused step against the same step in primitive ops") {
  var z = leaf({3, 8}, -2, 2), c = leaf({3, 2}, -1, 1);
  const var y = nn::lstm_cell(z, c);
  const var i = sigmoid(slice(z, 1, 0, 2)), f = sigmoid(slice(z, 1, 2, 4)),
            g = tanh(slice(z, 1, 4, 6)), o = sigmoid(slice(z, 1, 6, 8));
  const var c2 = f * c + i * g, h = o * tanh(c2);
  for (index_t b = 0; b < 3; ++b)
    for (index_t j = 0; j < 2; ++j) {
      CHECK(y.at(b * 4 + j) == doctest::Approx(h.at(b * 2 + j)).epsilon(1e-14));
      CHECK(y.at(b * 4 + 2 + j) == doctest::Approx(c2.at(b * 2 + j)).epsilon(1e-14));
    }
  var w = leaf({3, 4}, -1, 1);
  check_var_gradient([](const auto& v) { return sum(nn::lstm_cell(v[0], v[1]) * v[2]); },
                     {z, c, w});
  CHECK_THROWS_AS(nn::lstm_cell(var::zeros({3, 7}), var::zeros({3, 2})), shape_error);
}

TEST_CASE("nn / lstm_sequence: arguments of the wrong extents are refused, naming them") {
  // (a graph read from a file calls the op directly, without LSTM::run's checks)
  const fg::var xp = fg::var::zeros({3, 2, 8}), w = fg::var::zeros({8, 2}), b = fg::var::zeros({8});
  CHECK(fg::nn::detail::lstm_sequence(xp, w, b, {3, 1}).shape() == fg::extents{4, 2, 4});
  CHECK_THROWS_WITH_AS(fg::nn::detail::lstm_sequence(xp, w, b, {3}),
                       "fg::nn::detail::lstm_sequence(): xp [3, 2, 8], w_hh [8, 2], b_hh [8] and "
                       "1 lengths; expected [T, B, 4H], [4H, H], [4H] and B or none",
                       fg::shape_error);
  CHECK_THROWS_AS(fg::nn::detail::lstm_sequence(xp, fg::var::zeros({8, 3}), b, {}),
                  fg::shape_error);
}
