// examples/embedded/console.hpp — text output without printf (whose newlib version links the
// heap): strings, integers and fixed-point numbers through one write(const char*) hook.
#pragma once

#include <concepts>
#include <cstdint>

// A number printed with `decimals` digits after the point.
struct fixed {
  double value;
  int decimals;
};

template <class Write> struct console {
  Write write;

  console& operator<<(const char* s) {
    write(s);
    return *this;
  }
  template <std::unsigned_integral U> console& operator<<(U value) {
    std::uint64_t v = value;
    char buf[24];
    char* p = buf + sizeof buf;
    *--p = '\0';
    do {
      *--p = char('0' + v % 10);
      v /= 10;
    } while (v);
    write(p);
    return *this;
  }
  template <std::signed_integral I> console& operator<<(I v) {
    if (v < 0)
      write("-");
    return *this << std::uint64_t(v < 0 ? -std::int64_t(v) : std::int64_t(v));
  }
  console& operator<<(fixed f) {
    double v = f.value;
    if (v < 0) {
      write("-");
      v = -v;
    }
    std::uint64_t scale = 1;
    for (int i = 0; i < f.decimals; ++i)
      scale *= 10;
    const auto n = std::uint64_t(v * double(scale) + 0.5);
    *this << n / scale;
    if (f.decimals > 0) {
      write(".");
      char buf[20];
      std::uint64_t frac = n % scale;
      for (int i = f.decimals - 1; i >= 0; --i, frac /= 10)
        buf[i] = char('0' + frac % 10);
      buf[f.decimals] = '\0';
      write(buf);
    }
    return *this;
  }
};
