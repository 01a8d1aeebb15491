// fusegrad/io/onnx_export.hpp — a traced graph as an ONNX model (fg::io::save_onnx): opset 17,
// its captured tensors as initializers, for ONNX Runtime and every other ONNX consumer
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic.hpp"
#include "fusegrad/io/file.hpp"
#include "fusegrad/io/onnx_proto.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

FG_DIAGNOSTICS_BEGIN

namespace fg::io {

// What an exported model's names are. A captured tensor found in `names` (a model's
// named_parameters() or state_dict(): the same tensor, not an equal one) is an initializer of
// that name, the others "capture_<id>"; inputs and outputs are "input_<k>" and "output_<k>"
// unless named here.
struct onnx_options {
  std::vector<std::pair<std::string, var>> names = {};
  std::vector<std::string> input_names = {}, output_names = {};
};

namespace detail::onnx {

// A node's attribute: an integer, a float, a list of integers or a string.
struct attribute {
  const char* name;
  std::variant<std::int64_t, float, std::vector<std::int64_t>, std::string, var> value;
};

inline protobuf::writer tensor_message(const std::string& name, const var& v) {
  protobuf::writer w;
  for (index_t e : v.shape())
    w.int64(field::tensor_dims, std::int64_t(e));
  w.int64(field::tensor_data_type, elem_type(v.dtype()));
  w.bytes(field::tensor_name, name);
  const dynamic::impl& p = v.ready();
  const std::size_t es = dynamic::element_size(v.dtype());
  w.bytes(field::tensor_raw_data,
          std::string_view(static_cast<const char*>(p.data->bytes) + p.offset * es,
                           std::size_t(v.size()) * es));
  return w;
}

inline protobuf::writer attribute_message(const attribute& a) {
  protobuf::writer w;
  w.bytes(field::attr_name, a.name);
  std::visit(
      [&]<class V>(const V& v) {
        if constexpr (std::is_same_v<V, std::int64_t>) {
          w.int64(field::attr_i, v);
          w.int64(field::attr_type, attr_int);
        } else if constexpr (std::is_same_v<V, float>) {
          w.f32(field::attr_f, v);
          w.int64(field::attr_type, attr_float);
        } else if constexpr (std::is_same_v<V, std::string>) {
          w.bytes(field::attr_s, v);
          w.int64(field::attr_type, attr_string);
        } else if constexpr (std::is_same_v<V, var>) {
          w.message(field::attr_t, tensor_message("", v));
          w.int64(field::attr_type, attr_tensor);
        } else {
          w.packed_int64(field::attr_ints, v);
          w.int64(field::attr_type, attr_ints);
        }
      },
      a.value);
  return w;
}

inline protobuf::writer value_info(const std::string& name, dtype t, const extents& shape) {
  protobuf::writer dims, tensor, type, w;
  for (index_t e : shape) {
    protobuf::writer d;
    d.int64(field::dim_value, std::int64_t(e));
    dims.message(field::shape_dim, d);
  }
  tensor.int64(field::type_tensor_elem_type, elem_type(t));
  tensor.message(field::type_tensor_shape, dims);
  type.message(field::type_tensor, tensor);
  w.bytes(field::value_info_name, name);
  w.message(field::value_info_type, type);
  return w;
}

// Writes a graph's steps as ONNX nodes: the rules below call node() and the helpers.
class emitter {
 public:
  emitter(const graph& g, const onnx_options& o) : g_(g) {
    const auto& in = g.inputs();
    if (!o.input_names.empty() && o.input_names.size() != in.size())
      throw std::invalid_argument(dynamic::text("fg::io::save_onnx(): ", o.input_names.size(),
                                                " input names for a graph of ", in.size(),
                                                " inputs"));
    if (!o.output_names.empty() && o.output_names.size() != g.outputs().size())
      throw std::invalid_argument(dynamic::text("fg::io::save_onnx(): ", o.output_names.size(),
                                                " output names for a graph of ",
                                                g.outputs().size(), " outputs"));
    for (std::size_t k = 0; k < in.size(); ++k)
      names_[in[k]] = o.input_names.empty() ? dynamic::text("input_", k) : o.input_names[k];
    // Parameters are initializers (what an importer trains), the other captured tensors
    // Constant nodes (as torch.onnx.export writes constants).
    for (const graph::capture& c : g.captures()) {
      std::string name = dynamic::text("capture_", c.id);
      for (const auto& [n, v] : o.names)
        if (v.defined() && &v.get() == &c.tensor.get())
          name = n;
      names_[c.id] = name;
      if (c.tensor.requires_grad())
        initializers_.message(field::graph_initializer, tensor_message(name, c.tensor));
      else
        node("Constant", {}, {name}, {{"value", c.tensor}});
    }
  }

