// expect: must share an element type
#include <fusegrad/fusegrad.hpp>
int main() {
  fg::tensor<float, fg::shape<3>> a;
  fg::tensor<double, fg::shape<3>> b;
  auto e = a * b;
  (void)e;
}
