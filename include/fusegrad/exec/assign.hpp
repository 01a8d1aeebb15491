// fusegrad/exec/assign.hpp — fg::eval(expr) and tensor = expr, safe when the target is also read
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/exec/evaluator.hpp"

FG_DIAGNOSTICS_BEGIN

namespace fg {

template <expression E>
using result_t = tensor<typename std::remove_cvref_t<E>::value_type,
                        typename std::remove_cvref_t<E>::shape_type>;

namespace detail {
template <class T, class S, class E> void evaluate_into(tensor<T, S>& dst, const E& e) {
  constexpr std::size_t R = S::rank;
  exec::evaluator<E, R, exec::forward_mode> ev(e, dst.dims());  // forward only
  exec::assign_pass<T, R>(ev, dst.dims(), dst.data());
}
}  // namespace detail

// Evaluates an expression into a new tensor of its shape: one fused pass per fusion stage.
template <expression E> result_t<E> eval(const E& e) {
  using D = std::remove_cvref_t<E>;
  result_t<E> out;
  if constexpr (!D::shape_type::is_static)
    out.resize(e.dims());
  detail::evaluate_into(out, e);
  return out;
}

template <class T, class S, class E> void assign_expr(tensor<T, S>& dst, const E& e) {
  using ES = typename E::shape_type;
  static_assert(std::is_same_v<typename E::value_type, T>,
                "fg::tensor::operator=: the expression's element type differs from the tensor's");
  static_assert(assignable_v<S, ES>,
                "fg::tensor::operator=: the expression's shape does not fit the tensor's");
  constexpr std::size_t R = S::rank;
  if constexpr (!S::is_static) {
    const auto want = broadcast_dims<R>("fg::tensor::operator=", dims_t<0>{}, e.dims());
    if (dst.dims() != want || dst.size() == 0) {
      // New extents: evaluate into fresh storage first, the old may still be read.
      tensor<T, S> fresh(uninitialized, want);
      detail::evaluate_into(fresh, e);
      dst = std::move(fresh);
      return;
    }
  } else if constexpr (!ES::is_static) {
    if (broadcast_dims<R>("fg::tensor::operator=", dst.dims(), e.dims()) != dst.dims())
      raise_shape_error("fg::tensor::operator=: the expression's shape does not fit the tensor's");
  }
  exec::evaluator<E, R, exec::forward_mode> ev(e, dst.dims());  // forward only
  const T* lo = dst.data();
  if (ev.aliases(lo, lo + dst.size())) {  // e.g. x = transpose(x): read everything first
    tensor<T, S> tmp(dst);
    exec::assign_pass<T, R>(ev, dst.dims(), tmp.data());
    dst = std::move(tmp);
    return;
  }
  exec::assign_pass<T, R>(ev, dst.dims(), dst.data());
}

}  // namespace fg

FG_DIAGNOSTICS_END
