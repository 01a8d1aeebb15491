// fusegrad/core/device.hpp — the tags that name where a tensor lives: `t.to(fg::cuda)`,
// `d.to(fg::host)` (static tensors and vars alike; no CUDA header needed to name them)
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/config.hpp"

FG_DIAGNOSTICS_BEGIN

namespace fg {

struct cuda_device {};
inline constexpr cuda_device cuda{};
struct host_device {};
inline constexpr host_device host{};

}  // namespace fg

FG_DIAGNOSTICS_END
