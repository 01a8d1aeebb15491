// fusegrad/dynamic/pool.hpp — a per-thread caching allocator for var storage: a training loop
// allocates the same sizes every step, so freed blocks are kept and handed out again instead of
// going back to the OS (which, for large blocks, would page-fault them afresh each time)
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/simd.hpp"

#include <array>
#include <bit>
#include <cstddef>
#include <new>
#include <stdexcept>
#include <vector>  // pool_vector

FG_DIAGNOSTICS_BEGIN

namespace fg::dynamic {

class storage_pool {
 public:
  // Blocks are rounded up to a power of two from 64 bytes; at most `cache_limit` bytes stay
  // cached per thread.
  static constexpr std::size_t cache_limit = std::size_t(1) << 30;

  // This thread's pool, made on first use; null once it is destroyed (at thread or program
  // exit): storage released later, by a static or thread_local var, goes back to the OS.
  static storage_pool* local() {
    if (current_) [[likely]]
      return current_;
    if (destroyed_)
      return nullptr;
    thread_local storage_pool pool;  // sets current_
    return current_;
  }
  void* acquire(std::size_t bytes) {
    if (bytes > block_size(classes - 1))
      throw std::bad_alloc();
    const std::size_t c = size_class(bytes);
    if (free_block* b = free_[c]) {
      free_[c] = b->next;
      cached_ -= block_size(c);
      return b;
    }
    return ::operator new(block_size(c), std::align_val_t(simd::alignment));
  }
  void release(void* p, std::size_t bytes) noexcept {
    const std::size_t c = size_class(bytes);
    if (cached_ + block_size(c) > cache_limit) {
      ::operator delete(p, std::align_val_t(simd::alignment));
      return;
    }
    free_[c] = ::new (p) free_block{free_[c]};
    cached_ += block_size(c);
  }
  std::size_t cached_bytes() const { return cached_; }
  // Returns every cached block to the OS.
  void trim() {
    for (free_block*& head : free_)
      while (free_block* b = head) {
        head = b->next;
        ::operator delete(b, std::align_val_t(simd::alignment));
      }
    cached_ = 0;
  }
  storage_pool(const storage_pool&) = delete;
  storage_pool& operator=(const storage_pool&) = delete;
  ~storage_pool() {
    trim();
    current_ = nullptr;
    destroyed_ = true;
  }

 private:
  static std::size_t size_class(std::size_t bytes) {
    return bytes <= 64 ? 0 : std::size_t(std::bit_width(bytes - 1)) - 6;
  }
  static constexpr std::size_t block_size(std::size_t c) { return std::size_t(64) << c; }
  storage_pool() { current_ = this; }
  static constexpr std::size_t classes = 42;  // 64 B to 128 TiB
  // Plain thread_local pointers: no initialisation guard on the allocation path.
  static inline thread_local storage_pool* current_ = nullptr;
  static inline thread_local bool destroyed_ = false;
  // A cached block holds the link to the next one of its class: caching costs no memory and no
  // bookkeeping allocation, and a block is handed out or taken back in a few instructions.
  struct free_block {
    free_block* next;
  };
  std::array<free_block*, classes> free_{};
  std::size_t cached_ = 0;
};

// Blocks of this thread's pool, or of the OS once the pool is gone (at thread or program exit).
inline void* pool_acquire(std::size_t bytes) {
  if (storage_pool* p = storage_pool::local())
    return p->acquire(bytes);
  return ::operator new(bytes, std::align_val_t(simd::alignment));
}
inline void pool_release(void* ptr, std::size_t bytes) noexcept {
  if (storage_pool* p = storage_pool::local())
    p->release(ptr, bytes);
  else
    ::operator delete(ptr, std::align_val_t(simd::alignment));
}

// An allocator over the pool, for the tape's small objects (tensor headers, nodes, their lists
// and closures): a training loop makes the same ones every step, and malloc was a fifth of the
// time of a small op.
template <class T> struct pool_allocator {
  using value_type = T;
  pool_allocator() = default;
  template <class U> pool_allocator(const pool_allocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(pool_acquire(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { pool_release(p, n * sizeof(T)); }
  template <class U> friend bool operator==(pool_allocator, pool_allocator<U>) { return true; }
};
template <class T> using pool_vector = std::vector<T, pool_allocator<T>>;

}  // namespace fg::dynamic

FG_DIAGNOSTICS_END
