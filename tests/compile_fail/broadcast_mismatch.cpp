// expect: operand shapes cannot be broadcast together
#include <fusegrad/fusegrad.hpp>
int main() {
  fg::tensor<float, fg::shape<3, 4>> a;
  fg::tensor<float, fg::shape<5>> b;
  auto e = a + b;
  (void)e;
}
