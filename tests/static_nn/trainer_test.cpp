// Layers, the trainer and its compile-time memory: gradients against finite differences, a tiny
// model overfitting a tiny batch, determinism, and no allocation.
#include "../testing.hpp"

#include <fusegrad/static_nn.hpp>

using namespace fg;
namespace nn = fg::static_nn;

TEST_CASE("generator / same seed gives the same stream and uniform stays in range") {
  nn::generator a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const auto x = a.next();
    CHECK(x == b.next());
    differs = differs || x != c.next();
  }
  for (int i = 0; i < 1000; ++i) {
    const float u = a.uniform(-0.5f, 0.5f);
    CHECK(u >= -0.5f);
    CHECK(u < 0.5f);
    CHECK(a.below(7) < 7u);
  }
  CHECK(differs);
  static_assert(nn::generator(1).next() == nn::generator(1).next(), "usable at compile time");
}

TEST_CASE("dense + activations / gradient of a two-layer net against finite differences") {
  nn::sequential<nn::dense<double, 3, 4>, nn::tanh_layer, nn::dense<double, 4, 2>> net;
  nn::generator g(7);
  net.init(g);
  nn::fill_uniform(net.layer<0>().bias, g, -0.5, 0.5);
  tensor<double, shape<5, 3>> x;
  tensor<double, shape<5, 2>> y;
  fg::testing::fill_uniform(x, -1, 1);
  fg::testing::fill_uniform(y, -1, 1);
  auto& [w1, b1] = net.layer<0>();
  auto& [w2, b2] = net.layer<2>();
  fg::testing::check_gradient([&](auto&...) { return nn::mse{}(net(x), y); }, w1, b1, w2, b2);
  static_assert(std::tuple_size_v<decltype(net.parameters())> == 4);
}

TEST_CASE("softmax / rows sum to one") {
  tensor<float, shape<2, 3>> z{1, 2, 3, -1e3f, 0, 1e3f};
  tensor<float, shape<2, 3>> p = nn::softmax(z);
  CHECK(p(0, 0) + p(0, 1) + p(0, 2) == doctest::Approx(1.0f));
  CHECK(p(1, 2) == doctest::Approx(1.0f));
  CHECK(p(0, 2) == doctest::Approx(std::exp(1.0f) / (1 + std::exp(1.0f) + std::exp(-1.0f))));
}

namespace {
using net_t = nn::sequential<nn::dense<float, 4, 16>, nn::relu_layer, nn::dense<float, 16, 3>>;
using input_t = tensor<float, shape<6, 4>>;
using target_t = tensor<float, shape<6, 3>>;

void make_batch(input_t& x, target_t& y) {
  const int labels[6] = {0, 1, 2, 0, 1, 2};
  nn::generator g(3);
  nn::fill_uniform(x, g, -1.0f, 1.0f);
  for (index_t r = 0; r < 6; ++r)
    x(r, index_t(labels[r])) += 2.0f;  // separable: the label's feature stands out
  nn::one_hot(labels, y);
}

template <class Opt> float train(net_t& net, Opt opt, int steps, float* first = nullptr) {
  input_t x;
  target_t y;
  make_batch(x, y);
  nn::generator g(11);
  net.init(g);
  nn::trainer<net_t, nn::cross_entropy, Opt, input_t, target_t> t(net, opt);
  float l = 0;
  for (int s = 0; s < steps; ++s) {
    l = t.step(x, y);
    if (s == 0 && first)
      *first = l;
  }
  return t.loss(x, y);
}
}  // namespace

TEST_CASE("trainer / a tiny model overfits a tiny batch with each optimiser") {
  net_t net;
  float first = 0;
  const float sgd = train(net, nn::sgd{0.2f}, 200, &first);
  CHECK(first > 0.5f);
  CHECK(sgd < 0.05f);
  CHECK(train(net, nn::momentum_sgd{0.05f, 0.9f}, 200) < 0.05f);
  CHECK(train(net, nn::adam{0.02f}, 200) < 0.05f);
  input_t x;
  target_t y;
  make_batch(x, y);
  tensor<float, shape<6, 3>> scores = net(x);
  CHECK(nn::count_correct(scores, y) == 6);
}

