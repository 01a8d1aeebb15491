// nn optimisers: steps against values computed by hand, schedules, a tiny model that overfits a
// tiny batch, and a run that repeats exactly from the same seed.
#include "../testing.hpp"

#include <fusegrad/nn.hpp>
#include <fusegrad/nn/data.hpp>

using namespace fg;

namespace {
// A leaf p with gradient g (both float64), as backward() would leave it.
var with_grad(std::initializer_list<double> p, std::initializer_list<double> g) {
  var v = var::from(p, {index_t(p.size())}, dtype::float64).requires_grad(true);
  v.backward(var::from(g, {index_t(g.size())}, dtype::float64));
  return v;
}
void regrad(var& v, std::initializer_list<double> g) {
  v.zero_grad();
  v.backward(var::from(g, {index_t(g.size())}, dtype::float64));
}
}  // namespace

TEST_CASE("optim / SGD: plain, weight decay, momentum, Nesterov") {
  var p = with_grad({1.0, -2.0}, {0.5, 0.25});
  nn::SGD plain({p}, {.lr = 0.1});
  plain.step();
  CHECK(p.at(0) == doctest::Approx(0.95));
  CHECK(p.at(1) == doctest::Approx(-2.025));
  nn::SGD decay({p}, {.lr = 0.1, .weight_decay = 0.5});
  decay.step();  // 0.95 - 0.1 (0.5 + 0.475)
  CHECK(p.at(0) == doctest::Approx(0.8525));

  var q = with_grad({1.0, 1.0}, {1.0, 2.0});
  nn::SGD mom({q}, {.lr = 0.1, .momentum = 0.9});
  mom.step();  // v = g
  mom.step();  // v = 1.9 g
  CHECK(q.at(1) == doctest::Approx(1.0 - 0.1 * 2 - 0.19 * 2));
  var r = with_grad({1.0, 1.0}, {1.0, 2.0});
  nn::SGD nes({r}, {.lr = 0.1, .momentum = 0.9, .nesterov = true});
  nes.step();  // v = g, r -= 0.1 (g + 0.9 g)
  CHECK(r.at(0) == doctest::Approx(1.0 - 0.19));
  CHECK_THROWS_AS(nn::SGD({r}, {.lr = 0.1, .nesterov = true}), std::invalid_argument);
  CHECK_THROWS_AS(nn::SGD({var::zeros({2})}, {}), std::invalid_argument);
}

TEST_CASE("optim / Adam and AdamW: the first steps, L2 against decoupled weight decay") {
  var p = with_grad({1.0, -1.0}, {0.5, -2.0});
  nn::Adam adam({p}, {.lr = 0.01});
  adam.step();  // m_hat = g, v_hat = g^2: the first step moves by lr sign(g)
  CHECK(p.at(0) == doctest::Approx(0.99).epsilon(1e-9));
  CHECK(p.at(1) == doctest::Approx(-0.99).epsilon(1e-9));
  regrad(p, {0.25, -2.0});
  adam.step();
  const double m = 0.9 * 0.1 * 0.5 + 0.1 * 0.25, v = 0.999 * 0.001 * 0.25 + 0.001 * 0.0625;
  const double mh = m / (1 - 0.81), vh = v / (1 - 0.999 * 0.999);
  CHECK(p.at(0) == doctest::Approx(0.99 - 0.01 * mh / (std::sqrt(vh) + 1e-8)).epsilon(1e-9));

  // With weight decay 0.5: Adam adds 0.5 p to g (then moves by lr sign), AdamW shrinks p first.
  var a = with_grad({2.0}, {-0.5}), w = with_grad({2.0}, {-0.5});
  nn::Adam l2({a}, {.lr = 0.01, .weight_decay = 0.5});
  nn::AdamW decoupled({w}, {.lr = 0.01, .weight_decay = 0.5});
  l2.step();
  decoupled.step();
  CHECK(a.at(0) == doctest::Approx(2.0 - 0.01).epsilon(1e-9));                // g + wd p = 0.5 > 0
  CHECK(w.at(0) == doctest::Approx(2.0 * (1 - 0.005) + 0.01).epsilon(1e-9));  // g < 0
}

