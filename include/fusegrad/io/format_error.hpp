// fusegrad/io/format_error.hpp — the error for a file that is not what it claims to be
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/config.hpp"

#include <stdexcept>

FG_DIAGNOSTICS_BEGIN

namespace fg::io {

// A truncated or corrupt file: the message names the file and the fault.
class format_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace fg::io

FG_DIAGNOSTICS_END
