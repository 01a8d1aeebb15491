// fusegrad/nn.hpp — neural networks on the dynamic path: layers, losses, optimisers, data,
// fit() and checkpoints (safetensors)
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic.hpp"
#include "fusegrad/nn/activation.hpp"
#include "fusegrad/nn/attention.hpp"
#include "fusegrad/nn/checkpoint.hpp"
#include "fusegrad/nn/conv2d.hpp"
#include "fusegrad/nn/data.hpp"
#include "fusegrad/nn/dropout.hpp"
#include "fusegrad/nn/embedding.hpp"
#include "fusegrad/nn/fit.hpp"
#include "fusegrad/nn/init.hpp"
#include "fusegrad/nn/linear.hpp"
#include "fusegrad/nn/loss.hpp"
#include "fusegrad/nn/module.hpp"
#include "fusegrad/nn/normalization.hpp"
#include "fusegrad/nn/optim.hpp"
#include "fusegrad/nn/pool.hpp"
#include "fusegrad/nn/recurrent.hpp"
#include "fusegrad/nn/sequential.hpp"
