// fusegrad/static_nn.hpp — static-shape networks that train with no heap: layers, losses,
// optimisers and a trainer whose memory is a compile-time constant (firmware, embedded)
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/fusegrad.hpp"
#include "fusegrad/static_nn/activation.hpp"
#include "fusegrad/static_nn/conv2d.hpp"
#include "fusegrad/static_nn/dense.hpp"
#include "fusegrad/static_nn/init.hpp"
#include "fusegrad/static_nn/loss.hpp"
#include "fusegrad/static_nn/optimizer.hpp"
#include "fusegrad/static_nn/sequential.hpp"
#include "fusegrad/static_nn/trainer.hpp"
