// Logistic regression trained on a CUDA device with fg::var, the dynamic path: the graph is
// recorded as the ops run, and the loop stops when the loss stops improving (a data-dependent
// trip count). Each step is a matmul (cuBLAS), one fused kernel for the loss and all its
// gradients, two GEMMs for the matmul's gradients, and one fused kernel per parameter update.
//
//   nvcc -std=c++20 --extended-lambda --expt-relaxed-constexpr -arch=sm_90 -I include
//        examples/cuda/dynamic_logistic_regression.cu -lcublas -o dynamic_logistic_regression
//
// The data are n points in 2-d, labelled by which side of a line through (0.3, -0.2) they lie;
// the model is p = sigmoid(X w + b). Exit status 0 when it separates at least 97% of the points,
// 1 otherwise, and 0 with a message where there is no device.
#include <fusegrad/cuda.hpp>
#include <fusegrad/dynamic.hpp>

#include <cstdio>

int main() {
  if (!fg::gpu::available()) {
    std::puts("no CUDA device: nothing to train on");
    return 0;
  }
  constexpr fg::index_t n = 1 << 20;

  // Data on the host, then one copy to the device.
  fg::generator gen(7);
  fg::var x = fg::var::rand({n, 2}, gen) * 2.0 - 1.0;  // uniform in [-1, 1)
  fg::var y = fg::var::empty({n, 1});
  for (fg::index_t i = 0; i < n; ++i)
    y.set(i, 2.0 * (x.at(2 * i) - 0.3) - (x.at(2 * i + 1) + 0.2) > 0 ? 1.0 : 0.0);
  const fg::var X = x.to(fg::cuda), Y = y.to(fg::cuda);

  // Parameters: new leaves on the device.
  fg::var w = fg::var::zeros({2, 1}).to(fg::cuda).requires_grad(true);
  fg::var b = fg::var::zeros({1}).to(fg::cuda).requires_grad(true);
  const double lr = 4.0;
  double previous = 1e30;
  int step = 0;
  for (;; ++step) {
    const fg::var z = fg::matmul(X, w) + b;
    // Binary cross-entropy from logits, stable for any z: softplus(z) - y*z.
    fg::var loss = fg::mean(fg::softplus(z) - Y * z);
    loss.backward();
    const double l = loss.item();  // one element copied back
    if (step % 100 == 0)
      std::printf("step %3d  loss %.4f\n", step, l);
    if (previous - l < 1e-5 || step == 2000)
      break;
    previous = l;
    fg::no_grad off;  // the update is not part of any graph
    w = (w - lr * w.grad()).detach().requires_grad(true);
    b = (b - lr * b.grad()).detach().requires_grad(true);
  }
  fg::no_grad off;
  const fg::var z = fg::matmul(X, w) + b;
  const double accuracy = fg::mean(fg::equal(z > 0.0, Y)).item();
  const fg::var wh = w.to(fg::host), bh = b.to(fg::host);
  std::printf("stopped after %d steps: w = (%.3f, %.3f), b = %.3f, accuracy %.2f%%\n", step,
              wh.at(0), wh.at(1), bh.at(0), 100.0 * accuracy);
  return accuracy >= 0.97 ? 0 : 1;
}
