// Results that do not depend on the thread count, bit for bit (docs/threads.md): fused chains
// long enough to be cut into blocks (values, a sum's value and gradients, a broadcast leaf's
// gradient, a backward given the result's gradient), reductions over axes and softmax with
// their gradients, gradients summed back to broadcast operands, matrix products and their
// gradients, attention and an embedding with their gradients, and a CNN's training steps
// (convolution, pooling, Adam), at 1, 2, 3 and 4 threads (3 and 4 oversubscribe this
// project's 2 vCPUs on purpose). A *_tsan_test: it runs again under ThreadSanitizer.
#include "../testing.hpp"

#include <fusegrad/nn.hpp>

#include <functional>
#include <vector>

using namespace fg;

namespace {

// Every element of every tensor, as the bytes of a double (float and double convert exactly).
std::vector<unsigned char> bytes_of(const std::vector<var>& vs) {
  std::vector<unsigned char> out;
  for (const var& v : vs)
    for (index_t i = 0; i < v.size(); ++i) {
      const double e = v.at(sindex_t(i));
      const auto* p = reinterpret_cast<const unsigned char*>(&e);
      out.insert(out.end(), p, p + sizeof e);
    }
  return out;
}

// run() at 1 thread, then at 2, 3 and 4: the same bytes each time.
void same_at_every_thread_count(const std::function<std::vector<var>()>& run) {
  const int before = get_num_threads();
  set_num_threads(1);
  const auto one = bytes_of(run());
  REQUIRE(!one.empty());
  for (int threads : {2, 3, 4}) {
    CAPTURE(threads);
    set_num_threads(threads);
    CHECK(bytes_of(run()) == one);
  }
  set_num_threads(before);
}

}  // namespace

TEST_CASE("threads / fused chains cut into blocks: values, sums and gradients") {
  generator g(5);
  const var x0 = var::randn({100003}, g), c = var::randn({100003}, g);
  same_at_every_thread_count([&] {  // a chain under a sum: value and gradients in one sweep
    var x = x0.detach().requires_grad(true), b = var::scalar(0.7).requires_grad(true);
    var loss = sum(tanh(x * b) + exp(-x) * 1e-3);
    loss.backward();
    return std::vector<var>{loss, x.grad(), b.grad()};
  });
  same_at_every_thread_count([&] {  // a chain computed alone, then a backward given g
    var x = x0.detach().requires_grad(true), b = var::scalar(-0.3).requires_grad(true);
    var h = sin(x) * b + x;
    const double first = h.at(0);  // computes the chain
    (void)first;
    var loss = sum(h * c);
    loss.backward();
    return std::vector<var>{h, loss, x.grad(), b.grad()};
  });
  same_at_every_thread_count([&] {  // float64 and a mean
    var x = x0.to(dtype::float64).requires_grad(true);
    var loss = mean(log(1.0 + exp(-x * x)));
    loss.backward();
    return std::vector<var>{loss, x.grad()};
  });
}

TEST_CASE("threads / reductions over axes, softmax and broadcast backward") {
  generator g(9);
  const var x0 = var::randn({257, 301}, g), bias0 = var::randn({301}, g),
            col0 = var::randn({257, 1}, g);
  same_at_every_thread_count([&] {  // each axis, keepdim, a prepass (logsumexp), statistics (max)
    var x = x0.detach().requires_grad(true);
    var rows = logsumexp(x, {1}), cols = sum(x, {0}, true), peak = max(x, {-1});
    var all = mean(x * x);
    var loss = sum(rows) + sum(cols * cols) + sum(peak) + all;
    loss.backward();
    return std::vector<var>{rows, cols, peak, all, x.grad()};
  });
  same_at_every_thread_count([&] {  // softmax layers, and gradients summed back to broadcasts
    var x = x0.detach().requires_grad(true), b = bias0.detach().requires_grad(true),
        c = col0.detach().requires_grad(true);
    var z = x * c + b;
    var p = nn::softmax(z, -1), lp = nn::log_softmax(z, 0);
    var loss = sum(p * lp);
    loss.backward();
    return std::vector<var>{p, lp, loss, x.grad(), b.grad(), c.grad()};
  });
}

TEST_CASE("threads / matrix products and their gradients") {
  generator g(6);
  const var a0 = var::randn({300, 200}, g), b0 = var::randn({200, 130}, g);
  same_at_every_thread_count([&] {
    var a = a0.detach().requires_grad(true), b = b0.detach().requires_grad(true);
    var y = matmul(a, b);
    var loss = sum(tanh(y));
    loss.backward();
    return std::vector<var>{y, loss, a.grad(), b.grad()};
  });
}

TEST_CASE("threads / attention over batch x heads, an embedding and its gradient") {
  generator data(10);
  const var tokens = var::randint(0, 50, {32, 24}, data);  // rows picked many times
  same_at_every_thread_count([&] {
    generator g(11);
    nn::Embedding embed(50, 64, g);
    nn::MultiheadAttention attn(64, 4, g);
    var h = attn.forward(embed(tokens));
    var loss = sum(h * h);
    loss.backward();
    std::vector<var> out{h, loss};
    for (const var& p : embed.parameters())
      out.push_back(p.grad());
    for (const var& p : attn.parameters())
      out.push_back(p.grad());
    return out;
  });
}

TEST_CASE("threads / three training steps of a small CNN") {
  generator data(7);
  const var images = var::randn({32, 1, 16, 16}, data);
  const var labels = var::randint(0, 10, {32}, data);
  same_at_every_thread_count([&] {
    generator g(8);
    nn::Sequential model(nn::Conv2d(1, 16, 3, g), nn::ReLU(), nn::MaxPool2d(2),
                         nn::Conv2d(16, 32, 3, g), nn::ReLU(), nn::Flatten(),
                         nn::Linear(32 * 5 * 5, 10, g));
    nn::Adam opt(model.parameters(), {.lr = 1e-2});
    for (int step = 0; step < 3; ++step) {
      opt.zero_grad();
      var loss = nn::cross_entropy(model(images), labels);
      loss.backward();
      opt.step();
    }
    std::vector<var> out = model.parameters();
    out.push_back(model(images));
    return out;
  });
}
