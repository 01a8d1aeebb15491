// fusegrad/io/onnx.hpp — ONNX both ways: fg::io::save_onnx (a traced graph as an ONNX model) and
// fg::io::load_onnx (an ONNX model as a graph that runs and trains)
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/io/onnx_export.hpp"
#include "fusegrad/io/onnx_import.hpp"
