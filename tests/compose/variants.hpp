// tests/compose/variants.hpp — the static path's entry points the composition test runs, and
// which of them each generated tree is compiled for (shared by the generator and the runner)
// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>

namespace compose {

enum class static_variant : int {
  static_double,  // fg::value_and_grad, static extents, float64
  dyn_double,     // fg::value_and_grad, fg::dyn extents, float64
  static_float,   // float32
  dyn_float,      //
  into_aliased,   // fg::value_and_grad_into, static extents, float64, the first gradient written
                  // over the first leaf's own tensor
  lazy_gradient,  // fg::eval(fg::gradient(f, x)) per leaf, fg::dyn extents, float64
  vjp,            // fg::vjp(f, 1, ...), static extents, float64
  kernel_double,  // fg::kernel over fg::var (kernel-form trees only), float64
  kernel_float,   //
  count
};
// Which variants a tree is compiled for (each costs the compiler about as much as the others):
// every tree on both extent kinds in both element types; one of the other entry points in turn;
// fg::kernel where the tree is elementwise over same-shaped leaves.
inline bool compiled(static_variant v, std::size_t index, bool kernel_form) {
  switch (v) {
    case static_variant::into_aliased:
      return index % 3 == 0;
    case static_variant::lazy_gradient:
      return index % 3 == 1;
    case static_variant::vjp:
      return index % 3 == 2;
    case static_variant::kernel_double:
    case static_variant::kernel_float:
      return kernel_form;
    default:
      return true;
  }
}
inline const char* variant_name(static_variant v) {
  static constexpr const char* names[] = {"static path, static extents, float64",
                                          "static path, fg::dyn extents, float64",
                                          "static path, static extents, float32",
                                          "static path, fg::dyn extents, float32",
                                          "value_and_grad_into over an input",
                                          "fg::gradient expressions, fg::dyn, float64",
                                          "fg::vjp, static extents, float64",
                                          "fg::kernel, float64",
                                          "fg::kernel, float32"};
  return names[int(v)];
}

}  // namespace compose