TEST_CASE("optim / a step changes the parameters in place: an old graph refuses to run") {
  var p = var::from({1.0}, {1}, dtype::float64).requires_grad(true);
  var loss = sum(p * p);
  loss.backward(true);
  nn::SGD opt({p}, {.lr = 0.1});
  opt.step();
  CHECK_THROWS_AS(loss.backward(), autograd_error);
}

TEST_CASE("optim / step and cosine schedules") {
  var p = with_grad({1.0}, {1.0});
  nn::SGD opt({p}, {.lr = 1.0});
  nn::StepLR step(opt, 2, 0.5);
  step.step();
  CHECK(opt.lr == 1.0);
  step.step();
  CHECK(opt.lr == 0.5);
  nn::SGD opt2({p}, {.lr = 1.0});
  nn::CosineLR cos(opt2, 4, 0.1);
  cos.step();
  CHECK(opt2.lr == doctest::Approx(0.1 + 0.9 * 0.5 * (1 + std::cos(3.141592653589793 / 4))));
  for (int i = 0; i < 5; ++i)
    cos.step();
  CHECK(opt2.lr == doctest::Approx(0.1));
}

namespace {
// A small CNN trained for `steps` on one batch; the losses, step by step.
std::vector<double> train_tiny(std::uint64_t seed, int steps) {
  generator g(seed);
  nn::Sequential net(nn::Conv2d(1, 4, 3, g, 1, 1), nn::ReLU(), nn::AvgPool2d(2), nn::Flatten(),
                     nn::Linear(4 * 3 * 3, 8, g), nn::GELU(), nn::Linear(8, 3, g));
  var x = var::randn({6, 1, 6, 6}, g);
  var y = var::from({0, 1, 2, 2, 1, 0}, {6}, dtype::int64);
  nn::Adam opt(net.parameters(), {.lr = 0.02});
  std::vector<double> losses;
  for (int i = 0; i < steps; ++i) {
    opt.zero_grad();
    var loss = nn::cross_entropy(net(x), y);
    loss.backward();
    opt.step();
    losses.push_back(loss.item());
  }
  return losses;
}
}  // namespace

TEST_CASE("optim / a tiny model overfits a tiny batch, and the same seed repeats the run") {
  const std::vector<double> a = train_tiny(5, 150), b = train_tiny(5, 150);
  CHECK(a.front() > 0.5);
  CHECK(a.back() < 0.01);
  CHECK(a == b);
  CHECK(train_tiny(6, 3) != std::vector<double>(a.begin(), a.begin() + 3));
}

TEST_CASE("data / batches cover every example once, in a seeded order per pass") {
  var x = var::arange(10, dtype::float32), y = var::arange(10, dtype::float32) * 2.0;
  nn::DataLoader ordered(x, y, 4, false);
  CHECK(ordered.batches() == 3);
  std::vector<double> seen;
  for (auto [bx, by] : ordered) {
    for (index_t i = 0; i < bx.size(); ++i) {
      seen.push_back(bx.at(i));
      CHECK(by.at(i) == 2 * bx.at(i));  // inputs and targets stay paired
    }
  }
  CHECK(seen == std::vector<double>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  auto pass = [](nn::DataLoader& l) {
    std::vector<double> order;
    for (auto [bx, by] : l)
      for (index_t i = 0; i < bx.size(); ++i)
        order.push_back(bx.at(i));
    return order;
  };
  nn::DataLoader s1(x, y, 3, true, 9), s2(x, y, 3, true, 9);
  const auto first = pass(s1), second = pass(s1);
  CHECK(first != second);    // a new order each pass
  CHECK(pass(s2) == first);  // the same seed, the same orders
  auto sorted = first;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == seen);
  nn::DataLoader dropping(x, y, 4, false, 0, true);
  CHECK(dropping.batches() == 2);
  CHECK_THROWS_AS(nn::DataLoader(x, var::zeros({9}), 4), shape_error);
}
