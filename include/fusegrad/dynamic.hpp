// fusegrad/dynamic.hpp — define-by-run: fg::var eager tensors with run-time dtype and extents, a
// tape, and backward() through plain C++ control flow
// SPDX-License-Identifier: MIT
#pragma once

// The static path too: fg::kernel bodies are static expressions.
#include "fusegrad/fusegrad.hpp"

#include "fusegrad/dynamic/convert.hpp"
#include "fusegrad/dynamic/dot.hpp"
#include "fusegrad/dynamic/elementwise.hpp"
#include "fusegrad/dynamic/indexing.hpp"
#include "fusegrad/dynamic/kernel.hpp"
#include "fusegrad/dynamic/layout.hpp"
#include "fusegrad/dynamic/matmul.hpp"
#include "fusegrad/dynamic/print.hpp"
#include "fusegrad/dynamic/reduce.hpp"
#include "fusegrad/dynamic/sample.hpp"
#include "fusegrad/dynamic/scan.hpp"
#include "fusegrad/dynamic/sort.hpp"
#include "fusegrad/dynamic/tape.hpp"
#include "fusegrad/dynamic/trace.hpp"
#include "fusegrad/dynamic/var.hpp"