  const graph::value& value(int id) const { return g_.values()[std::size_t(id)]; }
  std::string name(int id) const {
    if (id < 0)
      return "";
    const auto it = names_.find(id);
    return it != names_.end() ? it->second : dynamic::text("v", id);
  }
  std::string fresh() { return dynamic::text("t", fresh_++); }

  // Appends the node `op`(in) with attributes; its outputs are `out`. Returns out.
  const std::vector<std::string>& node(std::string_view op, const std::vector<std::string>& in,
                                       const std::vector<std::string>& out,
                                       const std::vector<attribute>& attrs = {}) {
    protobuf::writer n;
    std::size_t used = in.size();  // trailing optional inputs left out
    while (used > 0 && in[used - 1].empty())
      --used;
    for (std::size_t k = 0; k < used; ++k)
      n.bytes(field::node_input, in[k]);
    for (const std::string& o : out)
      n.bytes(field::node_output, o);
    n.bytes(field::node_name, dynamic::text(std::string(op), "_", nodes_count_++));
    n.bytes(field::node_op_type, op);
    for (const attribute& a : attrs)
      n.message(field::node_attribute, attribute_message(a));
    nodes_.message(field::graph_node, n);
    return out;
  }
  // One node with one new output; returns its name.
  std::string apply(std::string_view op, const std::vector<std::string>& in,
                    const std::vector<attribute>& attrs = {}) {
    return node(op, in, {fresh()}, attrs)[0];
  }
  // A constant: a Constant node's output.
  std::string constant(const var& v) {
    return node("Constant", {}, {dynamic::text("const_", constants_++)}, {{"value", v}})[0];
  }
  std::string ints(const std::vector<std::int64_t>& v) {
    var t = var::empty({index_t(v.size())}, dtype::int64);
    std::copy(v.begin(), v.end(), t.data<std::int64_t>());
    return constant(t);
  }
  std::string scalar(double v, dtype t) { return constant(var::full({}, v, t)); }
  // Value `id` as dtype t (itself when it is one already).
  std::string as(int id, dtype t) {
    return value(id).type == t ? name(id)
                               : apply("Cast", {name(id)}, {{"to", std::int64_t(elem_type(t))}});
  }
  std::string as(const std::string& x, dtype from, dtype t) {
    return from == t ? x : apply("Cast", {x}, {{"to", std::int64_t(elem_type(t))}});
  }

  std::string model(const onnx_options& o) {
    protobuf::writer gw;
    gw.bytes(field::graph_name, "fusegrad");
    const auto& outs = g_.outputs();
    protobuf::writer tail;
    for (std::size_t k = 0; k < outs.size(); ++k) {
      const std::string out =
          o.output_names.empty() ? dynamic::text("output_", k) : o.output_names[k];
      node("Identity", {name(outs[k])}, {out});
      tail.message(field::graph_output, value_info(out, value(outs[k]).type, value(outs[k]).shape));
    }
    for (int id : g_.inputs())
      tail.message(field::graph_input, value_info(name(id), value(id).type, value(id).shape));
    const std::string graph_bytes =
        gw.data() + nodes_.data() + initializers_.data() + tail.data();
    protobuf::writer opset_id, m;
    opset_id.bytes(field::opset_domain, "");
    opset_id.int64(field::opset_version, opset);
    m.int64(field::model_ir_version, ir_version);
    m.bytes(field::model_producer_name, "fusegrad");
    m.bytes(field::model_producer_version, "0.1");
    m.bytes(field::model_graph, graph_bytes);
    m.message(field::model_opset_import, opset_id);
    return m.data();
  }