TEST_CASE("trainer / the same seed gives the same run, to the bit") {
  net_t a, b;
  const float la = train(a, nn::adam{0.01f}, 30), lb = train(b, nn::adam{0.01f}, 30);
  CHECK(la == lb);
  for (index_t i = 0; i < a.layer<2>().weight.size(); ++i)
    CHECK(a.layer<2>().weight[i] == b.layer<2>().weight[i]);
}

TEST_CASE("trainer / its gradients equal fg::value_and_grad on the same expression") {
  net_t net;
  nn::generator g(5);
  net.init(g);
  input_t x;
  target_t y;
  make_batch(x, y);
  auto expr = [&] { return nn::cross_entropy{}(net(x), y); };
  auto [v, gw1, gb1, gw2, gb2] = value_and_grad(
      mean(logsumexp(net(x), axes<1>{}) - sum(net(x) * y, axes<1>{})),  // the unfused formula
      net.layer<0>().weight, net.layer<0>().bias, net.layer<2>().weight, net.layer<2>().bias);
  nn::trainer<net_t, nn::cross_entropy, nn::sgd, input_t, target_t> t(net, nn::sgd{0.0f});
  const float l = t.step(x, y);
  CHECK(l == doctest::Approx(float(v)).epsilon(1e-5));
  CHECK(l == doctest::Approx(float(eval(expr()))).epsilon(1e-6));
  const auto& tg = t.gradients();
  for (index_t i = 0; i < gw1.size(); ++i)
    CHECK(std::get<0>(tg)[i] == doctest::Approx(gw1[i]).epsilon(1e-4).scale(1e-3));
  for (index_t i = 0; i < gb2.size(); ++i)
    CHECK(std::get<3>(tg)[i] == doctest::Approx(gb2[i]).epsilon(1e-4).scale(1e-3));
}

TEST_CASE("trainer / memory is a compile-time constant, and the trainer holds all but weights") {
  using T = nn::trainer<net_t, nn::cross_entropy, nn::adam, input_t, target_t>;
  constexpr nn::step_memory m = T::memory;
  // Each tensor counts with its SIMD alignment padding: that is the memory it takes.
  constexpr std::size_t weights =
      sizeof(tensor<float, shape<4, 16>>) + sizeof(tensor<float, shape<16>>) +
      sizeof(tensor<float, shape<16, 3>>) + sizeof(tensor<float, shape<3>>);
  static_assert(weights >= (4 * 16 + 16 + 16 * 3 + 3) * sizeof(float));
  static_assert(m.parameters == weights);
  static_assert(m.gradients == weights);
  static_assert(m.optimizer_state == 2 * weights);  // Adam's two moments
  // The workspace holds at least the hidden [6, 16] and output [6, 3] values and adjoints.
  static_assert(m.workspace >= 2 * (6 * 16 + 6 * 3) * sizeof(float));
  static_assert(sizeof(T) >= m.gradients + m.optimizer_state + m.workspace);
  static_assert(sizeof(T) <= m.gradients + m.optimizer_state + m.workspace + 64);
  using S = nn::trainer<net_t, nn::cross_entropy, nn::sgd, input_t, target_t>;
  static_assert(S::memory.optimizer_state <= 4 * sizeof(float));  // plain SGD keeps nothing
}

TEST_CASE("gradient_workspace / the same result as on the stack, in caller-placed memory") {
  tensor<double, shape<4, 3>> a;
  tensor<double, shape<4, 2>> b;
  tensor<double, shape<3, 2>> w;
  fg::testing::fill_uniform(a, -1, 1);
  fg::testing::fill_uniform(w, -1, 1);
  auto f = [&] { return mean(softmax_cross_entropy(matmul(a, w), b) + sum(square(w))); };
  b(0, 0) = b(1, 1) = b(2, 0) = b(3, 1) = 1;
  static gradient_workspace<decltype(f())> ws;
  using product = decltype(matmul(a, w));  // forward-only evaluation leaves backward buffers out
  static_assert(sizeof(exec::evaluator<product, 2, exec::forward_mode>) <
                sizeof(exec::evaluator<product, 2>));
  static_assert(decltype(ws)::bytes > 0);
  tensor<double, shape<3, 2>> g1, g2;
  const double v1 = value_and_grad_into(f(), std::tie(g1), w);
  const double v2 = value_and_grad_into(ws, f(), std::tie(g2), w);
  CHECK(v1 == v2);
  for (index_t i = 0; i < 6; ++i)
    CHECK(g1[i] == g2[i]);
}
