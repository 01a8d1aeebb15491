// Built with -fno-exceptions -fno-rtti: the static-shape path (elementwise, reductions, matmul,
// value and gradient of a small training step) runs with every heap allocation trapped.
#include "../../examples/embedded/heap_trap.hpp"

#include <fusegrad/fusegrad.hpp>

#include <cmath>
#include <cstdio>

static int failures = 0;
static void expect(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAIL: %s\n", what);
    ++failures;
  }
}

int main() {
  using namespace fg;
  // A 4-8-3 dense layer pair and softmax cross-entropy over a batch of 5, all static.
  static tensor<float, shape<5, 4>> x;
  static tensor<float, shape<4, 8>> w1;
  static tensor<float, shape<8>> b1;
  static tensor<float, shape<8, 3>> w2;
  static tensor<float, shape<5, 3>> onehot;
  for (index_t i = 0; i < x.size(); ++i)
    x[i] = std::sin(float(i));
  for (index_t i = 0; i < w1.size(); ++i)
    w1[i] = 0.3f * std::cos(float(i));
  for (index_t i = 0; i < w2.size(); ++i)
    w2[i] = 0.2f * std::sin(float(3 * i));
  for (index_t r = 0; r < 5; ++r)
    onehot(r, r % 3) = 1.0f;

  heap_trap::armed = true;
  tensor<float, shape<5, 4>> y = x * 2.0f + sin(x) * exp(-x);
  expect(std::fabs(y(1, 1) - (2 * x(1, 1) + std::sin(x(1, 1)) * std::exp(-x(1, 1)))) < 1e-5f,
         "elementwise value");
  float total = eval(sum(sum(x, axes<0>{}) * max(x)));
  expect(std::isfinite(total), "reductions");
  auto loss = [&] {
    auto logits = matmul(relu(matmul(x, w1) + b1), w2);
    return mean(logsumexp(logits, axes<1>{})) - sum(logits * onehot) / 5.0f;
  };
  auto [l0, g1, gb1, g2] = value_and_grad(loss(), w1, b1, w2);
  float l = l0;
  for (int step = 0; step < 50; ++step) {  // plain gradient descent
    auto [lv, d1, db, d2] = value_and_grad(loss(), w1, b1, w2);
    w1 = w1 - 0.5f * d1;
    b1 = b1 - 0.5f * db;
    w2 = w2 - 0.5f * d2;
    l = lv;
  }
  heap_trap::armed = false;

  expect(l < l0 * 0.5f, "training reduces the loss");
  expect(g1.size() == 32 && gb1.size() == 8 && g2.size() == 24, "gradient shapes");
  std::printf("embedded static path: loss %.4f -> %.4f, no heap, no exceptions, no RTTI\n", l0, l);
  if (failures)
    return 1;
  std::puts("1 passed, 0 failed");
  return 0;
}
