// Printing vars as PyTorch does: one format for all elements shown, integers and bools as such,
// summarised past a threshold with "...", rows wrapped at the line width, options settable.
#include "dynamic_testing.hpp"

#include <sstream>
#include <string>

using namespace fg;

namespace {
std::string str(const var& v) {
  std::ostringstream os;
  os << v;
  return os.str();
}
// Restores the default options when a test case ends, whatever it set.
struct default_options {
  ~default_options() { set_print_options(); }
};
}  // namespace

TEST_CASE("print / floats: fixed point, integral values with a point, scientific past 1e3 spread") {
  CHECK(str(var::from({0, 0.25, -1.5}, {3})) ==
        "var([ 0.0000,  0.2500, -1.5000], shape=[3], float32)");
  CHECK(str(var::from({1, 2, -30}, {3}, dtype::float64)) ==
        "var([  1.,   2., -30.], shape=[3], float64)");
  CHECK(str(var::from({1e-5, 1}, {2})) == "var([1.0000e-05, 1.0000e+00], shape=[2], float32)");
  CHECK(str(var::from({1, 1e9}, {2}, dtype::float64)) ==
        "var([1.0000e+00, 1.0000e+09], shape=[2], float64)");
  CHECK(str(var::from({std::nan(""), 1.5, -INFINITY}, {3})) ==
        "var([   nan, 1.5000,   -inf], shape=[3], float32)");
  CHECK(str(var::scalar(2.5)) == "var(2.5000, shape=[], float32)");
}

TEST_CASE("print / integers, bools and half types") {
  CHECK(str(var::arange(-2, 3)) == "var([-2, -1,  0,  1,  2], shape=[5], int64)");
  CHECK(str(var::from({1, 0}, {2}, dtype::bool_)) == "var([ True, False], shape=[2], bool)");
  CHECK(str(var::from({0.5, 2}, {2}, dtype::bfloat16)) ==
        "var([0.5000, 2.0000], shape=[2], bfloat16)");
  const std::int64_t big = (std::int64_t(1) << 62) + 1;  // exact, not through double
  CHECK(str(var::from(std::vector<std::int64_t>{big}, {1})) ==
        "var([4611686018427387905], shape=[1], int64)");
}

TEST_CASE("print / past the threshold only the edges of each axis show, around ...") {
  const var x = reshape(var::arange(0, 40 * 40), {40, 40});
  const std::string s = str(x);
  CHECK(s ==
        "var([[   0,    1,    2,  ...,   37,   38,   39],\n"
        "     [  40,   41,   42,  ...,   77,   78,   79],\n"
        "     [  80,   81,   82,  ...,  117,  118,  119],\n"
        "     ...,\n"
        "     [1480, 1481, 1482,  ..., 1517, 1518, 1519],\n"
        "     [1520, 1521, 1522,  ..., 1557, 1558, 1559],\n"
        "     [1560, 1561, 1562,  ..., 1597, 1598, 1599]], shape=[40, 40], int64)");
  CHECK(str(var::arange(2000)).find("[   0,    1,    2,  ..., 1997, 1998, 1999]") !=
        std::string::npos);
}

TEST_CASE("print / set_print_options: precision, threshold, edge items, line width") {
  default_options restore;
  set_print_options(2, 4, 1);
  CHECK(str(var::from({0.125, 1, 2, 3, 4}, {5})) == "var([0.12,  ..., 4.00], shape=[5], float32)");
  set_print_options(4, 1000, 3, 30);  // (PyTorch's rule; "var(" is 3 columns shorter)
  CHECK(str(var::arange(10)) == "var([0, 1, 2, 3, 4, 5, 6, 7,\n     8, 9], shape=[10], int64)");
}
