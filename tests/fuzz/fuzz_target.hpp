// tests/fuzz/fuzz_target.hpp — what the libFuzzer targets share: the loaders' contract on
// arbitrary bytes is "a tensor, or an exception that says what is wrong"; anything else aborts,
// so that libFuzzer keeps the input as a crash.
#pragma once

#include <fusegrad/dynamic.hpp>
#include <fusegrad/io/format_error.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <span>
#include <stdexcept>

namespace fg::fuzz {

inline std::span<const char> bytes(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Reads every element, so that a tensor claiming more bytes than it holds is caught by ASan.
inline void touch(const var& v) {
  volatile double sink = 0;
  for (index_t i = 0; i < v.size(); ++i)
    sink = sink + v.at<double>(sindex_t(i));
}

// Runs f; the refusals a loader may give are format_error (a damaged file), and shape_error,
// dtype_error, index_error and std::invalid_argument (a checkpoint that does not fit the model).
// Any other exception aborts (std::bad_alloc too: every size is checked against the file).
template <class F> void loaded_or_refused(F f) {
  try {
    f();
  } catch (const fg::io::format_error&) {
  } catch (const fg::shape_error&) {
  } catch (const fg::dtype_error&) {
  } catch (const fg::index_error&) {
  } catch (const std::invalid_argument&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unexpected exception: %s\n", e.what());
    std::abort();
  }
}

}  // namespace fg::fuzz
