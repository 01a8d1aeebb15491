// tests/io/freeze_test.cpp — fg::freeze's header text, its exact literals and its refusals (the
// header compiled and run, on the host and on a Cortex-M4F: examples/embedded/frozen_check.hpp)
#include <fusegrad/io/freeze.hpp>
#include <fusegrad/nn.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

using fg::var;
namespace nn = fg::nn;

TEST_CASE("freeze: a flatten, linear layers and activations become an fg::static_nn type") {
  fg::generator g(8);
  nn::Sequential model(nn::Flatten(), nn::Linear(12, 5, g), nn::Tanh(), nn::Linear(5, 2, g),
                       nn::Sigmoid());
  const fg::graph gr =
      fg::trace([&](const var& x) { return model.forward(x); }, var::randn({2, 3, 4}, g));
  const std::string h = fg::freeze_source(gr, {.name_space = "tiny"});
  for (const char* part :
       {"namespace tiny {", "fg::static_nn::dense<float, 12, 5>",
        "fg::static_nn::activation<fg::ops::tanh_op>", "fg::static_nn::dense<float, 5, 2>",
        "fg::static_nn::activation<fg::ops::sigmoid_op>",
        "fg::static_nn::flatten", "using input = fg::tensor<float, fg::shape<2, 3, 4>>;",
        "using output = fg::tensor<float, fg::shape<2, 2>>;", "inline constexpr float weight_0[60]",
        "inline constexpr float bias_1[2]", "m.layer<3>().bias[i] = bias_1[i];"})
    CHECK_MESSAGE(h.find(part) != std::string::npos, std::string(part));
  // The first weight literal is W^T's first element: fg::nn's W is [out, in], static_nn's [in, out].
  const std::size_t at = h.find("weight_0[60] = {") + std::strlen("weight_0[60] = {\n    ");
  const float first = std::strtof(h.c_str() + at, nullptr);
  CHECK(first == model.named_parameters()[0].second.at<float>(0));
  const float second = std::strtof(h.c_str() + h.find(' ', at) + 1, nullptr);
  CHECK(second == model.named_parameters()[0].second.at<float>(12));  // W[1, 0]
}

TEST_CASE("freeze: literals read back to the same bits") {
  for (float v : {0.1f, -0.0f, 1.0f / 3, std::numeric_limits<float>::denorm_min(),
                  std::numeric_limits<float>::max(), -1e-30f}) {
    const std::string s = fg::detail::freezing::literal(v, true);
    CAPTURE(s);
    CHECK(s.back() == 'f');
    const float back = std::strtof(s.c_str(), nullptr);
    CHECK(std::memcmp(&back, &v, sizeof v) == 0);
  }
  const double d = 0.1;
  CHECK(std::strtod(fg::detail::freezing::literal(d, false).c_str(), nullptr) == d);
  CHECK_THROWS_WITH_AS(fg::detail::freezing::literal(INFINITY, true),
                       doctest::Contains("a weight is not finite"), std::invalid_argument);
}

TEST_CASE("freeze: a graph fg::static_nn cannot hold is refused, saying why") {
  fg::generator g(9);
  nn::Linear scaled(4, 3, g);
  const fg::graph product = fg::trace([&](const var& x) { return scaled.forward(x) * 2.0; },
                                      var::randn({2, 4}, g));
  CHECK_THROWS_WITH_AS(fg::freeze_source(product),
                       doctest::Contains("the graph's op 'mul' has no fg::static_nn counterpart; "
                                         "a frozen graph is a chain of what fg::static_nn has"),
                       std::invalid_argument);
  nn::Linear lin(4, 3, g);
  const fg::graph probabilities = fg::trace(
      [&](const var& x) { return nn::softmax(lin.forward(x), 1); }, var::randn({2, 4}, g));
  CHECK_THROWS_WITH_AS(fg::freeze_source(probabilities),
                       doctest::Contains("the graph's op 'logsumexp' has no fg::static_nn"),
                       std::invalid_argument);
  const fg::graph two = fg::trace([&](const var& a, const var& b) { return lin.forward(a + b); },
                                  var::randn({2, 4}, g), var::randn({2, 4}, g));
  CHECK_THROWS_WITH_AS(fg::freeze_source(two),
                       doctest::Contains("the graph has 2 inputs and 1 outputs"),
                       std::invalid_argument);
}
