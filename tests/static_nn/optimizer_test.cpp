// Optimiser steps against values computed by hand.
#include "../testing.hpp"

#include <fusegrad/static_nn.hpp>

using namespace fg;
namespace nn = fg::static_nn;

using vec2 = tensor<double, shape<2>>;

TEST_CASE("sgd / p -= lr (g + weight_decay p)") {
  vec2 p{1.0, -2.0}, g{0.5, 0.25};
  nn::sgd opt{0.1f, 0.0f};
  nn::sgd::slot<vec2> s;
  opt.update(p, g, s);
  CHECK(p[0] == doctest::Approx(0.95));
  CHECK(p[1] == doctest::Approx(-2.025));
  nn::sgd wd{0.1f, 0.5f};
  wd.update(p, g, s);  // 0.95 - 0.1 (0.5 + 0.475)
  CHECK(p[0] == doctest::Approx(0.8525));
}

TEST_CASE("momentum_sgd / velocity accumulates and Nesterov looks ahead") {
  vec2 p{1.0, 1.0}, g{1.0, 2.0};
  nn::momentum_sgd opt{0.1f, 0.9f, 0.0f, false};
  nn::momentum_sgd::slot<vec2> s;
  opt.update(p, g, s);  // v = g, p = 1 - 0.1 g
  opt.update(p, g, s);  // v = 0.9 g + g = 1.9 g, p -= 0.19 g
  CHECK(s.velocity[1] == doctest::Approx(3.8));
  CHECK(p[0] == doctest::Approx(1.0 - 0.1 - 0.19));
  vec2 q{1.0, 1.0};
  nn::momentum_sgd nes{0.1f, 0.9f, 0.0f, true};
  nn::momentum_sgd::slot<vec2> sn;
  nes.update(q, g, sn);  // v = g, q -= 0.1 (g + 0.9 g)
  CHECK(q[0] == doctest::Approx(1.0 - 0.19));
}

TEST_CASE("adam / the first steps with bias correction, and decoupled weight decay") {
  vec2 p{1.0, -1.0}, g{0.5, -2.0};
  nn::adam opt{0.01f};
  nn::adam::slot<vec2> s;
  opt.begin_step();
  opt.update(p, g, s);  // m_hat = g, v_hat = g^2: the first step moves by lr sign(g)
  CHECK(p[0] == doctest::Approx(1.0 - 0.01).epsilon(1e-6));
  CHECK(p[1] == doctest::Approx(-1.0 + 0.01).epsilon(1e-6));
  vec2 g2{0.25, -2.0};
  opt.begin_step();
  opt.update(p, g2, s);
  const double m = 0.9 * 0.1 * 0.5 + 0.1 * 0.25, v = 0.999 * 0.001 * 0.25 + 0.001 * 0.0625;
  const double mh = m / (1 - 0.81), vh = v / (1 - 0.999 * 0.999);
  CHECK(p[0] == doctest::Approx(0.99 - 0.01 * mh / (std::sqrt(vh) + 1e-8)).epsilon(1e-5));

  vec2 w{2.0, 2.0}, zero{0.0, 0.0};
  nn::adam decay{0.1f, 0.9f, 0.999f, 1e-8f, 0.5f};
  nn::adam::slot<vec2> sd;
  decay.begin_step();
  decay.update(w, zero, sd);  // no gradient: only the decay, w (1 - lr wd)
  CHECK(w[0] == doctest::Approx(2.0 * 0.95));
}
