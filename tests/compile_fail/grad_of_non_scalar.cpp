// expect: fg::grad\(\): f must be a scalar \(0-d\) expression
#include <fusegrad/fusegrad.hpp>
int main() {
  fg::tensor<float, fg::shape<3>> x;
  auto g = fg::grad(x * x, x);
  (void)g;
}
