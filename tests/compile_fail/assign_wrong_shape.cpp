// expect: fg::tensor::operator=: the expression's shape does not fit the tensor's
#include <fusegrad/fusegrad.hpp>
int main() {
  fg::tensor<float, fg::shape<3>> a;
  fg::tensor<float, fg::shape<4>> b;
  a = fg::exp(b);
}
