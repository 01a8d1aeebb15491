// fusegrad/grad/gradient.hpp — fg::gradient(f, x): a gradient as a lazy expression of x's shape
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/grad/reverse.hpp"

FG_DIAGNOSTICS_BEGIN

namespace fg {
namespace expr {

// The gradient of scalar F with respect to tensor x, as an expression: it composes with any
// other (`w = w - lr * fg::gradient(loss, w)`), evaluates through the fused gradient pass, and
// on the static path allocates nothing.
template <class F, class T, class S> struct gradient : node_base {
  using value_type = T;
  using shape_type = S;
  F f;
  view<T, S> x;
  dims_t<S::rank> dims() const { return x.dims(); }
};

}  // namespace expr

template <expression F, tensor_like X> auto gradient(F&& f, const X& x) {
  using D = std::remove_cvref_t<F>;
  using T = typename D::value_type;
  using S = typename X::shape_type;
  static_assert(
      D::shape_type::rank == 0,
      "fg::gradient(): f must be a scalar (0-d) expression; use fg::vjp for other shapes");
  static_assert(std::is_same_v<typename X::value_type, T>,
                "fg::gradient(): x must share the expression's element type");
  return expr::gradient<D, T, S>{
      {}, D(std::forward<F>(f)), {{}, x.data(), extents_holder<S>(x.dims())}};
}

namespace exec {

// A boundary: the gradient pass writes into its buffer, which the enclosing pass then reads.
template <class F, class T, class S, std::size_t R, class Mode>
struct evaluator<expr::gradient<F, T, S>, R, Mode>
    : acts_as_leaf<evaluator<expr::gradient<F, T, S>, R, Mode>, T, R> {
  materialized<T, S, R, Mode> m;
  F f;  // kept to tell whether an outer gradient would need second derivatives
  evaluator(const expr::gradient<F, T, S>& g, const dims_t<R>& pass) : m(g.dims()), f(g.f) {
    target<T> item{g.x.ptr, m.value.data(), size_of(g.dims())};
    (void)fg::detail::run_gradient(g.f, &item, 1);
    m.expose(m.dims, contiguous(m.dims), pass);
  }
  // Second derivatives would need the op table's derivatives differentiated in turn: an outer
  // gradient with respect to anything f depends on is refused, never silently zero.
  bool reaches(const targets<T>&) const { return false; }
  void plan(targets<T>& tg) {
    if (tg.phase == 0 && evaluator<F, 0>(f, dims_t<0>{}).reaches(tg))
      raise_error("fg::gradient(): differentiating a gradient (second order) is not supported");
  }
  void plan_stages(targets<T>&) {}
  void run_stages() {}
  leaf_eval<T, R>& leaf() { return m.leaf; }
  const leaf_eval<T, R>& leaf() const { return m.leaf; }
};

}  // namespace exec
}  // namespace fg

FG_DIAGNOSTICS_END
