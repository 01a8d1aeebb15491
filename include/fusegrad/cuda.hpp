// fusegrad/cuda.hpp — the CUDA backend: device tensors, and (under nvcc) fused expressions and
// their gradients as single kernels, reductions and matrix products on the device, and fg::var
// chains and their gradients there
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/cuda/device_tensor.hpp"
#include "fusegrad/fusegrad.hpp"
#if defined(__CUDACC__)
#include "fusegrad/cuda/launch.hpp"
#include "fusegrad/cuda/matmul.hpp"
#include "fusegrad/cuda/var.hpp"
#endif
