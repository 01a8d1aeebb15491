// The op table is open: an op struct written here works in expressions, gradients and reductions
// exactly like a built-in one.
#include "../testing.hpp"

namespace {
// GELU (tanh form), as a library author would add it: one struct, value and derivative.
struct gelu_op {
  static constexpr const char* name = "gelu";
  template <class V> static V forward(V x) {
    using namespace fg::math;
    const V c(0.7978845608028654), k(0.044715);
    return V(0.5) * x * (V(1) + tanh(c * (x + k * x * x * x)));
  }
  template <class V> static V derivative(V x, V) {
    using namespace fg::math;
    const V c(0.7978845608028654), k(0.044715);
    const V t = tanh(c * (x + k * x * x * x));
    return V(0.5) * (V(1) + t) + V(0.5) * x * (V(1) - t * t) * c * (V(1) + V(3) * k * x * x);
  }
};
// A binary user op returning both partials: a smooth hinge max(a, b) approximation.
struct smooth_max_op {
  static constexpr const char* name = "smooth_max";
  template <class V> static V forward(V a, V b) {
    return fg::math::log(fg::math::exp(a) + fg::math::exp(b));
  }
  template <class V> static fg::partials<V, 2> partials(V a, V b, V y) {
    return {{fg::math::exp(a - y), fg::math::exp(b - y)}};
  }
};
}  // namespace

TEST_CASE("a user-defined op joins expressions and gradients") {
  fg::tensor<double, fg::shape<fg::dyn>> x(fg::dims_t<1>{19}), y(fg::dims_t<1>{19});
  fg::testing::fill_uniform(x, -3, 3);
  fg::testing::fill_uniform(y, -3, 3);
  fg::testing::check_gradient([](auto& a) { return fg::sum(fg::apply<gelu_op>(a)); }, x);
  fg::testing::check_gradient(
      [](auto& a, auto& b) { return fg::mean(fg::apply<smooth_max_op>(a * 2.0, fg::sin(b))); }, x,
      y);
}
