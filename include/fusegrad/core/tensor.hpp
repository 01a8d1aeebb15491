// fusegrad/core/tensor.hpp — fg::tensor<T, fg::shape<...>>: static extents inline, dyn extents on
// the heap SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/buffer.hpp"
#include "fusegrad/core/shape.hpp"

#include <algorithm>
#include <concepts>
#include <initializer_list>
#include <type_traits>

FG_DIAGNOSTICS_BEGIN

namespace fg {

template <class T, class S> class tensor;

// Asks for storage whose elements the caller will overwrite: no zero-fill.
struct uninitialized_t {
  explicit uninitialized_t() = default;
};
inline constexpr uninitialized_t uninitialized{};

template <class X> inline constexpr bool is_tensor_v = false;
template <class T, class S> inline constexpr bool is_tensor_v<tensor<T, S>> = true;

namespace expr {
struct node_base {};
}  // namespace expr

// Anything that evaluates lazily: the nodes built by fg's operators and functions.
template <class E>
concept expression = std::derived_from<std::remove_cvref_t<E>, expr::node_base>;

// Assignment from an expression is defined by the evaluator (fusegrad/exec/assign.hpp).
template <class T, class S, class E> void assign_expr(tensor<T, S>& dst, const E& e);

// A tensor owns its elements in row-major order. Static extents cost no storage; a static-shape
// tensor holds its elements inline (SIMD-aligned) and never allocates.
template <class T, class S> class tensor {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "fg::tensor: the element type must be float or double");
  static_assert(is_shape_v<S>, "fg::tensor: the second argument must be an fg::shape<...>");

 public:
  using value_type = T;
  using shape_type = S;
  static constexpr std::size_t rank = S::rank;

  tensor() = default;

  // Static shape: elements in row-major order; missing ones are zero.
  tensor(std::initializer_list<T> values) requires(S::is_static) { fill_from(values); }
  // Dynamic extents: zeros of the given extents, or the given values.
  explicit tensor(const dims_t<rank>& d) requires(!S::is_static) { resize(d); }
  tensor(uninitialized_t, const dims_t<rank>& d) requires(!S::is_static) { resize(d, false); }
  tensor(const dims_t<rank>& d, std::initializer_list<T> values) requires(!S::is_static) {
    resize(d);
    fill_from(values);
  }
  // Evaluates an expression (one fused pass).
  template <expression E>
  tensor(const E& e) {  // NOLINT: implicit, as `tensor t = a + b;` should read
    assign_expr(*this, e);
  }
  template <expression E> tensor& operator=(const E& e) {
    assign_expr(*this, e);
    return *this;
  }

  T* data() { return store_.data(); }
  const T* data() const { return store_.data(); }
  index_t size() const { return size_of(dims()); }
  dims_t<rank> dims() const { return ext_.dims(); }
  index_t extent(std::size_t i) const { return dims()[i]; }

  // Dynamic extents only: reshape storage to `d` (contents zero when the size changes, unless
  // `zero` is false).
  void resize(const dims_t<rank>& d, bool zero = true) requires(!S::is_static) {
    for (std::size_t i = 0; i < rank; ++i) {
      if (S::static_extents[i] != dyn && S::static_extents[i] != d[i]) {
        detail::message msg;
        msg << "fg::tensor::resize(): extent " << index_t(i) << " must stay "
            << S::static_extents[i] << ", was given " << d[i];
        raise_shape_error(msg.c_str());
      }
    }
    store_.resize(size_of(d), zero);
    ext_ = extents_holder<S>(d);
  }

  T& operator[](index_t i) { return data()[i]; }
  const T& operator[](index_t i) const { return data()[i]; }
  template <std::integral... I>
  requires(sizeof...(I) == rank) T& operator()(I... i) { return data()[offset(i...)]; }
  template <std::integral... I>
  requires(sizeof...(I) == rank) const T& operator()(I... i) const { return data()[offset(i...)]; }
  // A 0-d tensor reads as its value.
  operator T() const requires(rank == 0) { return data()[0]; }

  void fill(T v) { std::fill(data(), data() + size(), v); }

  // A copy on another device: `t.to(fg::cuda)` (fusegrad/cuda/device_tensor.hpp defines the
  // transfer, found by argument-dependent lookup).
  template <class Device> auto to(Device device) const { return transfer(*this, device); }

 private:
  template <class... I> index_t offset(I... i) const {
    const index_t idx[] = {index_t(i)..., 0};
    auto d = dims();
    index_t off = 0;
    for (std::size_t k = 0; k < rank; ++k)
      off = off * d[k] + idx[k];
    return off;
  }
  void fill_from(std::initializer_list<T> values) {
    if (values.size() > size()) {
      detail::message msg;
      msg << "fg::tensor: " << index_t(values.size()) << " values given for " << size()
          << " elements";
      raise_shape_error(msg.c_str());
    }
    std::copy(values.begin(), values.end(), data());
  }

  [[no_unique_address]] extents_holder<S> ext_{};
  // Static shapes are always inline, whatever their size: the user places the tensor (static
  // storage, a linker section); only the evaluator's own temporaries fall back to the heap.
  buffer<T, S::static_size, S::is_static> store_{};
};

}  // namespace fg

FG_DIAGNOSTICS_END
