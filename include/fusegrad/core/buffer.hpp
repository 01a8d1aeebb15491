// fusegrad/core/buffer.hpp — element storage: inline and aligned for small static sizes, heap
// otherwise SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/simd.hpp"

#include <cstring>
#include <new>

FG_DIAGNOSTICS_BEGIN

namespace fg {

// Storage of N elements (N = dyn: chosen at run time). Static sizes up to `inline_limit` bytes
// live inside the object, so the static path never touches the heap; larger ones would overflow
// stacks and firmware RAM alike, so they are heap-allocated.
inline constexpr std::size_t inline_limit = 64 * 1024;

template <class T, index_t N, bool Inline = (N != index_t(-1) && N * sizeof(T) <= inline_limit)>
class buffer {
 public:
  // Zeros, and a constant initialiser: a static tensor at namespace scope is zero before any
  // dynamic initialiser runs (and can be constinit).
  constexpr buffer() : data_{} {}
  // Evaluator scratch passes zero = false: it writes every element before reading it.
  constexpr explicit buffer(index_t, bool zero = true) {
    if (zero)
      fill_zero();
  }
  T* data() { return data_; }
  const T* data() const { return data_; }
  static constexpr index_t size() { return N; }
  void resize(index_t, bool = true) {}

 private:
  constexpr void fill_zero() {
    for (T& v : data_)
      v = T{};
  }
  alignas(simd::alignment) T data_[N == 0 ? 1 : N];
};

template <class T, index_t N> class buffer<T, N, false> {
 public:
  buffer() {
    if constexpr (N != index_t(-1))
      resize(N);
  }
  explicit buffer(index_t n, bool zero = true) { resize(n, zero); }
  buffer(const buffer& o) : buffer(o.n_) { copy_from(o); }
  buffer(buffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
  buffer& operator=(const buffer& o) {
    if (this != &o) {
      resize(o.n_);
      copy_from(o);
    }
    return *this;
  }
  buffer& operator=(buffer&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }
  ~buffer() { release(); }

  T* data() { return p_; }
  const T* data() const { return p_; }
  index_t size() const { return n_; }
  // Zero-filled on growth unless the caller will overwrite every element anyway.
  void resize(index_t n, bool zero = true) {
    if (n == n_)
      return;
    release();
    if (n) {
      p_ = static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(simd::alignment)));
      if (zero)
        std::memset(static_cast<void*>(p_), 0, n * sizeof(T));
    }
    n_ = n;
  }

 private:
  void copy_from(const buffer& o) {
    if (n_)
      std::memcpy(static_cast<void*>(p_), o.p_, n_ * sizeof(T));
  }
  void release() {
    if (p_)
      ::operator delete(p_, std::align_val_t(simd::alignment));
    p_ = nullptr;
  }
  T* p_ = nullptr;
  index_t n_ = 0;
};

}  // namespace fg

FG_DIAGNOSTICS_END
