// fusegrad/core/math.hpp — one router for math functions: std for scalars, xsimd for batches
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/simd.hpp"

#include <cmath>

FG_DIAGNOSTICS_BEGIN

namespace fg::math {

// Each call resolves by argument type: std:: overloads for float/double, xsimd's (found by ADL)
// for batches. Op structs call only these, so one body serves every backend.
#define FG_MATH_UNARY(name)                        \
  template <class V> FG_HD FG_INLINE V name(V x) { \
    using std::name;                               \
    return name(x);                                \
  }
FG_MATH_UNARY(exp)
FG_MATH_UNARY(log)
FG_MATH_UNARY(log1p)
FG_MATH_UNARY(expm1)
FG_MATH_UNARY(sin)
FG_MATH_UNARY(cos)
FG_MATH_UNARY(tanh)
FG_MATH_UNARY(sqrt)
FG_MATH_UNARY(abs)
FG_MATH_UNARY(erf)
#undef FG_MATH_UNARY

// sin and cos with one range reduction (xsimd::sincos; GCC merges the scalar pair itself).
template <class V> FG_HD FG_INLINE void sincos(V x, V& s, V& c) {
  if (!simd::sincos_batch(x, s, c)) {
    using std::cos;
    using std::sin;
    s = sin(x);
    c = cos(x);
  }
}

template <class V> FG_HD FG_INLINE V pow(V x, V y) {
  return simd::pow(x, y);
}
template <class V> FG_HD FG_INLINE V min(V a, V b) {
  return simd::min(a, b);
}
template <class V> FG_HD FG_INLINE V max(V a, V b) {
  return simd::max(a, b);
}

// Comparisons give 1 or 0 in the value type (a mask that is an ordinary value).
template <class V> FG_HD FG_INLINE V lt(V a, V b) {
  return simd::from_mask<V>(a < b);
}
template <class V> FG_HD FG_INLINE V le(V a, V b) {
  return simd::from_mask<V>(a <= b);
}
template <class V> FG_HD FG_INLINE V eq(V a, V b) {
  return simd::from_mask<V>(a == b);
}
// (not `a != b`: AVX's ordered compare says NaN != 0 is false, where C++ and PyTorch say true)
template <class V> FG_HD FG_INLINE V ne(V a, V b) {
  return V(1) - math::eq(a, b);
}
template <class V> FG_HD FG_INLINE V select(V mask, V a, V b) {
  return simd::select_nonzero(mask, a, b);
}

}  // namespace fg::math

FG_DIAGNOSTICS_END
