// fusegrad/expr/matmul.hpp — 2-D matrix product (a fusion boundary, evaluated by the GEMM)
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/expr/node.hpp"

FG_DIAGNOSTICS_BEGIN

namespace fg {
namespace expr {

template <class A, class B> struct matmul : node_base {
  using sa = typename A::shape_type;
  using sb = typename B::shape_type;
  static_assert(sa::rank == 2 && sb::rank == 2, "fg::matmul(): both operands must be 2-D matrices");
  static constexpr index_t ka = sa::static_extents[1], kb = sb::static_extents[0];
  static_assert(ka == dyn || kb == dyn || ka == kb,
                "fg::matmul(): A's columns must equal B's rows (see the shapes in this type)");
  static_assert(std::is_same_v<typename A::value_type, typename B::value_type>,
                "fg::matmul(): both operands must share an element type");
  using value_type = typename A::value_type;
  using shape_type = shape<sa::static_extents[0], sb::static_extents[1]>;

  A a;
  B b;

  matmul(A a_, B b_) : a(std::move(a_)), b(std::move(b_)) {
    auto da = a.dims();
    auto db = b.dims();
    if (da[1] != db[0]) {
      fg::detail::message msg;
      msg << "fg::matmul(): A is " << da << ", B is " << db << "; A's columns must equal B's rows";
      raise_shape_error(msg.c_str());
    }
  }
  dims_t<2> dims() const { return {a.dims()[0], b.dims()[1]}; }
};

}  // namespace expr

template <operand A, operand B> auto matmul(A&& a, B&& b) {
  using T = value_type_t<A>;
  auto na = detail::as_node<T>(std::forward<A>(a));
  auto nb = detail::as_node<value_type_t<B>>(std::forward<B>(b));
  return expr::matmul<decltype(na), decltype(nb)>(std::move(na), std::move(nb));
}

}  // namespace fg

FG_DIAGNOSTICS_END
