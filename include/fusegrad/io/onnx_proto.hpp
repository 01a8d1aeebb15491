// fusegrad/io/onnx_proto.hpp — what fg::io's ONNX writer and reader share: onnx.proto's field
// numbers and enumerations, and ONNX's element types as fusegrad's dtypes
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/dtype.hpp"
#include "fusegrad/io/protobuf.hpp"

#include <cstdint>
#include <optional>

FG_DIAGNOSTICS_BEGIN

namespace fg::io::detail::onnx {

inline constexpr std::int64_t opset = 17;
inline constexpr std::int64_t ir_version = 8;  // the IR of opset 17 (ONNX 1.12)

// Field numbers of onnx.proto (ONNX 1.17), of the messages read and written.
namespace field {
inline constexpr int model_ir_version = 1, model_producer_name = 2, model_producer_version = 3,
                     model_graph = 7, model_opset_import = 8, model_functions = 25;
inline constexpr int opset_domain = 1, opset_version = 2;
inline constexpr int graph_node = 1, graph_name = 2, graph_initializer = 5, graph_input = 11,
                     graph_output = 12, graph_sparse_initializer = 15;
inline constexpr int node_input = 1, node_output = 2, node_name = 3, node_op_type = 4,
                     node_attribute = 5, node_domain = 7;
inline constexpr int attr_name = 1, attr_f = 2, attr_i = 3, attr_s = 4, attr_t = 5, attr_g = 6,
                     attr_floats = 7, attr_ints = 8, attr_strings = 9, attr_tensors = 10,
                     attr_graphs = 11, attr_type = 20, attr_ref_attr_name = 21;
inline constexpr int tensor_dims = 1, tensor_data_type = 2, tensor_float_data = 4,
                     tensor_int32_data = 5, tensor_string_data = 6, tensor_int64_data = 7,
                     tensor_name = 8, tensor_raw_data = 9, tensor_double_data = 10,
                     tensor_uint64_data = 11, tensor_external_data = 13,
                     tensor_data_location = 14;
inline constexpr int value_info_name = 1, value_info_type = 2;
inline constexpr int type_tensor = 1, type_tensor_elem_type = 1, type_tensor_shape = 2;
inline constexpr int shape_dim = 1, dim_value = 1, dim_param = 2;
}  // namespace field

// AttributeProto.AttributeType and TensorProto.DataType values.
enum attr_type : int {
  attr_float = 1,
  attr_int = 2,
  attr_string = 3,
  attr_tensor = 4,
  attr_floats = 6,
  attr_ints = 7
};

inline int elem_type(dtype t) {
  switch (t) {
    case dtype::float32: return 1;
    case dtype::uint8: return 2;
    case dtype::int32: return 6;
    case dtype::int64: return 7;
    case dtype::bool_: return 9;
    case dtype::float16: return 10;
    case dtype::float64: return 11;
    case dtype::bfloat16: return 16;
  }
  return 0;
}

// ONNX's element type as a dtype; none for the types fusegrad has not (strings, complex, 8-bit
// floats, unsigned 16 to 64 bits, int8, int16).
inline std::optional<dtype> dtype_of_elem(std::int64_t e) {
  for (int t = 0; t <= int(dtype::bool_); ++t)
    if (elem_type(dtype(t)) == e)
      return dtype(t);
  return std::nullopt;
}

}  // namespace fg::io::detail::onnx

FG_DIAGNOSTICS_END
