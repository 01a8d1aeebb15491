// fusegrad/fusegrad.hpp — everything: tensors, expressions, evaluation, gradients, printing
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/parallel.hpp"
#include "fusegrad/core/random.hpp"
#include "fusegrad/core/tensor.hpp"
#include "fusegrad/exec/assign.hpp"
#include "fusegrad/expr/functions.hpp"
#include "fusegrad/expr/layout.hpp"
#include "fusegrad/expr/loss.hpp"
#include "fusegrad/expr/matmul.hpp"
#include "fusegrad/expr/reduce.hpp"
#include "fusegrad/grad/gradient.hpp"
#include "fusegrad/grad/reverse.hpp"
#include "fusegrad/io/dot.hpp"
#include "fusegrad/io/print.hpp"