 private:
  const graph& g_;
  std::map<int, std::string> names_;
  protobuf::writer nodes_, initializers_;
  int fresh_ = 0, constants_ = 0, nodes_count_ = 0;
};

using rule = void (*)(emitter&, const graph::step&);

[[noreturn]] inline void refuse(const graph::step& s, const std::string& why) {
  throw std::invalid_argument(
      dynamic::text("fg::io::save_onnx(): the graph's op '", s.op, "' ", why));
}

inline std::int64_t axis_of(std::int64_t a, std::size_t rank) {
  return a < 0 ? a + std::int64_t(rank) : a;
}

// An elementwise op that ONNX has under another name, its operands in the result's dtype (ONNX
// does not promote); comparisons compare in their operands' common dtype.
inline void elementwise(emitter& e, const graph::step& s, std::string_view op, bool compare) {
  dtype t = e.value(s.out[0]).type;
  if (compare) {
    t = e.value(s.in[0]).type;
    for (int id : s.in)
      t = promote_types(t, e.value(id).type);
  }
  std::vector<std::string> in;
  for (int id : s.in)
    in.push_back(e.as(id, t));
  e.node(op, in, {e.name(s.out[0])});
}

// A reduction: ReduceSum takes its axes as an input since opset 13, the others as an attribute
// until opset 18. No axes: every axis.
inline void reduction(emitter& e, const graph::step& s, std::string_view op) {
  const dtype t = e.value(s.out[0]).type;
  const std::vector<std::int64_t>& axes = s.attrs.ints(0);
  const std::int64_t keep = s.attrs.flag(1);
  const std::string x = e.as(s.in[0], t);
  if (op == "ReduceSum")
    e.node(op, {x, axes.empty() ? "" : e.ints(axes)}, {e.name(s.out[0])}, {{"keepdims", keep}});
  else if (axes.empty())
    e.node(op, {x}, {e.name(s.out[0])}, {{"keepdims", keep}});
  else
    e.node(op, {x}, {e.name(s.out[0])}, {{"axes", axes}, {"keepdims", keep}});
}

// The LSTM step z [B, 4H] (gates i, f, g, o before their activations), c [B, H] -> [h', c'].
inline void lstm_cell(emitter& e, const graph::step& s) {
  const std::vector<std::string> gates = {e.fresh(), e.fresh(), e.fresh(), e.fresh()};
  e.node("Split", {e.name(s.in[0])}, gates, {{"axis", std::int64_t(1)}});
  const std::string i = e.apply("Sigmoid", {gates[0]}), f = e.apply("Sigmoid", {gates[1]}),
                    g = e.apply("Tanh", {gates[2]}), o = e.apply("Sigmoid", {gates[3]});
  const std::string c2 =
      e.apply("Add", {e.apply("Mul", {f, e.name(s.in[1])}), e.apply("Mul", {i, g})});
  const std::string h = e.apply("Mul", {o, e.apply("Tanh", {c2})});
  e.node("Concat", {h, c2}, {e.name(s.out[0])}, {{"axis", std::int64_t(1)}});
}

// The whole LSTM sequence (xp [T, B, 4H], the input projection; w_hh [4H, H]; b_hh [4H]) as
// ONNX's LSTM, whose gates are ordered i, o, f, c where ours are i, f, g, o: xp enters as an
// input of 4H features through a permutation matrix W, the recurrent weights are reordered by
// a Gather. The result [T + 1, B, 2H]: Y beside zeros, then the final (h, c).
inline void lstm_sequence(emitter& e, const graph::step& s) {
  const graph::value& xp = e.value(s.in[0]);
  const index_t T = xp.shape[0], B = xp.shape[1], G = xp.shape[2], H = G / 4;
  const dtype t = xp.type;
  const std::int64_t order[4] = {0, 3, 1, 2};  // ONNX's gate k is our gate order[k]
  std::vector<std::int64_t> rows;
  for (std::int64_t k : order)
    for (index_t j = 0; j < H; ++j)
      rows.push_back(k * H + std::int64_t(j));
  var w = var::zeros({1, G, G}, t);
  for (index_t r = 0; r < G; ++r)
    w.set(r * G + index_t(rows[std::size_t(r)]), 1.0);
  const std::string perm = e.ints(rows);
  const std::string r = e.apply("Unsqueeze", {e.apply("Gather", {e.name(s.in[1]), perm}),
                                              e.ints({0})});
  const std::string rb = e.apply("Gather", {e.name(s.in[2]), perm});
  const std::string bias =
      e.apply("Unsqueeze", {e.apply("Concat", {e.constant(var::zeros({G}, t)), rb},
                                    {{"axis", std::int64_t(0)}}),
                            e.ints({0})});
  std::string lengths;
  const std::vector<std::int64_t>& len = s.attrs.ints(0);
  if (!len.empty()) {
    var l = var::empty({index_t(len.size())}, dtype::int32);
    for (std::size_t b = 0; b < len.size(); ++b)
      l.data<std::int32_t>()[b] = std::int32_t(len[b]);
    lengths = e.constant(l);
  }
  const std::vector<std::string> y = {e.fresh(), e.fresh(), e.fresh()};
  e.node("LSTM", {e.name(s.in[0]), e.constant(w), r, bias, lengths}, y,
         {{"hidden_size", std::int64_t(H)}});
  const std::string steps = e.apply("Concat", {e.apply("Squeeze", {y[0], e.ints({1})}),
                                               e.constant(var::zeros({T, B, H}, t))},
                                    {{"axis", std::int64_t(2)}});
  const std::string last = e.apply("Concat", {y[1], y[2]}, {{"axis", std::int64_t(2)}});
  e.node("Concat", {steps, last}, {e.name(s.out[0])}, {{"axis", std::int64_t(0)}});
}

// A scatter's source as ScatterElements wants it: of the index's extents (ours, as PyTorch's,
// reads the leading corner of a larger source).
inline std::string scatter_source(emitter& e, const graph::step& s) {
  const extents &index = e.value(s.in[1]).shape, &src = e.value(s.in[2]).shape;
  if (index == src)
    return e.name(s.in[2]);
  std::vector<std::int64_t> zeros(index.rank(), 0), ends(index.begin(), index.end()), axes;
  for (std::size_t a = 0; a < index.rank(); ++a)
    axes.push_back(std::int64_t(a));
  return e.apply("Slice", {e.name(s.in[2]), e.ints(zeros), e.ints(ends), e.ints(axes)});
}

// Every op of fg::var and fg::nn that ONNX can express, by its graph name.
inline const std::map<std::string, rule, std::less<>>& rules() {
  static const std::map<std::string, rule, std::less<>> table = [] {
    std::map<std::string, rule, std::less<>> m;
#define FG_ONNX_SAME(ours, theirs) \
  m[ours] = [](emitter& e, const graph::step& s) { elementwise(e, s, theirs, false); }
#define FG_ONNX_COMPARE(ours, theirs) \
  m[ours] = [](emitter& e, const graph::step& s) { elementwise(e, s, theirs, true); }
#define FG_ONNX_REDUCE(ours, theirs) \
  m[ours] = [](emitter& e, const graph::step& s) { reduction(e, s, theirs); }
    FG_ONNX_SAME("add", "Add");
    FG_ONNX_SAME("sub", "Sub");
    FG_ONNX_SAME("mul", "Mul");
    FG_ONNX_SAME("div", "Div");
    FG_ONNX_SAME("pow", "Pow");
    FG_ONNX_SAME("maximum", "Max");
    FG_ONNX_SAME("minimum", "Min");
    FG_ONNX_SAME("neg", "Neg");
    FG_ONNX_SAME("abs", "Abs");
    FG_ONNX_SAME("sqrt", "Sqrt");
    FG_ONNX_SAME("exp", "Exp");
    FG_ONNX_SAME("log", "Log");
    FG_ONNX_SAME("sin", "Sin");
    FG_ONNX_SAME("cos", "Cos");
    FG_ONNX_SAME("tanh", "Tanh");
    FG_ONNX_SAME("sigmoid", "Sigmoid");
    FG_ONNX_SAME("relu", "Relu");
    FG_ONNX_SAME("softplus", "Softplus");
    FG_ONNX_SAME("erf", "Erf");
    FG_ONNX_SAME("matmul", "MatMul");
    FG_ONNX_SAME("detach", "Identity");
    FG_ONNX_SAME("to_host", "Identity");  // (the graph is on the host: save_onnx checks)
    FG_ONNX_COMPARE("less", "Less");
    FG_ONNX_COMPARE("less_equal", "LessOrEqual");
    FG_ONNX_COMPARE("greater", "Greater");
    FG_ONNX_COMPARE("greater_equal", "GreaterOrEqual");
    FG_ONNX_COMPARE("equal", "Equal");
    FG_ONNX_REDUCE("sum", "ReduceSum");
    FG_ONNX_REDUCE("mean", "ReduceMean");
    FG_ONNX_REDUCE("prod", "ReduceProd");
    FG_ONNX_REDUCE("max", "ReduceMax");
    FG_ONNX_REDUCE("min", "ReduceMin");
    FG_ONNX_REDUCE("logsumexp", "ReduceLogSumExp");
#undef FG_ONNX_SAME
#undef FG_ONNX_COMPARE
#undef FG_ONNX_REDUCE
    m["not_equal"] = [](emitter& e, const graph::step& s) {
      const dtype t = promote_types(e.value(s.in[0]).type, e.value(s.in[1]).type);
      e.node("Not", {e.apply("Equal", {e.as(s.in[0], t), e.as(s.in[1], t)})}, {e.name(s.out[0])});
    };
    m["square"] = [](emitter& e, const graph::step& s) {
      const std::string x = e.as(s.in[0], e.value(s.out[0]).type);
      e.node("Mul", {x, x}, {e.name(s.out[0])});
    };
    // (ONNX has no log1p or expm1: near 0 these lose the digits that ours keep)
    m["log1p"] = [](emitter& e, const graph::step& s) {
      const dtype t = e.value(s.out[0]).type;
      e.node("Log", {e.apply("Add", {e.as(s.in[0], t), e.scalar(1, t)})}, {e.name(s.out[0])});
    };
    m["expm1"] = [](emitter& e, const graph::step& s) {
      const dtype t = e.value(s.out[0]).type;
      e.node("Sub", {e.apply("Exp", {e.as(s.in[0], t)}), e.scalar(1, t)}, {e.name(s.out[0])});
    };
    m["where"] = [](emitter& e, const graph::step& s) {
      const dtype t = e.value(s.out[0]).type;
      e.node("Where", {e.as(s.in[0], dtype::bool_), e.as(s.in[1], t), e.as(s.in[2], t)},
             {e.name(s.out[0])});
    };
    m["clamp"] = [](emitter& e, const graph::step& s) {
      const dtype t = e.value(s.out[0]).type;
      auto bound = [&](double v) { return std::isinf(v) ? std::string() : e.scalar(v, t); };
      e.node("Clip", {e.as(s.in[0], t), bound(s.attrs.f(0)), bound(s.attrs.f(1))},
             {e.name(s.out[0])});
    };
    m["to"] = [](emitter& e, const graph::step& s) {
      e.node("Cast", {e.name(s.in[0])}, {e.name(s.out[0])},
             {{"to", std::int64_t(elem_type(s.attrs.type(0)))}});
    };
    m["broadcast_to"] = [](emitter& e, const graph::step& s) {
      e.node("Expand", {e.name(s.in[0]), e.ints(s.attrs.ints(0))}, {e.name(s.out[0])});
    };
    // (allowzero: an extent 0 is 0, not "the input's extent")
    m["reshape"] = [](emitter& e, const graph::step& s) {
      e.node("Reshape", {e.name(s.in[0]), e.ints(s.attrs.ints(0))}, {e.name(s.out[0])},
             {{"allowzero", std::int64_t(1)}});
    };
    m["transpose"] = [](emitter& e, const graph::step& s) {
      const std::size_t r = e.value(s.in[0]).shape.rank();
      std::vector<std::int64_t> perm(r);
      for (std::size_t a = 0; a < r; ++a)
        perm[a] = std::int64_t(a);
      std::swap(perm[std::size_t(axis_of(s.attrs.i(0), r))],
                perm[std::size_t(axis_of(s.attrs.i(1), r))]);
      e.node("Transpose", {e.name(s.in[0])}, {e.name(s.out[0])}, {{"perm", perm}});
    };
    m["slice"] = [](emitter& e, const graph::step& s) {
      e.node("Slice",
             {e.name(s.in[0]), e.ints({s.attrs.i(1)}), e.ints({s.attrs.i(2)}),
              e.ints({s.attrs.i(0)})},
             {e.name(s.out[0])});
    };
    m["slice_step"] = [](emitter& e, const graph::step& s) {  // Python's slicing, as Slice's
      e.node("Slice",
             {e.name(s.in[0]), e.ints({s.attrs.i(1)}), e.ints({s.attrs.i(2)}),
              e.ints({s.attrs.i(0)}), e.ints({s.attrs.i(3)})},
             {e.name(s.out[0])});
    };
    m["flip"] = [](emitter& e, const graph::step& s) {
      const std::vector<std::int64_t>& dims = s.attrs.ints(0);
      const std::size_t n = dims.size();
      e.node("Slice",
             {e.name(s.in[0]), e.ints(std::vector<std::int64_t>(n, -1)),
              e.ints(std::vector<std::int64_t>(n, std::numeric_limits<std::int64_t>::min())),
              e.ints(dims), e.ints(std::vector<std::int64_t>(n, -1))},
             {e.name(s.out[0])});
    };
    m["concat"] = [](emitter& e, const graph::step& s) {
      std::vector<std::string> in;
      for (int id : s.in)
        in.push_back(e.as(id, e.value(s.out[0]).type));
      e.node("Concat", in, {e.name(s.out[0])}, {{"axis", s.attrs.i(0)}});
    };
    // (ONNX's indices are int32 or int64; ours may be any integer dtype)
    m["gather"] = [](emitter& e, const graph::step& s) {
      e.node("GatherElements", {e.name(s.in[0]), e.as(s.in[1], dtype::int64)},
             {e.name(s.out[0])}, {{"axis", s.attrs.i(0)}});
    };
    m["index_select"] = [](emitter& e, const graph::step& s) {  // a 0-d index keeps its axis
      std::string index = e.as(s.in[1], dtype::int64);
      if (e.value(s.in[1]).shape.rank() == 0)
        index = e.apply("Reshape", {index, e.ints({1})});
      e.node("Gather", {e.name(s.in[0]), index}, {e.name(s.out[0])}, {{"axis", s.attrs.i(0)}});
    };
    m["embedding"] = [](emitter& e, const graph::step& s) {
      e.node("Gather", {e.name(s.in[0]), e.as(s.in[1], dtype::int64)}, {e.name(s.out[0])},
             {{"axis", std::int64_t(0)}});
    };
    m["repeat"] = [](emitter& e, const graph::step& s) {  // extra repeats are new leading axes
      const std::vector<std::int64_t>& reps = s.attrs.ints(0);
      const graph::value& x = e.value(s.in[0]);
      std::string in = e.name(s.in[0]);
      if (reps.size() > x.shape.rank()) {
        std::vector<std::int64_t> shape(reps.size() - x.shape.rank(), 1);
        shape.insert(shape.end(), x.shape.begin(), x.shape.end());
        in = e.apply("Reshape", {in, e.ints(shape)}, {{"allowzero", std::int64_t(1)}});
      }
      e.node("Tile", {in, e.ints(reps)}, {e.name(s.out[0])});
    };
    m["pad"] = [](emitter& e, const graph::step& s) {
      // (before, after) pairs from the last axis backwards -> every axis's before, then after
      const std::vector<std::int64_t>& p = s.attrs.ints(0);
      const std::size_t r = e.value(s.in[0]).shape.rank();
      std::vector<std::int64_t> pads(2 * r, 0);
      for (std::size_t k = 0; k < p.size() && k / 2 < r; k += 2) {
        const std::size_t axis = r - 1 - k / 2;
        pads[axis] = p[k];
        pads[r + axis] = k + 1 < p.size() ? p[k + 1] : 0;
      }
      static const char* const modes[] = {"constant", "reflect", "edge"};
      const std::int64_t mode = s.attrs.i(1);
      if (mode < 0 || mode > 2)
        refuse(s, dynamic::text("has a padding mode ", mode, " that fusegrad does not have"));
      const dtype t = e.value(s.out[0]).type;
      e.node("Pad", {e.name(s.in[0]), e.ints(pads), mode == 0 ? e.scalar(s.attrs.f(2), t) : ""},
             {e.name(s.out[0])}, {{"mode", std::string(modes[mode])}});
    };
    m["masked_fill"] = [](emitter& e, const graph::step& s) {
      const dtype t = e.value(s.out[0]).type;
      e.node("Where",
             {e.as(s.in[1], dtype::bool_), e.scalar(s.attrs.f(0), t), e.as(s.in[0], t)},
             {e.name(s.out[0])});
    };
    m["nonzero"] = [](emitter& e, const graph::step& s) {  // ONNX's is [rank, n], ours [n, rank]
      e.node("Transpose", {e.apply("NonZero", {e.name(s.in[0])})}, {e.name(s.out[0])},
             {{"perm", std::vector<std::int64_t>{1, 0}}});
    };
    m["scatter"] = [](emitter& e, const graph::step& s) {
      e.node("ScatterElements",
             {e.name(s.in[0]), e.as(s.in[1], dtype::int64), scatter_source(e, s)},
             {e.name(s.out[0])}, {{"axis", s.attrs.i(0)}});
    };
    m["scatter_add"] = [](emitter& e, const graph::step& s) {
      e.node("ScatterElements",
             {e.name(s.in[0]), e.as(s.in[1], dtype::int64), scatter_source(e, s)},
             {e.name(s.out[0])}, {{"axis", s.attrs.i(0)}, {"reduction", std::string("add")}});
    };
    m["scatter_value"] = [](emitter& e, const graph::step& s) {
      const graph::value& index = e.value(s.in[1]);
      const std::string src =
          e.apply("Expand", {e.scalar(s.attrs.f(1), e.value(s.out[0]).type),
                             e.ints(std::vector<std::int64_t>(index.shape.begin(),
                                                              index.shape.end()))});
      e.node("ScatterElements", {e.name(s.in[0]), e.as(s.in[1], dtype::int64), src},
             {e.name(s.out[0])}, {{"axis", s.attrs.i(0)}});
    };
    m["cumsum"] = [](emitter& e, const graph::step& s) {
      e.node("CumSum", {e.as(s.in[0], e.value(s.out[0]).type), e.ints({s.attrs.i(0)})},
             {e.name(s.out[0])});
    };
    m["argmax"] = [](emitter& e, const graph::step& s) {
      e.node("ArgMax", {e.name(s.in[0])}, {e.name(s.out[0])},
             {{"axis", s.attrs.i(0)}, {"keepdims", std::int64_t(s.attrs.flag(1))}});
    };
    m["argmin"] = [](emitter& e, const graph::step& s) {
      e.node("ArgMin", {e.name(s.in[0])}, {e.name(s.out[0])},
             {{"axis", s.attrs.i(0)}, {"keepdims", std::int64_t(s.attrs.flag(1))}});
    };
    m["argmax_all"] = [](emitter& e, const graph::step& s) {
      e.node("ArgMax", {e.apply("Reshape", {e.name(s.in[0]), e.ints({-1})})}, {e.name(s.out[0])},
             {{"axis", std::int64_t(0)}, {"keepdims", std::int64_t(0)}});
    };
    m["argmin_all"] = [](emitter& e, const graph::step& s) {
      e.node("ArgMin", {e.apply("Reshape", {e.name(s.in[0]), e.ints({-1})})}, {e.name(s.out[0])},
             {{"axis", std::int64_t(0)}, {"keepdims", std::int64_t(0)}});
    };
    // sort, argsort and topk as TopK (values, indices); a sort takes every element of its axis.
    // (Ties may come out in another order than ours.)
    m["sort"] = [](emitter& e, const graph::step& s) {
      const graph::value& x = e.value(s.in[0]);
      const std::int64_t axis = axis_of(s.attrs.i(0), x.shape.rank());
      e.node("TopK", {e.name(s.in[0]), e.ints({std::int64_t(x.shape[std::size_t(axis)])})},
             {s.out[0] < 0 ? e.fresh() : e.name(s.out[0]),
              s.out[1] < 0 ? e.fresh() : e.name(s.out[1])},
             {{"axis", axis}, {"largest", std::int64_t(s.attrs.flag(1))}});
    };
    m["argsort"] = [](emitter& e, const graph::step& s) {
      const graph::value& x = e.value(s.in[0]);
      const std::int64_t axis = axis_of(s.attrs.i(0), x.shape.rank());
      e.node("TopK", {e.name(s.in[0]), e.ints({std::int64_t(x.shape[std::size_t(axis)])})},
             {e.fresh(), e.name(s.out[0])},
             {{"axis", axis}, {"largest", std::int64_t(s.attrs.flag(1))}});
    };
    m["topk"] = [](emitter& e, const graph::step& s) {
      e.node("TopK", {e.name(s.in[0]), e.ints({s.attrs.i(0)})},
             {s.out[0] < 0 ? e.fresh() : e.name(s.out[0]),
              s.out[1] < 0 ? e.fresh() : e.name(s.out[1])},
             {{"axis", s.attrs.i(1)}, {"largest", std::int64_t(s.attrs.flag(2))}});
    };
    m["conv2d"] = [](emitter& e, const graph::step& s) {
      const std::int64_t st = s.attrs.i(0), p = s.attrs.i(1);
      e.node("Conv", {e.name(s.in[0]), e.name(s.in[1]), e.name(s.in[2])}, {e.name(s.out[0])},
             {{"strides", std::vector<std::int64_t>{st, st}},
              {"pads", std::vector<std::int64_t>{p, p, p, p}}});
    };
    m["max_pool2d"] = [](emitter& e, const graph::step& s) {
      const std::int64_t k = s.attrs.i(0), st = s.attrs.i(1) ? s.attrs.i(1) : k;
      e.node("MaxPool", {e.name(s.in[0])}, {e.name(s.out[0])},
             {{"kernel_shape", std::vector<std::int64_t>{k, k}},
              {"strides", std::vector<std::int64_t>{st, st}}});
    };
    m["avg_pool2d"] = [](emitter& e, const graph::step& s) {
      const std::int64_t k = s.attrs.i(0), st = s.attrs.i(1) ? s.attrs.i(1) : k;
      e.node("AveragePool", {e.name(s.in[0])}, {e.name(s.out[0])},
             {{"kernel_shape", std::vector<std::int64_t>{k, k}},
              {"strides", std::vector<std::int64_t>{st, st}}});
    };
    m["linear"] = [](emitter& e, const graph::step& s) {  // x W^T + b
      if (e.value(s.in[0]).shape.rank() == 2) {
        e.node("Gemm", {e.name(s.in[0]), e.name(s.in[1]), e.name(s.in[2])}, {e.name(s.out[0])},
               {{"transB", std::int64_t(1)}});
        return;
      }
      const std::string y =
          e.apply("MatMul", {e.name(s.in[0]), e.apply("Transpose", {e.name(s.in[1])})});
      if (s.in[2] < 0)
        e.node("Identity", {y}, {e.name(s.out[0])});
      else
        e.node("Add", {y, e.name(s.in[2])}, {e.name(s.out[0])});
    };
    m["nll_loss"] = [](emitter& e, const graph::step& s) {
      e.node("NegativeLogLikelihoodLoss", {e.name(s.in[0]), e.as(s.in[1], dtype::int64)},
             {e.name(s.out[0])});
    };
    m["cross_entropy"] = [](emitter& e, const graph::step& s) {
      e.node("SoftmaxCrossEntropyLoss", {e.name(s.in[0]), e.as(s.in[1], dtype::int64)},
             {e.name(s.out[0])});
    };
    m["lstm_cell"] = lstm_cell;
    m["lstm_sequence"] = lstm_sequence;
    return m;
  }();
  return table;
}

// Why an op has no rule: the random ops and state updates a deployed model should not hold.
inline std::string why_not(std::string_view op) {
  if (op == "dropout")
    return "is a dropout in training mode; trace the model in evaluation mode (train(false))";
  if (op == "running_update")
    return "updates a BatchNorm's running statistics (training mode); trace the model in "
           "evaluation mode (train(false))";
  if (op == "rand" || op == "randn" || op == "randint" || op == "randperm" ||
      op == "multinomial")
    return "draws random numbers, which an ONNX model would draw from another generator";
  return "has no ONNX counterpart that fusegrad exports";
}

}  // namespace detail::onnx

// The graph as the bytes of an ONNX model (opset 17): one node or a few per step, the captured
// tensors (parameters and constants) as initializers, the traced extents as the inputs' and
// outputs' shapes. An op ONNX cannot express is refused, naming it.
inline std::string to_onnx(const graph& g, const onnx_options& o = {}) {
  namespace on = detail::onnx;
  for (const graph::value& v : g.values())
    if (v.on_device)
      throw std::invalid_argument(
          "fg::io::save_onnx(): the graph was traced on the device; trace it on the host");
  on::emitter e(g, o);
  for (const graph::step& s : g.steps()) {
    const auto it = on::rules().find(s.op);
    if (it == on::rules().end())
      on::refuse(s, on::why_not(s.op));
    it->second(e, s);
  }
  return e.model(o);
}

// Writes to_onnx(g, o) to `path` (atomically: the old file or the whole new one).
inline void save_onnx(const std::string& path, const graph& g, const onnx_options& o = {}) {
  const std::string bytes = to_onnx(g, o);
  detail::write_atomically(path, "fg::io::save_onnx()", [&](std::ostream& out) {
    out.write(bytes.data(), std::streamsize(bytes.size()));
  });
}

}  // namespace fg::io

FG_DIAGNOSTICS_END
