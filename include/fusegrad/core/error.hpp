// fusegrad/core/error.hpp — fg::shape_error and the handler used when exceptions are off
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/config.hpp"

#if FG_HAS_STDIO
#include <cstdio>
#include <cstdlib>
#endif
#if FG_HAS_EXCEPTIONS
#include <stdexcept>
#include <string>
#endif

FG_DIAGNOSTICS_BEGIN

namespace fg {

#if FG_HAS_EXCEPTIONS
// Thrown when extents known only at run time do not fit; the message names both shapes.
class shape_error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Thrown for a request fusegrad cannot carry out (the message says which and why).
class unsupported_error : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};
#endif

// Built with -fno-exceptions, errors go to this handler. The default prints (where there is
// stdio) and stops; firmware installs its own, which must not return.
using error_handler_t = void (*)(const char* message);
namespace detail {
[[noreturn]] inline void stop() {
#if FG_HAS_STDIO
  std::abort();
#else
  __builtin_trap();  // newlib's abort() would link its signal tables and heap
#endif
}
}  // namespace detail
inline void default_error_handler([[maybe_unused]] const char* message) {
#if FG_HAS_STDIO
  std::fputs(message, stderr);
  std::fputc('\n', stderr);
#endif
  detail::stop();
}
inline error_handler_t& error_handler() {
  static error_handler_t handler = &default_error_handler;
  return handler;
}

namespace detail {
// Throws E, or hands the message to the handler when exceptions are off.
template <class E> [[noreturn]] inline void raise(const char* message) {
#if FG_HAS_EXCEPTIONS
  throw E(message);
#else
  error_handler()(message);
  stop();
#endif
}
}  // namespace detail

#if FG_HAS_EXCEPTIONS
[[noreturn]] inline void raise_error(const char* message) {
  detail::raise<unsupported_error>(message);
}
[[noreturn]] inline void raise_shape_error(const char* message) {
  detail::raise<shape_error>(message);
}
#else
[[noreturn]] inline void raise_error(const char* message) {
  detail::raise<void>(message);
}
[[noreturn]] inline void raise_shape_error(const char* message) {
  detail::raise<void>(message);
}
#endif

}  // namespace fg

FG_DIAGNOSTICS_END
