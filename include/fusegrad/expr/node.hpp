// fusegrad/expr/node.hpp — leaves (views, owned temporaries, scalars) and the elementwise node
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/tensor.hpp"
#include "fusegrad/core/tuple.hpp"
#include "fusegrad/ops/op.hpp"

#include <type_traits>
#include <utility>

FG_DIAGNOSTICS_BEGIN

namespace fg {

template <class X>
concept tensor_like = is_tensor_v<std::remove_cvref_t<X>>;
template <class X>
concept arithmetic = std::is_arithmetic_v<std::remove_cvref_t<X>>;
// Device tensors (fusegrad/cuda/device_tensor.hpp sets this for fg::device_tensor).
template <class X> inline constexpr bool is_device_tensor_v = false;
template <class X>
concept device_tensor_like = is_device_tensor_v<std::remove_cvref_t<X>>;
// What fg's operators accept: expressions and tensors (numbers join them as constants).
template <class X>
concept operand = expression<X> || tensor_like<X> || device_tensor_like<X>;

namespace expr {

// A leaf that reads a tensor the caller keeps alive: pointer and extents, nothing else.
template <class T, class S> struct view : node_base {
  using value_type = T;
  using shape_type = S;
  const T* ptr;
  [[no_unique_address]] extents_holder<S> ext;
  constexpr dims_t<S::rank> dims() const { return ext.dims(); }
};

// A leaf that owns a tensor given as a temporary, so an expression stored with `auto` never
// dangles.
template <class T, class S> struct owned : node_base {
  using value_type = T;
  using shape_type = S;
  tensor<T, S> value;
  dims_t<S::rank> dims() const { return value.dims(); }
  view<T, S> as_view() const { return {{}, value.data(), extents_holder<S>(value.dims())}; }
};

// A number inside an expression: rank 0, broadcast everywhere, never differentiated.
template <class T> struct scalar : node_base {
  using value_type = T;
  using shape_type = shape<>;
  T value;
  static constexpr dims_t<0> dims() { return {}; }
};

namespace detail {
template <class... A> struct common_value { using type = void; };
template <class A, class... B> struct common_value<A, B...> {
  using type = typename A::value_type;
  static constexpr bool ok = (std::is_same_v<type, typename B::value_type> && ...);
};
}  // namespace detail

// Op applied element by element to broadcast operands: one node type for every arity.
template <class Op, class... A> struct elementwise : node_base {
  using common = detail::common_value<A...>;
  static_assert(common::ok,
                "fg: the operands of one expression must share an element type (float or double)");
  static_assert(broadcast_all<typename A::shape_type...>::ok,
                "fg: operand shapes cannot be broadcast together (NumPy rules: trailing extents "
                "must be equal or 1)");
  using value_type = typename common::type;
  using shape_type = typename broadcast_all<typename A::shape_type...>::type;
  using op_type = Op;
  static constexpr std::size_t arity = sizeof...(A);

  fg::detail::tuple<A...> args;
  [[no_unique_address]] extents_holder<shape_type> ext;

  constexpr elementwise(A... a) : args{{std::move(a)}...} {
    // A dyn extent may meet a static one: the result type is static, the check still runs.
    if constexpr (!(A::shape_type::is_static && ...))
      ext = extents_holder<shape_type>(broadcast_args());
  }
  dims_t<shape_type::rank> dims() const { return ext.dims(); }

 private:
  dims_t<shape_type::rank> broadcast_args() const {
    dims_t<shape_type::rank> d{};
    for (auto& x : d)
      x = 1;
    fg::detail::for_each(args, [&](const auto& a) {
      d = broadcast_dims<shape_type::rank>(nullptr, d, a.dims(), Op::name);
    });
    return d;
  }
};

}  // namespace expr

// The element type of an operand.
template <class X> using value_type_t = typename std::remove_cvref_t<X>::value_type;

namespace detail {

// Turns an operand into a node: lvalue tensors become views, temporaries are kept by value.
template <class T, class X> constexpr auto as_node(X&& x) {
  using D = std::remove_cvref_t<X>;
  if constexpr (arithmetic<D>) {
    return expr::scalar<T>{{}, static_cast<T>(x)};
  } else if constexpr (is_tensor_v<D>) {
    using S = typename D::shape_type;
    if constexpr (std::is_lvalue_reference_v<X>)
      return expr::view<typename D::value_type, S>{{}, x.data(), extents_holder<S>(x.dims())};
    else
      return expr::owned<typename D::value_type, S>{{}, std::move(x)};
  } else if constexpr (is_device_tensor_v<D>) {
    static_assert(std::is_lvalue_reference_v<X>,
                  "fg::gpu: a temporary device tensor cannot join an expression (its memory would "
                  "be freed before the kernel reads it): name it first");
    return x.node();
  } else {
    return D(std::forward<X>(x));
  }
}

// The element type an op over these operands computes in: numbers adopt the others' type.
template <class... X> struct operand_value;
template <class X, class... R> struct operand_value<X, R...> {
  using type =
      typename std::conditional_t<arithmetic<X>, operand_value<R...>, operand_value<X>>::type;
};
template <> struct operand_value<> { using type = void; };
template <class X>
requires(!arithmetic<X>) struct operand_value<X> {
  using type = value_type_t<X>;
};

}  // namespace detail

// Builds Op(args...) as an expression: how built-in and user ops alike join the graph.
template <class Op, class... X>
requires((operand<X> || arithmetic<X>)&&...) && (operand<X> || ...) constexpr auto apply(X&&... x) {
  using T = typename detail::operand_value<std::remove_cvref_t<X>...>::type;
  return expr::elementwise<Op, decltype(detail::as_node<T>(std::forward<X>(x)))...>(
      detail::as_node<T>(std::forward<X>(x))...);
}

}  // namespace fg

FG_DIAGNOSTICS_END
