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

FG_DIAGNOSTICS_BEGIN

namespace fg {

// kernel(f) turns f, a generic lambda over static expressions, into an op on vars: its forward
// is one fused loop over the inputs, and its backward, derived from the expression's type at
// compile time, is one fused loop too (values recomputed in registers, no saved temporaries).
// The inputs share one shape. f returns an elementwise expression of them (the op's output has
// their shape), or a scalar reduction of one, such as fg::sum(...): then value and gradients
// come from a single fused pass, as fg::value_and_grad does. Numbers belong in f's captures.
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
    constexpr bool reduces = decltype(build<float>(in...))::shape_type::rank == 0;
    var y = var::empty(reduces ? extents{} : shape, (in.dtype(), ...));
    // A scalar kernel whose gradient will be asked for computes it now, in the same single pass
    // as its value (as fg::value_and_grad does); the first backward with seed 1 hands it over.
    dynamic::var_list eager;
    const bool recording = dynamic::grad_enabled() && (in.requires_grad() || ...);
    // Gradient targets are found by element address: the same var passed twice is one target
    // (the pass sums both uses), and a different var over the same elements (a detach(), a
    // reshape) is copied so that it is a target of its own, or none.
    constexpr std::size_t N = sizeof...(V);
    const std::array<const var*, N> args{&in...};
    std::array<var, N> src{in...};
    std::vector<bool> wants(N);
    for (std::size_t k = 0; k < N; ++k) {
      bool same = false, shares = false;
      for (std::size_t j = 0; j < k; ++j) {
        same = same || args[j]->handle() == args[k]->handle();
        shares = shares || address(*args[j]) == address(*args[k]);
      }
      wants[k] = args[k]->requires_grad() && !same;
      if (shares && !same)
        src[k] = copy(*args[k]);
    }
    if constexpr (reduces) {
      if (recording) {
        double v = 0;
        eager =
            std::apply([&](const auto&... x) { return backward(nullptr, &v, wants, x...); }, src);
        y.set(0, v);
      }
    }
    dispatch(y.dtype(), [&](auto z) {
      using T = decltype(z);
      const auto e = build<T>(in...);
      if constexpr (reduces) {
        if (!recording)
          y.data<T>()[0] = T(eval(e));
      } else {
        const dims_t<1> d{y.size()};
        exec::evaluator<std::remove_cvref_t<decltype(e)>, 1, exec::forward_mode> ev(e, d);
        exec::assign_pass<T, 1>(ev, d, y.data<T>());
      }
    });
    dynamic::record(y, name_, {in...}, [&](dynamic::node& n) {
      std::array<var, N> keep;
      for (std::size_t k = 0; k < N; ++k)
        keep[k] = n.save(src[k]);
      return [self = *this, keep, wants, eager = std::move(eager)](const var& g) mutable {
        if (!eager.empty() && g.at(0) == 1.0)
          return std::exchange(eager, {});
        return std::apply([&](const auto&... x) { return self.backward(&g, nullptr, wants, x...); },
                          keep);
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
    static_assert(expression<E> && E::shape_type::rank <= 1,
                  "fg::kernel: the function must return an elementwise expression of its "
                  "arguments (their shape), or a reduction of one to a scalar");
    return e;
  }
  // One gradient pass: the seed g read in the same loop that recomputes the expression. For a
  // scalar f, `g` may be null (an upstream gradient of 1) and f's value lands in `value`.
  template <class... V>
  dynamic::var_list backward(const var* g, double* value, const std::vector<bool>& needs,
                             const V&... in) const {
    dynamic::var_list grads(sizeof...(V));
    const dtype type = (in.dtype(), ...);
    dispatch(type, [&](auto z) {
      using T = decltype(z);
      const auto e = build<T>(in...);
      std::vector<exec::target<T>> items;  // a vector: GCC 12 misjudges a fixed array's bounds here
      std::size_t k = 0;
      (
          [&] {
            if (needs[k]) {
              grads[k] = var::empty(in.shape(), type);
              items.push_back({in.template data<T>(), grads[k].template data<T>(), in.size()});
            }
            ++k;
          }(),
          ...);
      using E = std::remove_cvref_t<decltype(e)>;
      if constexpr (E::shape_type::rank == 0) {  // a scalar: value and gradients in one pass
        using root = fg::detail::gradient_root<E>;
        fg::detail::gradient_evaluator_t<E> ev(root::of(e), root::dims(e));
        const T v =
            fg::detail::run_planned(ev, e, items.data(), items.size(), g ? g->data<T>()[0] : T(1));
        if (value)
          *value = double(v);
      } else {  // the seed g read in the same loop that recomputes the expression
        using S = shape<dyn>;
        const dims_t<1> d{g->size()};
        const expr::view<T, S> seed{{}, g->data<T>(), extents_holder<S>(d)};
        exec::evaluator<E, 1> ev(e, d);
        exec::evaluator<expr::view<T, S>, 1> sev(seed, d);
        exec::expression_seed<decltype(sev)> es{sev};
        (void)fg::detail::differentiate<T, 1>(ev, d, es, items.data(), items.size());
      }
    });
    return grads;
  }

  static const void* address(const var& v) { return v.ready().first_byte(); }
  static var copy(const var& v) {
    var c = var::empty(v.shape(), v.dtype());
    dispatch(v.dtype(), [&](auto z) {
      using T = decltype(z);
      std::copy(v.data<T>(), v.data<T>() + v.size(), c.data<T>());
    });
    return c;
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

FG_DIAGNOSTICS_END
