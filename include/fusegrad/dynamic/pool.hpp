// fusegrad/dynamic/pool.hpp — a per-thread caching allocator for var storage: a training loop
// allocates the same sizes every step, so freed blocks are kept and handed out again instead of
// going back to the OS (which, for large blocks, would page-fault them afresh each time)
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/simd.hpp"

#include <array>
#include <cstddef>
#include <new>
#include <stdexcept>
#include <vector>

namespace fg::dynamic {

class storage_pool {
 public:
  // Blocks are rounded up to a power of two from 64 bytes; at most `cache_limit` bytes stay
  // cached per thread.
  static constexpr std::size_t cache_limit = std::size_t(1) << 30;

  static storage_pool& local() {
    thread_local storage_pool pool;
    return pool;
  }
  // False once this thread's pool is destroyed (at thread or program exit): storage released
  // later, by a static or thread_local var, goes straight back to the OS.
  static bool& alive() {
    thread_local bool on = true;
    return on;
  }
  void* acquire(std::size_t bytes) {
    if (bytes > block_size(classes - 1))
      throw std::bad_alloc();
    const std::size_t c = size_class(bytes);
    auto& list = free_[c];
    if (!list.empty()) {
      void* p = list.back();
      list.pop_back();
      cached_ -= block_size(c);
      return p;
    }
    return ::operator new(block_size(c), std::align_val_t(simd::alignment));
  }
  void release(void* p, std::size_t bytes) {
    const std::size_t c = size_class(bytes);
    if (cached_ + block_size(c) > cache_limit) {
      ::operator delete(p, std::align_val_t(simd::alignment));
      return;
    }
    free_[c].push_back(p);
    cached_ += block_size(c);
  }
  std::size_t cached_bytes() const { return cached_; }
  // Returns every cached block to the OS.
  void trim() {
    for (auto& list : free_) {
      for (void* p : list)
        ::operator delete(p, std::align_val_t(simd::alignment));
      list.clear();
    }
    cached_ = 0;
  }
  storage_pool() = default;
  storage_pool(const storage_pool&) = delete;
  storage_pool& operator=(const storage_pool&) = delete;
  ~storage_pool() {
    trim();
    alive() = false;
  }

 private:
  static std::size_t size_class(std::size_t bytes) {
    std::size_t c = 0;
    while (block_size(c) < bytes)
      ++c;
    return c;
  }
  static constexpr std::size_t block_size(std::size_t c) { return std::size_t(64) << c; }
  static constexpr std::size_t classes = 42;  // 64 B to 128 TiB
  std::array<std::vector<void*>, classes> free_;
  std::size_t cached_ = 0;
};

}  // namespace fg::dynamic
