// Downstream smoke test: sum(x*x) for x = {1, 2, 3} must be 14.
#include <fusegrad/fusegrad.hpp>

#include <cstdio>

int main() {
  fg::tensor<float, fg::shape<3>> x{1.f, 2.f, 3.f};
  float s = fg::eval(fg::sum(x * x));
  std::printf("consumer: sum(x*x) = %g (expected 14)\n", static_cast<double>(s));
  return s == 14.f ? 0 : 1;
}
