// fusegrad/expr/layout.hpp — transpose and reshape: views of a tensor, boundaries over an
// expression SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/expr/node.hpp"

FG_DIAGNOSTICS_BEGIN

namespace fg {
namespace expr {

// All axes reversed (a matrix's transpose), as NumPy's .T.
template <class A> struct transpose : node_base {
  using in_shape = typename A::shape_type;
  static constexpr std::size_t rank = in_shape::rank;
  template <std::size_t... K>
  static auto make(std::index_sequence<K...>) -> shape<in_shape::static_extents[rank - 1 - K]...>;
  using value_type = typename A::value_type;
  using shape_type = decltype(make(std::make_index_sequence<rank>{}));
  A arg;
  dims_t<rank> dims() const {
    auto in = arg.dims();
    dims_t<rank> d{};
    for (std::size_t k = 0; k < rank; ++k)
      d[k] = in[rank - 1 - k];
    return d;
  }
};

// The same elements in row-major order under new extents.
template <class A, class S> struct reshape : node_base {
  using value_type = typename A::value_type;
  using shape_type = S;
  static_assert(!S::is_static || !A::shape_type::is_static ||
                    S::static_size == A::shape_type::static_size,
                "fg::reshape(): the new shape must hold as many elements as the operand");
  A arg;
  [[no_unique_address]] extents_holder<S> ext;
  dims_t<S::rank> dims() const { return ext.dims(); }
};

}  // namespace expr

template <operand X> auto transpose(X&& x) {
  auto a = detail::as_node<value_type_t<X>>(std::forward<X>(x));
  return expr::transpose<decltype(a)>{{}, std::move(a)};
}

// reshape<fg::shape<2, 6>>(x); with dyn extents pass them: reshape<fg::shape<fg::dyn, 6>>(x, {n,
// 6}).
template <class S, operand X> auto reshape(X&& x, const dims_t<S::rank>& d = S::static_extents) {
  auto a = detail::as_node<value_type_t<X>>(std::forward<X>(x));
  if (size_of(d) != size_of(a.dims())) {
    fg::detail::message msg;
    msg << "fg::reshape(): cannot view " << size_of(a.dims()) << " elements as " << d;
    raise_shape_error(msg.c_str());
  }
  for (std::size_t k = 0; k < S::rank; ++k) {
    if (S::static_extents[k] != dyn && S::static_extents[k] != d[k]) {
      raise_shape_error("fg::reshape(): the extents given contradict the static shape");
    }
  }
  return expr::reshape<decltype(a), S>{{}, std::move(a), extents_holder<S>(d)};
}

}  // namespace fg

FG_DIAGNOSTICS_END
