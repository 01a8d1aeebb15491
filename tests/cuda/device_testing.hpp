// tests/cuda/device_testing.hpp — device cases that report themselves skipped ("no CUDA device")
// on a machine without one, for every CUDA test file
#pragma once

#include "../testing.hpp"

#include <fusegrad/cuda.hpp>

#include <cstdio>

namespace fg::testing {

inline bool no_cuda_device() {
  static const bool none = [] {
    const bool n = !gpu::available();
    if (n)  // CTest reads this line to report the device cases as skipped
      std::fputs("no CUDA device: the cases that need one are skipped\n", stderr);
    return n;
  }();
  return none;
}

}  // namespace fg::testing

#define DEVICE_CASE(name)                                        \
  TEST_CASE(name* doctest::skip(fg::testing::no_cuda_device()) * \
            doctest::description("no CUDA device"))
