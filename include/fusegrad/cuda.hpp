// fusegrad/cuda.hpp — the CUDA backend: device tensors, and (under nvcc) fused expressions and
// their gradients as single kernels, reductions and matrix products on the device
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/cuda/device_tensor.hpp"
#include "fusegrad/fusegrad.hpp"
#if defined(__CUDACC__)
#include "fusegrad/cuda/launch.hpp"
#include "fusegrad/cuda/matmul.hpp"
#endif
