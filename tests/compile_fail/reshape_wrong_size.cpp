// expect: fg::reshape\(\): the new shape must hold as many elements
#include <fusegrad/fusegrad.hpp>
int main() {
  fg::tensor<float, fg::shape<3, 4>> a;
  auto e = fg::reshape<fg::shape<5, 2>>(a);
  (void)e;
}
