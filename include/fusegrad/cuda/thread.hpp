// fusegrad/cuda/thread.hpp — what one CUDA thread does for one element of a fused pass, as plain
// host/device functions (no CUDA header needed: the host tests run them too)
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/exec/evaluator.hpp"

#include <type_traits>

FG_DIAGNOSTICS_BEGIN

namespace fg {
namespace expr {

// A leaf reading a device tensor. A distinct type from `view`, so that an expression mixing host
// and device memory is a compile-time error rather than a fault on the device.
template <class T, class S> struct device_view : node_base {
  using value_type = T;
  using shape_type = S;
  const T* ptr;
  [[no_unique_address]] extents_holder<S> ext;
  constexpr dims_t<S::rank> dims() const { return ext.dims(); }
};

}  // namespace expr

namespace exec {

// Planning a pass that a CUDA kernel runs: evaluators bind device addresses and compute nothing.
struct device_forward_mode {
  static constexpr bool backward = false, all_inline = false, device = true;
};
struct device_gradient_mode {
  static constexpr bool backward = true, all_inline = false, device = true;
};

template <class T, class S, std::size_t R, class Mode>
struct evaluator<expr::device_view<T, S>, R, Mode> : leaf_eval<T, R> {
  static_assert(Mode::device,
                "fg: this expression reads a device tensor; evaluate it on the device "
                "(fg::gpu::eval, fg::gpu::value_and_grad, or assign it to an fg::device_tensor), "
                "or copy the tensor back with `.to(fg::host)`");
  evaluator(const expr::device_view<T, S>& v, const dims_t<R>& out) {
    this->bind(v.ptr, v.dims(), contiguous(v.dims()), out, true);
  }
};

// What fuses into one CUDA kernel: element-wise trees over device tensors and numbers.
// Reductions and products inside an expression are boundaries the host would compute.
template <class E> inline constexpr bool device_fusable_v = false;
template <class T, class S> inline constexpr bool device_fusable_v<expr::device_view<T, S>> = true;
template <class T> inline constexpr bool device_fusable_v<expr::scalar<T>> = true;
template <class Op, class... A>
inline constexpr bool device_fusable_v<expr::elementwise<Op, A...>> = (device_fusable_v<A> && ...);

// Element i of a pass over extents d, in row-major order: sets the row index of the leading axes
// and returns the position within the row.
template <std::size_t R>
FG_HD FG_INLINE index_t split_index(const dims_t<R>& d, index_t i, dims_t<R>& idx) {
  if constexpr (R == 0) {
    return 0;
  } else {
    const index_t j = i % d[R - 1];
    index_t rest = i / d[R - 1];
    for (std::size_t k = R - 1; k-- > 0;) {
      idx[k] = rest % d[k];
      rest /= d[k];
    }
    return j;
  }
}

// The expression at element i. A flat pass (every leaf laid out as the output) reads element i
// directly; the kernel's rows were set once by the caller.
template <class T, std::size_t R, bool Flat, class K>
FG_HD FG_INLINE T value_element(K& k, const dims_t<R>& d, index_t i) {
  index_t j = i;
  if constexpr (!Flat) {
    dims_t<R> idx{};
    j = split_index(d, i, idx);
    k.row(idx, false);
  }
  return value_of(k.template fwd<T, Flat>(j));
}

// out[i] = the expression at element i.
template <class T, std::size_t R, bool Flat, class K>
FG_HD FG_INLINE void assign_element(K& k, const dims_t<R>& d, T* out, index_t i) {
  out[i] = value_element<T, R, Flat>(k, d, i);
}

// Value and gradient at element i: forward up the tree, the seed's adjoint down it. Returns the
// value, which the caller sums.
template <class T, std::size_t R, bool Flat, class K, class Seed>
FG_HD FG_INLINE T gradient_element(K& k, Seed& s, const dims_t<R>& d, index_t i) {
  index_t j = i;
  if constexpr (!Flat) {
    dims_t<R> idx{};
    j = split_index(d, i, idx);
    k.row(idx, false);
    s.row(idx, false);
  }
  const auto r = k.template fwd<T, Flat, true>(j);
  const T y = value_of(r);
  k.template bwd<T, Flat>(r, s.template get<T, Flat>(y, j), j);
  return y;
}

}  // namespace exec
}  // namespace fg

FG_DIAGNOSTICS_END
