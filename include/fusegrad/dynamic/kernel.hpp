// fusegrad/dynamic/kernel.hpp — fg::kernel: a static expression as one fused, differentiable
// op of the dynamic path
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/elementwise.hpp"
#include "fusegrad/exec/assign.hpp"
#include "fusegrad/expr/functions.hpp"
#include "fusegrad/expr/reduce.hpp"
#include "fusegrad/grad/reverse.hpp"

#include <string>
#include <vector>

namespace fg {

// kernel(f) turns f, a generic lambda over static expressions, into an op on vars: its forward
// is one fused loop over the inputs, and its backward, derived from the expression's type at
// compile time, is one fused loop too (values recomputed in registers, no saved temporaries).
// The inputs share one shape (0-d: a scalar per call); f must be elementwise (return an
// expression of its arguments' shape). Numbers belong in f's captures.
template <class F> class kernel_op {
 public:
  kernel_op(const char* name, F f) : name_(name), f_(std::move(f)) {}

  template <std::same_as<var>... V> var operator()(const V&... in) const {
    static_assert(sizeof...(V) > 0, "fg::kernel: give the kernel at least one input");
    dynamic::check_dtypes(name_, in...);
    const extents& shape = (in.shape(), ...);
    if (!((in.shape() == shape) && ...)) {
      std::string m = dynamic::text("fg::", name_, "(): a kernel's inputs must share one shape;");
      ((m.append(" ").append(in.shape().str())), ...);
      throw shape_error(m);
    }
    var y = var::empty(shape, (in.dtype(), ...));
    dispatch(y.dtype(), [&](auto z) {
      using T = decltype(z);
      const auto e = build<T>(in...);
      const dims_t<1> d{y.size()};
      exec::evaluator<std::remove_cvref_t<decltype(e)>, 1, exec::forward_mode> ev(e, d);
      exec::assign_pass<T, 1>(ev, d, y.data<T>());
    });
    dynamic::record(y, name_, {in...}, [&](dynamic::node& n) {
      return [self = *this, keep = std::array<var, sizeof...(V)>{n.save(in)...},
              needs = n.inputs](const var& g) {
        return std::apply([&](const auto&... x) { return self.backward(g, needs, x...); }, keep);
      };
    });
    return y;
  }

 private:
  template <class T, class... V> auto build(const V&... in) const {
    using S = shape<dyn>;
    auto e =
        f_(expr::view<T, S>{{}, in.template data<T>(), extents_holder<S>(dims_t<1>{in.size()})}...);
    using E = std::remove_cvref_t<decltype(e)>;
    static_assert(expression<E> && E::shape_type::rank == 1,
                  "fg::kernel: the function must return an elementwise expression of its "
                  "arguments (same shape; reduce outside the kernel)");
    return e;
  }
  // One gradient pass: the seed g read in the same loop that recomputes the expression.
  template <class... V>
  std::vector<var> backward(const var& g, const std::vector<var>& needs, const V&... in) const {
    std::vector<var> grads(sizeof...(V));
    dispatch(g.dtype(), [&](auto z) {
      using T = decltype(z);
      const auto e = build<T>(in...);
      const dims_t<1> d{g.size()};
      std::vector<exec::target<T>> items;  // a vector: GCC 12 misjudges a fixed array's bounds here
      std::size_t k = 0;
      (
          [&] {
            // A tensor passed twice is one target: the pass sums every occurrence into it.
            const T* p = in.template data<T>();
            bool named = false;
            for (const auto& t : items)
              named = named || t.data == p;
            if (needs[k].defined() && !named) {
              grads[k] = var::empty(in.shape(), g.dtype());
              items.push_back({p, grads[k].template data<T>(), in.size()});
            }
            ++k;
          }(),
          ...);
      using S = shape<dyn>;
      const expr::view<T, S> seed{{}, g.data<T>(), extents_holder<S>(d)};
      exec::evaluator<std::remove_cvref_t<decltype(e)>, 1> ev(e, d);
      exec::evaluator<expr::view<T, S>, 1> sev(seed, d);
      exec::expression_seed<decltype(sev)> es{sev};
      (void)fg::detail::differentiate<T, 1>(ev, d, es, items.data(), items.size());
    });
    return grads;
  }

  const char* name_;
  F f_;
};

template <class F> kernel_op<F> kernel(F f) {
  return {"kernel", std::move(f)};
}
// Named: the name shows in errors, printing and graph pictures.
template <class F> kernel_op<F> kernel(const char* name, F f) {
  return {name, std::move(f)};
}

}  // namespace fg
