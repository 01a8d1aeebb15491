// fusegrad/core/tuple.hpp — a minimal aggregate tuple: trivially copyable when its members are
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/config.hpp"

#include <cstddef>
#include <utility>

FG_DIAGNOSTICS_BEGIN

namespace fg::detail {

// std::tuple is never trivially copyable; expression nodes must be (they become kernel arguments).
template <std::size_t I, class T> struct tuple_leaf { T value; };
template <class Seq, class... T> struct tuple_impl;
template <std::size_t... I, class... T>
struct tuple_impl<std::index_sequence<I...>, T...> : tuple_leaf<I, T>... {};
template <class... T> using tuple = tuple_impl<std::index_sequence_for<T...>, T...>;

template <std::size_t I, class T> FG_HD constexpr T& get(tuple_leaf<I, T>& t) {
  return t.value;
}
template <std::size_t I, class T> FG_HD constexpr const T& get(const tuple_leaf<I, T>& t) {
  return t.value;
}

// f(get<0>(t), get<1>(t), ...) for each element, in order.
template <class Tuple, class F, std::size_t... I>
FG_HD FG_INLINE constexpr void for_each_impl(Tuple& t, F& f, std::index_sequence<I...>) {
  (f(get<I>(t)), ...);
}
template <std::size_t... I, class... T, class F>
FG_HD FG_INLINE constexpr void for_each(tuple_impl<std::index_sequence<I...>, T...>& t, F&& f) {
  for_each_impl(t, f, std::index_sequence<I...>{});
}
template <std::size_t... I, class... T, class F>
FG_HD FG_INLINE constexpr void for_each(const tuple_impl<std::index_sequence<I...>, T...>& t,
                                        F&& f) {
  for_each_impl(t, f, std::index_sequence<I...>{});
}

}  // namespace fg::detail

FG_DIAGNOSTICS_END
