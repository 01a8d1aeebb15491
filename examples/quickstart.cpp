// quickstart — value and gradients of a small expression, first with static extents (no heap),
// then the same with extents known only at run time. Prints each value and gradient.
#include <fusegrad/fusegrad.hpp>

#include <iostream>

int main() {
  // Static shapes: the whole graph is a type; evaluation is one fused SIMD loop, no allocation.
  fg::tensor<double, fg::shape<2, 3>> x{0.5, -1.0, 2.0, 1.5, 0.0, -0.5};
  fg::tensor<double, fg::shape<3>> w{1.0, 2.0, 3.0};  // broadcast over x's rows
  fg::tensor<double, fg::shape<>> b{0.25};            // a 0-d parameter

  // f = sum(tanh(x * w + b)^2 + exp(-x))  (a lazy expression: nothing is computed yet)
  auto f = fg::sum(fg::square(fg::tanh(x * w + b)) + fg::exp(-x));

  // Value and every gradient in one pass over the elements.
  auto [value, dx, dw, db] = fg::value_and_grad(f, x, w, b);
  std::cout << "static extents\n"
            << "  f     = " << value << '\n'
            << "  df/dx = " << dx << '\n'
            << "  df/dw = " << dw << '\n'
            << "  df/db = " << db << "\n\n";

  // The same expression over run-time extents: heap storage, extents checked at run time.
  const fg::index_t rows = 2;
  fg::tensor<double, fg::shape<fg::dyn, 3>> xd({rows, 3}, {0.5, -1.0, 2.0, 1.5, 0.0, -0.5});
  auto [vd, dxd, dwd, dbd] =
      fg::value_and_grad(fg::sum(fg::square(fg::tanh(xd * w + b)) + fg::exp(-xd)), xd, w, b);
  std::cout << "dyn extents\n"
            << "  f     = " << vd << '\n'
            << "  df/dx = " << dxd << '\n'
            << "  df/dw = " << dwd << '\n'
            << "  df/db = " << dbd << "\n\n";

  // A matrix product and a reduction over an axis are fusion boundaries; gradients flow through.
  fg::tensor<double, fg::shape<3, 2>> m{1, 0, 0, 1, 1, 1};
  auto [v2, dm] = fg::value_and_grad(fg::mean(fg::logsumexp(fg::matmul(x, m), fg::axes<1>{})), m);
  std::cout << "mean(logsumexp(x . m, axis 1)) = " << v2 << "\n  d/dm = " << dm << '\n';

  const bool same = std::abs(value - vd) < 1e-12;
  std::cout << (same ? "static and dyn agree\n" : "MISMATCH between static and dyn\n");
  return same ? 0 : 1;
}
