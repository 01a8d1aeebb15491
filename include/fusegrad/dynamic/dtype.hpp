// fusegrad/dynamic/dtype.hpp — the element types of fg::var: names, sizes, the C++ type of each,
// PyTorch's promotion rules, and conversion between any two
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/config.hpp"
#include "fusegrad/core/float16.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

FG_DIAGNOSTICS_BEGIN

namespace fg {

// float32 and float64 compute; float16 and bfloat16 are stored and computed as float32 (as
// PyTorch does on the CPU); the integer types and bool hold indices, counts and masks and are
// never differentiated. (float32 and float64 keep their values 0 and 1: tables index by them.)
enum class dtype : unsigned char {
  float32,
  float64,
  float16,
  bfloat16,
  int64,
  int32,
  uint8,
  bool_
};
inline constexpr dtype float32 = dtype::float32;
inline constexpr dtype float64 = dtype::float64;
inline constexpr dtype float16 = dtype::float16;
inline constexpr dtype bfloat16 = dtype::bfloat16;
inline constexpr dtype int64 = dtype::int64;
inline constexpr dtype int32 = dtype::int32;
inline constexpr dtype uint8 = dtype::uint8;
inline constexpr dtype bool_ = dtype::bool_;

// Thrown where a dtype cannot do what is asked (an integer tensor that should require a
// gradient, a float tensor used as indices, an op PyTorch also refuses for the dtype).
class dtype_error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

namespace detail {
template <class T> struct dtype_of_t;
#define FG_DTYPE_OF(T, t) \
  template <> struct dtype_of_t<T> { static constexpr dtype value = dtype::t; };
FG_DTYPE_OF(float, float32)
FG_DTYPE_OF(double, float64)
FG_DTYPE_OF(float16_t, float16)
FG_DTYPE_OF(bfloat16_t, bfloat16)
FG_DTYPE_OF(std::int64_t, int64)
FG_DTYPE_OF(std::int32_t, int32)
FG_DTYPE_OF(std::uint8_t, uint8)
FG_DTYPE_OF(bool, bool_)
#undef FG_DTYPE_OF
template <class T>
concept has_dtype = requires {
  dtype_of_t<T>::value;
};
}  // namespace detail

// The dtype whose elements are of C++ type T (float, double, fg::float16_t, fg::bfloat16_t,
// std::int64_t, std::int32_t, std::uint8_t, bool).
template <class T>
requires detail::has_dtype<T>
inline constexpr dtype dtype_of = detail::dtype_of_t<T>::value;

namespace detail {
// Each dtype's name and element size, in the enum's order.
struct dtype_info {
  const char* name;
  std::size_t size;
};
inline constexpr dtype_info dtype_infos[] = {{"float32", 4},  {"float64", 8}, {"float16", 2},
                                             {"bfloat16", 2}, {"int64", 8},   {"int32", 4},
                                             {"uint8", 1},    {"bool", 1}};
}  // namespace detail

inline const char* dtype_name(dtype t) {
  return detail::dtype_infos[std::size_t(t)].name;
}
inline constexpr bool is_floating(dtype t) {
  return t == dtype::float32 || t == dtype::float64 || t == dtype::float16 || t == dtype::bfloat16;
}

namespace dynamic {
inline std::size_t element_size(dtype t) {
  return fg::detail::dtype_infos[std::size_t(t)].size;
}
// The dtype arithmetic on t runs in: float16 and bfloat16 in float32.
inline constexpr dtype compute_dtype(dtype t) {
  return t == dtype::float16 || t == dtype::bfloat16 ? dtype::float32 : t;
}
[[noreturn, gnu::cold, gnu::noinline]] inline void not_computable(dtype t) {
  throw dtype_error(std::string("fusegrad: this op computes in float32 or float64, and the tensor "
                                "holds ") +
                    dtype_name(t) + "; convert it first, e.g. x.to(fg::float32)");
}
}  // namespace dynamic

// Calls f(float{}) or f(double{}) by the run-time dtype: the kernels that compute are written
// once, typed. Other dtypes are refused here (the ops that take them convert first).
template <class F> decltype(auto) dispatch(dtype t, F&& f) {
  if (t == dtype::float32)
    return f(float{});
  if (t != dtype::float64) [[unlikely]]
    dynamic::not_computable(t);
  return f(double{});
}

// Calls f(T{}) for the C++ type T of a floating dtype (float16_t and bfloat16_t included): for
// code that moves or adds gradients. (compute_t<T>: what T's arithmetic runs in.)
template <class F> decltype(auto) dispatch_floating(dtype t, F&& f) {
  switch (t) {
    case dtype::float64:
      return f(double{});
    case dtype::float16:
      return f(float16_t{});
    case dtype::bfloat16:
      return f(bfloat16_t{});
    case dtype::float32:
      break;
    default:
      dynamic::not_computable(t);
  }
  return f(float{});
}
template <class T> using compute_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

// Calls f(T{}) for the C++ type T of any dtype: for code that moves, converts, compares or
// prints elements.
template <class F> decltype(auto) dispatch_any(dtype t, F&& f) {
  switch (t) {
    case dtype::float64:
      return f(double{});
    case dtype::float16:
      return f(float16_t{});
    case dtype::bfloat16:
      return f(bfloat16_t{});
    case dtype::int64:
      return f(std::int64_t{});
    case dtype::int32:
      return f(std::int32_t{});
    case dtype::uint8:
      return f(std::uint8_t{});
    case dtype::bool_:
      return f(bool{});
    case dtype::float32:
      break;
  }
  return f(float{});
}

// Element conversion, as PyTorch's `to`: floats round to the nearest, integers wrap modulo
// their width, anything non-zero is true. A float to an integer truncates toward zero; where
// C++ leaves that undefined (NaN, out of range) the result saturates at the type's bounds and
// NaN gives 0 (PyTorch's value there depends on the CPU).
template <class To, class From> constexpr To convert_element(From x) {
  if constexpr (std::is_same_v<To, From>)
    return x;
  else if constexpr (std::is_same_v<From, float16_t> || std::is_same_v<From, bfloat16_t>)
    return convert_element<To>(float(x));
  else if constexpr (std::is_same_v<To, bool>)
    return x != From(0);
  else if constexpr (std::is_same_v<To, float16_t> || std::is_same_v<To, bfloat16_t>)
    return To(float(x));
  else if constexpr (std::is_floating_point_v<From> && std::is_integral_v<To>) {
    if (x != x)
      return To(0);
    if (x <= From(std::numeric_limits<To>::min()))
      return std::numeric_limits<To>::min();
    // (the max of an int64 is not a float: 2^63 is the first value out of range)
    if (x >= From(2) * From(std::numeric_limits<To>::max() / 2 + 1))
      return std::numeric_limits<To>::max();
    return To(x);
  } else
    return To(x);  // integer to narrower integer wraps (C++20), integer to float rounds
}

// PyTorch's type promotion of two dtypes: bool < integers < floats; within a kind the wider
// one; float16 with bfloat16 gives float32; uint8 with a signed integer the signed one.
inline dtype promote_types(dtype a, dtype b) {
  if (a == b)
    return a;
  const bool fa = is_floating(a), fb = is_floating(b);
  if (fa != fb)
    return fa ? a : b;
  if (fa) {
    if (a == dtype::float64 || b == dtype::float64)
      return dtype::float64;
    return dtype::float32;  // float32 with a half type, or float16 with bfloat16
  }
  auto rank = [](dtype t) {
    return t == dtype::bool_ ? 0 : t == dtype::uint8 ? 1 : t == dtype::int32 ? 2 : 3;
  };
  return rank(a) > rank(b) ? a : b;
}

namespace dynamic {
// An int64 whose +, - and * wrap modulo 2^64 (PyTorch's integer overflow) instead of being
// undefined: the value type the op table's structs compute integer tensors in.
struct wrapping_int {
  std::int64_t v = 0;
  constexpr wrapping_int() = default;
  constexpr wrapping_int(std::int64_t x) : v(x) {}  // NOLINT: V(0), V(1) in the op structs
  friend constexpr wrapping_int operator+(wrapping_int a, wrapping_int b) {
    return std::int64_t(std::uint64_t(a.v) + std::uint64_t(b.v));
  }
  friend constexpr wrapping_int operator-(wrapping_int a, wrapping_int b) {
    return std::int64_t(std::uint64_t(a.v) - std::uint64_t(b.v));
  }
  friend constexpr wrapping_int operator*(wrapping_int a, wrapping_int b) {
    return std::int64_t(std::uint64_t(a.v) * std::uint64_t(b.v));
  }
  friend constexpr wrapping_int operator-(wrapping_int a) { return wrapping_int(0) - a; }
  friend constexpr bool operator==(wrapping_int a, wrapping_int b) { return a.v == b.v; }
  friend constexpr bool operator<(wrapping_int a, wrapping_int b) { return a.v < b.v; }
  friend constexpr bool operator<=(wrapping_int a, wrapping_int b) { return a.v <= b.v; }
  friend constexpr wrapping_int abs(wrapping_int a) { return a.v < 0 ? -a : a; }
};
}  // namespace dynamic

}  // namespace fg

FG_DIAGNOSTICS_END
