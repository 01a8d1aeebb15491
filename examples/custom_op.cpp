// custom_op — a library author adds an op: one struct with its value and local derivative.
// It then works in expressions, fused loops, SIMD batches and gradients like a built-in op.
// Prints the op's values and gradients next to finite differences.
#include <fusegrad/fusegrad.hpp>

#include <cmath>
#include <iostream>

namespace mylib {

// Swish (SiLU): x * sigmoid(x). The same body serves double, float and xsimd batches, because it
// calls only fg::math functions and arithmetic.
struct swish_op {
  static constexpr const char* name = "swish";
  template <class V> static V forward(V x) { return x / (V(1) + fg::math::exp(-x)); }
  // The derivative may use the input x and the output y = forward(x).
  template <class V> static V derivative(V x, V y) {
    const V s = V(1) / (V(1) + fg::math::exp(-x));
    return y + s * (V(1) - y);
  }
};

// The function users call: fg::apply builds the expression node.
template <fg::operand X> auto swish(X&& x) {
  return fg::apply<swish_op>(std::forward<X>(x));
}

}  // namespace mylib

int main() {
  fg::tensor<double, fg::shape<5>> x{-2.0, -0.5, 0.0, 0.5, 2.0};
  auto [value, g] = fg::value_and_grad(fg::sum(mylib::swish(x) * x), x);
  std::cout << "swish(x)            = " << fg::eval(mylib::swish(x)) << '\n';
  std::cout << "sum(swish(x) * x)   = " << value << '\n';
  std::cout << "gradient            = " << g << '\n';
  std::cout << "finite differences  = [";
  bool ok = true;
  for (fg::index_t i = 0; i < x.size(); ++i) {
    const double keep = x[i], h = 1e-6;
    x[i] = keep + h;
    const double fp = fg::eval(fg::sum(mylib::swish(x) * x));
    x[i] = keep - h;
    const double fm = fg::eval(fg::sum(mylib::swish(x) * x));
    x[i] = keep;
    const double fd = (fp - fm) / (2 * h);
    ok = ok && std::abs(fd - g[i]) < 1e-6;
    std::cout << (i ? ", " : "") << fd;
  }
  std::cout << "]\n" << (ok ? "gradient matches finite differences\n" : "MISMATCH\n");
  return ok ? 0 : 1;
}
