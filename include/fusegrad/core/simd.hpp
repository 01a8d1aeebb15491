// fusegrad/core/simd.hpp — the one shim over xsimd (8.x and later) with a scalar fallback
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/config.hpp"

#include <cmath>
#include <cstddef>
#include <type_traits>

#if FG_HAS_XSIMD
// (GCC 12: xsimd's out-of-line kernels, e.g. the trigonometric range reduction, inline AVX-512
// intrinsics that trip -Wmaybe-uninitialized, GCC bug 105593 as below: silenced in xsimd's code)
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <xsimd/xsimd.hpp>
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic pop
#endif
#endif

FG_DIAGNOSTICS_BEGIN

namespace fg::simd {

#if FG_HAS_XSIMD
template <class T> using batch = xsimd::batch<T>;
template <class T> inline constexpr std::size_t width = xsimd::batch<T>::size;
template <class V> inline constexpr bool is_batch_v = xsimd::is_batch<V>::value;
inline constexpr std::size_t alignment = xsimd::default_arch::alignment() >
                                                 alignof(std::max_align_t)
                                             ? xsimd::default_arch::alignment()
                                             : alignof(std::max_align_t);
#else
// Without xsimd the "batch" is the scalar itself, so every loop is a plain loop.
template <class T> using batch = T;
template <class T> inline constexpr std::size_t width = 1;
template <class V> inline constexpr bool is_batch_v = false;
inline constexpr std::size_t alignment = alignof(std::max_align_t);
#endif

// The scalar type of a scalar or a batch.
template <class V> struct scalar_of { using type = V; };
#if FG_HAS_XSIMD
template <class T, class A> struct scalar_of<xsimd::batch<T, A>> { using type = T; };
#endif
template <class V> using scalar_t = typename scalar_of<V>::type;

template <class V>
inline constexpr std::size_t lanes = [] {
  if constexpr (is_batch_v<V>)
    return V::size;
  else
    return std::size_t(1);
}();

template <class V, class T> FG_HD FG_INLINE V load(const T* p) {
  if constexpr (is_batch_v<V>)
    return V::load_unaligned(p);
  else
    return *p;
}
template <class V, class T> FG_HD FG_INLINE void store(T* p, V v) {
  if constexpr (is_batch_v<V>)
    v.store_unaligned(p);
  else
    *p = v;
}
template <class V, class T> FG_HD FG_INLINE V splat(T x) {
  return V(x);
}
// Strided gather/scatter for views whose inner stride is neither 0 nor 1 (transposes).
template <class V, class T> FG_HD FG_INLINE V gather(const T* p, std::ptrdiff_t stride) {
  if constexpr (is_batch_v<V>) {
    alignas(alignment) T tmp[V::size];
    for (std::size_t k = 0; k < V::size; ++k)
      tmp[k] = p[std::ptrdiff_t(k) * stride];
    return V::load_aligned(tmp);
  } else {
    return *p;
  }
}
template <class V, class T> FG_HD FG_INLINE void to_array(V v, T* out) {
  if constexpr (is_batch_v<V>)
    v.store_unaligned(out);
  else
    *out = v;
}
// GCC 12's AVX-512 intrinsics (_mm512_extractf64x4_pd, _mm512_max_pd, ...) pass an undefined
// __Y to themselves and -Wmaybe-uninitialized flags it wherever they inline (GCC bug 105593,
// fixed in GCC 13): a false positive, silenced for the calls into xsimd below and nowhere else.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define FG_GCC_AVX512_FALSE_POSITIVE 1
#endif
template <class V> FG_HD FG_INLINE scalar_t<V> hsum(V v) {
  if constexpr (is_batch_v<V>) {
#if FG_HAS_XSIMD && XSIMD_VERSION_MAJOR < 9
    return xsimd::hadd(v);
#elif FG_HAS_XSIMD
    return xsimd::reduce_add(v);
#endif
  } else {
    return v;
  }
}

// Every direct xsimd call lives below, so that without xsimd nothing names it.
#if FG_HAS_XSIMD
// Select a where mask is set: masks are values (1 or 0) so that every node has one value type.
template <class V> FG_INLINE V select_nonzero(V mask, V a, V b) {
  if constexpr (is_batch_v<V>)
    return xsimd::select(mask != V(0), a, b);
  else
    return mask != V(0) ? a : b;
}
template <class V, class M> FG_INLINE V from_mask(M m) {
  if constexpr (is_batch_v<V>)
    return xsimd::select(m, V(1), V(0));
  else
    return m ? V(1) : V(0);
}
template <class V> FG_INLINE V fma(V a, V b, V c) {
  if constexpr (is_batch_v<V>)
    return xsimd::fma(a, b, c);
  else
    return a * b + c;
}
// min/max propagate NaN (as NumPy and PyTorch do), the same in SIMD lanes and scalar tails.
template <class V> FG_INLINE V min(V a, V b) {
  if constexpr (is_batch_v<V>)
    return xsimd::select(xsimd::isnan(a) || xsimd::isnan(b), a + b, xsimd::min(a, b));
  else
    return (a != a || b != b) ? a + b : (b < a ? b : a);
}
template <class V> FG_INLINE V max(V a, V b) {
  if constexpr (is_batch_v<V>)
    return xsimd::select(xsimd::isnan(a) || xsimd::isnan(b), a + b, xsimd::max(a, b));
  else
    return (a != a || b != b) ? a + b : (a < b ? b : a);
}
// x^y lane by lane with std::pow. xsimd 8's pow is exp(y log|x|): it gives 0^0 = 0, 0^-1 = 0,
// 1^inf = NaN, calls -1^(1e300) odd, loses |y log x| ulps (4e-6 relative at 10^30 in float) and
// flushes subnormal results. std::pow has every special value of C99 Annex F and is within an ulp;
// per element it costs 4.8 ns (float) and 11 ns (double) where xsimd's costs 1.8 and 7.5 (AVX2,
// this project's machine), and SIMD lanes then agree bitwise with scalar tails.
template <class V> FG_INLINE V pow(V x, V y) {
  using std::pow;
  if constexpr (is_batch_v<V>) {
    alignas(alignment) scalar_t<V> xs[V::size], ys[V::size];
    x.store_aligned(xs);
    y.store_aligned(ys);
    for (std::size_t k = 0; k < V::size; ++k)
      xs[k] = pow(xs[k], ys[k]);
    return V::load_aligned(xs);
  } else {
    return pow(x, y);
  }
}
template <class V> FG_INLINE bool sincos_batch(V x, V& s, V& c) {
  if constexpr (is_batch_v<V>) {
    auto sc = xsimd::sincos(x);
    s = sc.first;
    c = sc.second;
    return true;
  } else {
    return false;
  }
}
#else
template <class V> FG_HD FG_INLINE V select_nonzero(V mask, V a, V b) {
  return mask != V(0) ? a : b;
}
template <class V, class M> FG_HD FG_INLINE V from_mask(M m) {
  return m ? V(1) : V(0);
}
template <class V> FG_HD FG_INLINE V fma(V a, V b, V c) {
  return a * b + c;
}
template <class V> FG_HD FG_INLINE V min(V a, V b) {
  return (a != a || b != b) ? a + b : (b < a ? b : a);
}
template <class V> FG_HD FG_INLINE V max(V a, V b) {
  return (a != a || b != b) ? a + b : (a < b ? b : a);
}
template <class V> FG_HD FG_INLINE V pow(V x, V y) {
  using std::pow;
  return pow(x, y);
}
template <class V> FG_HD FG_INLINE bool sincos_batch(V, V&, V&) {
  return false;
}
#endif
#if FG_GCC_AVX512_FALSE_POSITIVE
#pragma GCC diagnostic pop
#undef FG_GCC_AVX512_FALSE_POSITIVE
#endif

}  // namespace fg::simd

FG_DIAGNOSTICS_END
