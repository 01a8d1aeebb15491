// backward() across threads, built twice: into the unit tests and, with ThreadSanitizer, into
// fusegrad_tsan_tests (every *_tsan_test.cpp): a graph retained on one thread and differentiated
// on another, graphs sharing their leaves differentiated at once, one graph refused to a second
// thread, and a threaded training run (two models trained at once, and one model whose
// gradients two threads compute together).
#include "../nn/nn_testing.hpp"
#include "dynamic_testing.hpp"

#include <fusegrad/nn.hpp>

#include <atomic>
#include <thread>
#include <vector>

using namespace fg;
using fg::testing::small_mlp;
using fg::testing::two_blobs;

TEST_CASE("tape / a graph retained on one thread and differentiated again on another") {
  // Walk numbers were per thread: the second thread's first walk had the first thread's number,
  // found every node already visited, and computed no gradient.
  var x = var::from({0.5, -1.0}, {2}, dtype::float64).requires_grad(true);
  var y = sum(square(x) * 3.0);  // dy/dx = 6x
  y.backward(true);              // (computes y here)
  x.zero_grad();
  std::thread([&] { y.backward(); }).join();
  CHECK(x.grad().at(0) == 3.0);
  CHECK(x.grad().at(1) == -6.0);
}

TEST_CASE("tape / graphs sharing their leaves, differentiated on two threads at once") {
  var w = var::from({0.25, -0.5, 2.0}, {3}, dtype::float64).requires_grad(true);
  constexpr int steps = 300;
  auto run = [&](double scale) {
    for (int i = 0; i < steps; ++i)
      sum(w * w * scale).backward();  // each backward adds 2 w scale into w.grad
  };
  std::thread t1(run, 1.0), t2(run, 2.0);
  t1.join();
  t2.join();
  for (sindex_t i = 0; i < 3; ++i)  // small integers times w: exact in any order
    CHECK(w.grad().at(i) == 2 * w.at(i) * 3 * steps);
}

TEST_CASE("tape / one graph differentiated by two threads at once is refused") {
  // A node whose first backward waits until the other thread has tried the same graph.
  std::atomic<int> stage{0};
  var x = var::from({1.0, 2.0}, {2}, dtype::float64).requires_grad(true);
  var y = var::from({1.0, 2.0}, {2}, dtype::float64);
  dynamic::record(y, "wait_here", {x}, [&](dynamic::node&) {
    return [&stage](const var& g) {
      int first = 0;
      if (stage.compare_exchange_strong(first, 1))  // the first walk only
        while (stage != 2)
          std::this_thread::yield();
      return dynamic::var_list{g};
    };
  });
  var loss = sum(y * 2.0);
  loss.item();  // computed here (a pending op is computed by the thread that made it)
  std::thread first([&] { loss.backward(true); });
  while (stage != 1)
    std::this_thread::yield();
  CHECK_THROWS_WITH_AS(loss.backward(true),
                       doctest::Contains("another thread is running backward() through"),
                       autograd_error);
  stage = 2;
  first.join();
  CHECK(x.grad().at(0) == 2.0);  // the first walk's gradient, once
  loss.backward();               // and with the first walk over, the graph is free again
  CHECK(x.grad().at(1) == 4.0);
}

namespace {
// Trains `m` for `steps` full-batch Adam steps; returns the last loss.
double train(nn::Sequential& m, const two_blobs& data, int steps) {
  nn::Adam opt(m.parameters(), {.lr = 0.05});
  double loss = 0;
  for (int i = 0; i < steps; ++i) {
    opt.zero_grad();
    var l = nn::cross_entropy(m.forward(data.x), data.y);
    l.backward();
    opt.step();
    loss = l.item();
  }
  return loss;
}
}  // namespace

TEST_CASE("threads / two models trained at once end as each does alone") {
  const two_blobs a(1), b(2);
  nn::Sequential alone_a = small_mlp(3), alone_b = small_mlp(4);
  const double la = train(alone_a, a, 40), lb = train(alone_b, b, 40);
  nn::Sequential ma = small_mlp(3), mb = small_mlp(4);
  double ta = 0, tb = 0;
  std::thread t1([&] { ta = train(ma, a, 40); }), t2([&] { tb = train(mb, b, 40); });
  t1.join();
  t2.join();
  CHECK(ta == la);
  CHECK(tb == lb);
  CHECK(la < 0.3);
}

TEST_CASE("threads / one model's gradient computed by two threads on halves of a batch") {
  const two_blobs data(5);
  nn::Sequential m = small_mlp(6);
  const var top = slice(data.x, 0, 0, 32), bottom = slice(data.x, 0, 32, 64);
  const var ytop = slice(data.y, 0, 0, 32), ybottom = slice(data.y, 0, 32, 64);
  // one thread: the sum of both halves' losses
  m.zero_grad();
  (nn::cross_entropy(m.forward(top), ytop) + nn::cross_entropy(m.forward(bottom), ybottom))
      .backward();
  std::vector<double> want;
  for (const auto& [name, p] : m.named_parameters())
    for (index_t i = 0; i < p.size(); ++i)
      want.push_back(p.grad().at(sindex_t(i)));
  // two threads, each its half, adding into the same parameters' gradients
  for (int round = 0; round < 5; ++round) {
    m.zero_grad();
    std::thread t1([&] { nn::cross_entropy(m.forward(top), ytop).backward(); });
    std::thread t2([&] { nn::cross_entropy(m.forward(bottom), ybottom).backward(); });
    t1.join();
    t2.join();
    std::size_t k = 0;
    for (const auto& [name, p] : m.named_parameters())
      for (index_t i = 0; i < p.size(); ++i)
        CHECK(p.grad().at(sindex_t(i)) == doctest::Approx(want[k++]).epsilon(1e-6));
  }
}

TEST_CASE("trace / one fg::function called from four threads at once") {
  // Each thread traces on this thread only (a recorder per thread), the graphs are found without
  // a lock, and a signature traced by two threads at once is kept once.
  nn::Sequential model = small_mlp(5);
  fg::function f([&](const var& x) { return model.forward(x); });
  std::vector<var> inputs;
  generator g(6);
  for (index_t n : {4, 8, 4, 8})
    inputs.push_back(var::randn({n, 2}, g));
  std::vector<var> traced(4), eager(4);
  {
    no_grad off;
    for (std::size_t k = 0; k < 4; ++k)
      eager[k] = model.forward(inputs[k]).to(host);
  }
  std::vector<std::thread> threads;
  for (std::size_t k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      no_grad off;
      for (int rep = 0; rep < 5; ++rep)
        traced[k] = f(inputs[k]).to(host);
    });
  for (std::thread& t : threads)
    t.join();
  for (std::size_t k = 0; k < 4; ++k)
    for (index_t i = 0; i < eager[k].size(); ++i)
      CHECK(traced[k].at(sindex_t(i)) == eager[k].at(sindex_t(i)));
  CHECK(f.graphs().size() == 2);
}
