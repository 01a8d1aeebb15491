// fusegrad/core/message.hpp — error messages formatted without stdio, so firmware links no printf
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/config.hpp"

#include <array>
#include <cstddef>

FG_DIAGNOSTICS_BEGIN

namespace fg::detail {

// A fixed-size text buffer: `message() << "fg::f(): shape " << dims`. Text past the end is cut.
class message {
 public:
  message& operator<<(const char* s) {
    while (*s && n_ + 1 < sizeof buf_)
      buf_[n_++] = *s++;
    buf_[n_] = '\0';
    return *this;
  }
  message& operator<<(index_t v) {
    char digits[24];
    int k = 0;
    do {
      digits[k++] = char('0' + v % 10);
      v /= 10;
    } while (v);
    char s[24];
    for (int i = 0; i < k; ++i)
      s[i] = digits[k - 1 - i];
    s[k] = '\0';
    return *this << static_cast<const char*>(s);
  }
  // Extents as "[3, 4]".
  template <std::size_t R> message& operator<<(const std::array<index_t, R>& d) {
    *this << "[";
    for (std::size_t i = 0; i != R; ++i) {
      if (i)
        *this << ", ";
      *this << d[i];
    }
    return *this << "]";
  }
  const char* c_str() const { return buf_; }

 private:
  char buf_[256] = {};
  std::size_t n_ = 0;
};

}  // namespace fg::detail

FG_DIAGNOSTICS_END
