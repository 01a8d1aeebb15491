// Expressions stored with `auto` hold temporaries by value: built under AddressSanitizer, any
// dangling read fails this test.
#include "../testing.hpp"

#include <fusegrad/static_nn.hpp>

using namespace fg;

namespace {
tensor<double, shape<dyn>> make(double v) {
  tensor<double, shape<dyn>> t(dims_t<1>{64});
  t.fill(v);
  return t;
}
auto build() {
  // Every temporary here dies when build returns; the expression keeps them alive.
  return exp(make(1.0)) * make(2.0) + sum(make(2.0));
}
}  // namespace

TEST_CASE("auto-stored expressions over temporaries do not dangle") {
  tensor<double, shape<8>> keep{5};
  auto e = exp(make(0.0)) + make(2.0) * 3.0;
  auto f = sum(square(make(1.5)) - make(0.5));
  auto g = matmul(reshape<shape<8, 8>>(make(1.0)), transpose(reshape<shape<8, 8>>(make(2.0))));
  auto y = eval(e);
  CHECK(y[63] == doctest::Approx(7.0));
  CHECK(double(eval(f)) == doctest::Approx(64 * 1.75));
  CHECK(eval(g)(3, 4) == doctest::Approx(16.0));
  auto [v, gk] = value_and_grad(sum(e * keep[0]), keep);  // keep unused by reference: zero grad
  CHECK(v == doctest::Approx(64 * 7.0 * 5.0));
  (void)gk;
  auto b = build();
  auto yb = eval(b);
  CHECK(yb[0] == doctest::Approx(2 * std::exp(1.0) + 128));
}

TEST_CASE("static_nn::softmax stored with auto over a temporary tensor does not dangle") {
  auto p = fg::static_nn::softmax(fg::tensor<float, fg::shape<2, 3>>{1, 2, 3, 0, 0, 0});
  fg::tensor<float, fg::shape<2, 3>> out = p;
  CHECK(out(0, 0) + out(0, 1) + out(0, 2) == doctest::Approx(1.0f));
  CHECK(out(1, 1) == doctest::Approx(1.0f / 3));
}
