// Attention: scaled dot-product against its definition, the causal mask, multi-head attention's
// PyTorch names and gradients against finite differences.
#include "../dynamic/dynamic_testing.hpp"

#include <fusegrad/nn.hpp>

using namespace fg;
using fg::testing::check_var_gradient;
using fg::testing::leaf;

TEST_CASE("nn / scaled dot-product attention by its definition, and a causal mask") {
  var q = leaf({1, 2, 3}, -1, 1), k = leaf({1, 4, 3}, -1, 1), v = leaf({1, 4, 2}, -1, 1);
  var o = nn::scaled_dot_product_attention(q, k, v);
  REQUIRE(o.shape() == extents{1, 2, 2});
  for (index_t i = 0; i < 2; ++i) {
    double s[4], z = 0;
    for (index_t j = 0; j < 4; ++j) {
      s[j] = 0;
      for (index_t d = 0; d < 3; ++d)
        s[j] += q.at(i * 3 + d) * k.at(j * 3 + d) / std::sqrt(3.0);
      z += std::exp(s[j]);
    }
    for (index_t c = 0; c < 2; ++c) {
      double e = 0;
      for (index_t j = 0; j < 4; ++j)
        e += std::exp(s[j]) / z * v.at(j * 2 + c);
      CHECK(o.at(i * 2 + c) == doctest::Approx(e).epsilon(1e-12));
    }
  }
  check_var_gradient(
      [](const auto& x) { return sum(square(nn::scaled_dot_product_attention(x[0], x[1], x[2]))); },
      {q, k, v});
  // Causal: position 0 sees only itself, so changing position 1 leaves its output alone.
  var x = leaf({1, 3, 2}, -1, 1);
  const var mask = nn::causal_mask(3, dtype::float64);
  const double first = nn::scaled_dot_product_attention(x, x, x, mask).at(0);
  x.set(2, 5.0);
  CHECK(nn::scaled_dot_product_attention(x, x, x, mask).at(0) == doctest::Approx(first));
  CHECK(nn::scaled_dot_product_attention(x, x, x, mask).at(0) == doctest::Approx(x.at(0)));
}

TEST_CASE("nn / multi-head attention: names, shapes, gradients") {
  generator g(6);
  nn::MultiheadAttention mha(4, 2, g, dtype::float64);
  std::vector<std::string> names;
  for (auto& [name, p] : mha.named_parameters())
    names.push_back(name);
  CHECK(names == std::vector<std::string>{"in_proj_weight", "in_proj_bias", "out_proj.weight",
                                          "out_proj.bias"});
  var x = leaf({2, 3, 4}, -1, 1), mem = leaf({2, 5, 4}, -1, 1);
  CHECK(mha(x).shape() == extents{2, 3, 4});
  CHECK(mha.attend(x, mem, mem).shape() == extents{2, 3, 4});
  var w = leaf({2, 3, 4}, -1, 1);
  check_var_gradient([&](const auto& v) { return sum(mha.attend(v[0], v[1], v[1]) * w); },
                     {x, mem});
  check_var_gradient([&](const auto&) { return sum(mha(x) * w); },
                     {mha.in_proj_weight, mha.in_proj_bias, mha.out_proj->weight});
  CHECK_THROWS_AS(nn::MultiheadAttention(5, 2, g), std::invalid_argument);
  CHECK_THROWS_AS(mha(var::zeros({2, 3, 5})), shape_error);
}
