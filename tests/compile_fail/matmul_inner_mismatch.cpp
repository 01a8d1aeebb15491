// expect: fg::matmul\(\): A's columns must equal B's rows
#include <fusegrad/fusegrad.hpp>
int main() {
  fg::tensor<float, fg::shape<3, 4>> a;
  fg::tensor<float, fg::shape<5, 2>> b;
  auto e = fg::matmul(a, b);
  (void)e;
}
