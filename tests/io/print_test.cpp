#include "../testing.hpp"

#include <sstream>

using namespace fg;

TEST_CASE("tensors print their values / shape and element type") {
  std::ostringstream os;
  tensor<float, shape<2, 2>> a{1, 2, 3, 4.5f};
  os << a;
  CHECK(os.str() == "tensor([[1, 2],\n        [3, 4.5]], shape=[2, 2], float)");
  os.str("");
  os << eval(sum(a));
  CHECK(os.str() == "tensor(10.5, shape=[], float)");
  os.str("");
  tensor<double, shape<dyn>> v(dims_t<1>{3}, {1, 2, 3});
  os << v;
  CHECK(os.str() == "tensor([1, 2, 3], shape=[3], double)");
}
