// expect: fg::reduce: an axis is out of range
#include <fusegrad/fusegrad.hpp>
int main() {
  fg::tensor<float, fg::shape<3, 4>> a;
  auto e = fg::sum(a, fg::axes<2>{});
  (void)e;
}
