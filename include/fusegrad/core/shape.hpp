// fusegrad/core/shape.hpp — static and dynamic extents, broadcasting rules, shape formatting
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/config.hpp"
#include "fusegrad/core/error.hpp"
#include "fusegrad/core/message.hpp"

#include <array>
#include <type_traits>

FG_DIAGNOSTICS_BEGIN

namespace fg {

// An extent known only at run time.
inline constexpr index_t dyn = static_cast<index_t>(-1);

// The shape of a tensor: each extent a number or fg::dyn.
template <index_t... E> struct shape {
  static constexpr index_t rank = sizeof...(E);
  static_assert(rank <= max_rank, "fg::shape: rank above fg::max_rank (8) is not supported");
  static constexpr std::array<index_t, rank> static_extents{E...};
  static constexpr bool is_static = ((E != dyn) && ...);
  // Number of elements, when every extent is static.
  static constexpr index_t static_size = is_static ? (index_t(1) * ... * E) : dyn;
};

template <class S> inline constexpr bool is_shape_v = false;
template <index_t... E> inline constexpr bool is_shape_v<shape<E...>> = true;

// Run-time extents of rank R.
template <std::size_t R> using dims_t = std::array<index_t, R>;

template <std::size_t R> constexpr index_t size_of(const dims_t<R>& d) {
  index_t n = 1;
  for (std::size_t i = 0; i < R; ++i)
    n *= d[i];
  return n;
}

// Holds the extents of a shape: nothing for a static shape, an array when any extent is dyn.
template <class S, bool = S::is_static> struct extents_holder {
  constexpr extents_holder() = default;
  constexpr explicit extents_holder(const dims_t<S::rank>&) {}
  static constexpr dims_t<S::rank> dims() { return S::static_extents; }
};
template <class S> struct extents_holder<S, false> {
  dims_t<S::rank> d{};
  constexpr extents_holder() = default;
  constexpr explicit extents_holder(const dims_t<S::rank>& x) : d(x) {}
  constexpr dims_t<S::rank> dims() const { return d; }
};

namespace detail {

constexpr index_t broadcast_extent(index_t a, index_t b) {
  if (a == b)
    return a;
  if (a == 1)
    return b;
  if (b == 1)
    return a;
  if (a == dyn)
    return b;  // checked at run time: a must then be 1 or b
  if (b == dyn)
    return a;
  return 0;  // incompatible: reported by static_assert where the expression is formed
}

template <class A, class B> struct broadcast_impl {
  static constexpr std::size_t rank = A::rank > B::rank ? A::rank : B::rank;
  static constexpr index_t at(std::size_t i) {  // i counts from the right
    // (i + 1 <= rank, not i < rank: nvcc warns on `i < 0` for a rank-0 operand)
    index_t a = i + 1 <= A::rank ? A::static_extents[A::rank - 1 - i] : 1;
    index_t b = i + 1 <= B::rank ? B::static_extents[B::rank - 1 - i] : 1;
    return broadcast_extent(a, b);
  }
  static constexpr bool ok = [] {
    for (std::size_t i = 0; i < rank; ++i)
      if (at(i) == 0)
        return false;
    return true;
  }();
  template <std::size_t... I>
  static auto make(std::index_sequence<I...>) -> shape<(ok ? at(rank - 1 - I) : 1)...>;
  using type = decltype(make(std::make_index_sequence<rank>{}));
};

}  // namespace detail

// True when shapes A and B can be broadcast together as far as the compiler can tell.
template <class A, class B>
inline constexpr bool broadcastable_v = detail::broadcast_impl<A, B>::ok;

// The NumPy broadcast of shapes A and B (a placeholder of ones when they do not broadcast).
template <class A, class B> using broadcast_t = typename detail::broadcast_impl<A, B>::type;

// The broadcast of several shapes; `ok` is false when the compiler can see they do not fit.
template <class... S> struct broadcast_all;
template <class S> struct broadcast_all<S> {
  using type = S;
  static constexpr bool ok = true;
};
template <class A, class B, class... S> struct broadcast_all<A, B, S...> {
  using rest = broadcast_all<broadcast_t<A, B>, S...>;
  using type = typename rest::type;
  static constexpr bool ok = broadcastable_v<A, B> && rest::ok;
};

// True when an expression of shape E can be assigned to a tensor of shape S: E has no more axes,
// and each of its extents equals S's, is 1 (broadcast), or either is only known at run time.
template <class S, class E>
inline constexpr bool assignable_v = [] {
  if (E::rank > S::rank)
    return false;
  for (std::size_t i = 0; i < E::rank; ++i) {
    const index_t s = S::static_extents[S::rank - 1 - i], e = E::static_extents[E::rank - 1 - i];
    if (!(s == dyn || e == dyn || e == 1 || s == e))
      return false;
  }
  return true;
}();

// Run-time broadcast of extents; raises fg::shape_error naming both shapes on a mismatch. The
// message names `api`, or "fg::<op>()" when an op name is given (formatted only on error).
template <std::size_t R, std::size_t RA, std::size_t RB>
inline dims_t<R> broadcast_dims(const char* api, const dims_t<RA>& a, const dims_t<RB>& b,
                                const char* op = nullptr) {
  dims_t<R> out{};
  for (std::size_t i = 0; i < R; ++i) {
    index_t ea = i + 1 <= RA ? a[RA - 1 - i] : 1;
    index_t eb = i + 1 <= RB ? b[RB - 1 - i] : 1;
    if (ea != eb && ea != 1 && eb != 1) {
      detail::message msg;
      if (op)
        msg << "fg::" << op << "(): ";
      else
        msg << api << ": ";
      msg << "cannot broadcast shapes " << a << " and " << b;
      raise_shape_error(msg.c_str());
    }
    out[R - 1 - i] = ea == 1 ? eb : ea;
  }
  return out;
}

// Row-major strides of contiguous extents.
template <std::size_t R> constexpr dims_t<R> contiguous_strides(const dims_t<R>& d) {
  dims_t<R> s{};
  index_t acc = 1;
  for (std::size_t i = R; i-- > 0;) {
    s[i] = acc;
    acc *= d[i];
  }
  return s;
}

}  // namespace fg

FG_DIAGNOSTICS_END
