// Logistic regression trained on a CUDA device with fusegrad's static expressions: every step's
// loss and gradient are one fused kernel, and the parameter update is one more.
//
//   nvcc -std=c++20 --extended-lambda --expt-relaxed-constexpr -arch=sm_90 -I include
//        examples/cuda/logistic_regression.cu -lcublas -o logistic_regression
//
// The data are n points in 2-d, labelled by which side of a line through (0.3, -0.2) they lie;
// the model is p = sigmoid(w0*x0 + w1*x1 + b), fitted by gradient descent on the mean binary
// cross-entropy. Exit status 0 when it separates at least 97% of the points, 1 otherwise, and 0
// with a message where there is no device.
#include <fusegrad/cuda.hpp>

#include <cstdio>
#include <random>

int main() {
  if (!fg::gpu::available()) {
    std::puts("no CUDA device: nothing to train on");
    return 0;
  }
  using vec = fg::tensor<float, fg::shape<fg::dyn>>;
  using dvec = fg::device_tensor<float, fg::shape<fg::dyn>>;
  using scalar = fg::tensor<float, fg::shape<>>;
  constexpr fg::index_t n = 1 << 20;

  // Data on the host, then one copy to the device.
  vec x0(fg::dims_t<1>{n}), x1(fg::dims_t<1>{n}), y(fg::dims_t<1>{n});
  std::mt19937 gen(7);
  std::uniform_real_distribution<float> u(-1, 1);
  for (fg::index_t i = 0; i < n; ++i) {
    x0[i] = u(gen);
    x1[i] = u(gen);
    y[i] = 2.0f * (x0[i] - 0.3f) - (x1[i] + 0.2f) > 0 ? 1.0f : 0.0f;
  }
  const dvec X0 = x0.to(fg::cuda), X1 = x1.to(fg::cuda), Y = y.to(fg::cuda);

  // Parameters are 0-d device tensors: broadcast over the data inside the kernel, their
  // gradients summed on the device.
  auto w0 = scalar{0.0f}.to(fg::cuda), w1 = scalar{0.0f}.to(fg::cuda),
       b = scalar{0.0f}.to(fg::cuda);
  decltype(w0) g0, g1, gb;
  const float lr = 4.0f;
  for (int step = 0; step <= 300; ++step) {
    const auto z = w0 * X0 + w1 * X1 + b;
    // Binary cross-entropy from logits, stable for any z: softplus(z) - y*z.
    const float loss = fg::gpu::value_and_grad_into(fg::mean(fg::softplus(z) - Y * z),
                                                    std::tie(g0, g1, gb), w0, w1, b);
    w0 = w0 - lr * g0;
    w1 = w1 - lr * g1;
    b = b - lr * gb;
    if (step % 100 == 0)
      std::printf("step %3d  loss %.4f\n", step, double(loss));
  }
  // Accuracy: the mean of (prediction == label), one fused reduction.
  const auto z = w0 * X0 + w1 * X1 + b;
  const float accuracy = fg::gpu::mean(fg::equal(z > 0.0f, Y));
  const auto w = w0.to(fg::host), v = w1.to(fg::host), c = b.to(fg::host);
  std::printf("w = (%.3f, %.3f), b = %.3f, accuracy %.2f%%\n", double(w[0]), double(v[0]),
              double(c[0]), 100.0 * double(accuracy));
  return accuracy >= 0.97f ? 0 : 1;
}
