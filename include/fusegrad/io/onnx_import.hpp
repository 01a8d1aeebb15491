// fusegrad/io/onnx_import.hpp — an ONNX model as a graph (fg::io::load_onnx): its nodes run as
// fusegrad's ops, traced once into an fg::graph; its float initializers become parameters that
// train in C++ (a PyTorch model exported by torch.onnx.export, fine-tuned without Python)
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic.hpp"
#include "fusegrad/io/file.hpp"
#include "fusegrad/io/onnx_proto.hpp"
#include "fusegrad/nn/activation.hpp"
#include "fusegrad/nn/conv2d.hpp"
#include "fusegrad/nn/embedding.hpp"
#include "fusegrad/nn/linear.hpp"
#include "fusegrad/nn/loss.hpp"
#include "fusegrad/nn/pool.hpp"
#include "fusegrad/nn/recurrent.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

FG_DIAGNOSTICS_BEGIN

namespace fg::io {

// A loaded ONNX model: the graph (run it, differentiate it, hand graph.parameters() to an
// optimiser), its float initializers by name (parameters, requiring a gradient), and the names
// of its inputs and outputs, in the graph's order.
struct onnx_model {
  fg::graph graph;
  std::vector<std::pair<std::string, var>> named_parameters;
  std::vector<std::string> input_names, output_names;
};

// Extents for inputs whose shape the file leaves symbolic (a dynamic axis), by input name: the
// graph is traced for these.
struct onnx_import_options {
  std::map<std::string, extents> input_shapes = {};
};

namespace detail::onnx {

// An attribute's value: ONNX's int, float, string, ints, floats or tensor.
using attr_value = std::variant<std::int64_t, float, std::string, std::vector<std::int64_t>,
                                std::vector<float>, var>;

struct node_proto {
  std::string op, domain, name;
  std::vector<std::string> in, out;
  std::map<std::string, attr_value, std::less<>> attrs;
};
struct value_proto {
  std::string name;
  dtype type = dtype::float32;
  std::vector<std::int64_t> dims;  // -1 where symbolic
};
struct model_proto {
  std::int64_t opset = 0;
  std::vector<node_proto> nodes;
  std::vector<std::pair<std::string, var>> initializers;
  std::vector<value_proto> inputs, outputs;
};

// The most elements a tensor of a model may have (2^48, as a graph file's).
inline constexpr double max_elements = double(std::int64_t(1) << 48);

// `dims` as extents, or a sentence saying why they are none: more than fg::max_rank axes, a
// negative extent, or more than max_elements in all.
inline std::optional<extents> checked_extents(const std::vector<std::int64_t>& dims,
                                              std::string& why) {
  if (dims.size() > max_rank) {
    why = "more than fg::max_rank axes";
    return std::nullopt;
  }
  extents e = extents::of_rank(dims.size());
  double total = 1;
  for (std::size_t a = 0; a < dims.size(); ++a) {
    total *= double(dims[a]);
    if (dims[a] < 0 || total > max_elements) {
      why = dynamic::text("extents no tensor has (", dims[a] < 0 ? "a negative one" : "over 2^48 "
                                                                                       "elements",
                          ")");
      return std::nullopt;
    }
    e[a] = index_t(dims[a]);
  }
  return e;
}

// A TensorProto as a var: raw_data or the typed lists, of the declared element count.
inline std::pair<std::string, var> read_tensor(protobuf::reader m, const std::string& what) {
  std::vector<std::int64_t> dims, ints;
  std::vector<float> floats;
  std::vector<double> doubles;
  std::int64_t type = 0;
  std::string name;
  std::string_view raw;
  bool has_raw = false;
  while (m.next()) {
    switch (m.field()) {
      case field::tensor_dims: m.append_int64s(dims); break;
      case field::tensor_data_type: type = m.int64(); break;
      case field::tensor_name: name = std::string(m.bytes()); break;
      case field::tensor_raw_data:
        raw = m.bytes();
        has_raw = true;
        break;
      case field::tensor_float_data: m.append_f32s(floats); break;
      case field::tensor_int32_data:
      case field::tensor_int64_data: m.append_int64s(ints); break;
      case field::tensor_double_data: {
        if (m.type() == protobuf::wire::fixed64) {
          doubles.push_back(m.f64());
        } else {
          const std::string_view b = m.bytes();
          if (b.size() % 8)
            m.fail("a packed double list of a length that is not a multiple of 8");
          const std::size_t n = doubles.size();
          doubles.resize(n + b.size() / 8);
          std::memcpy(doubles.data() + n, b.data(), b.size());
        }
        break;
      }
      case field::tensor_data_location:
        if (m.int64() != 0)
          throw std::invalid_argument(what + ": tensor '" + name +
                                      "' keeps its data in an external file, which is not read");
        break;
      case field::tensor_string_data:
      case field::tensor_uint64_data:
        throw std::invalid_argument(what + ": tensor '" + name +
                                    "' holds strings or uint64, which fusegrad has not");
      default: break;
    }
  }
  const std::optional<dtype> t = dtype_of_elem(type);
  if (!t)
    throw std::invalid_argument(dynamic::text(what, ": tensor '", name, "' has ONNX element type ",
                                              type, ", which fusegrad has not"));
  std::string why;
  const std::optional<extents> e = checked_extents(dims, why);
  if (!e)
    m.fail("tensor '" + name + "' has " + why);
  const std::size_t n = std::size_t(e->size()), es = dynamic::element_size(*t);
  // (the payload is checked before anything is allocated for it)
  const std::size_t got = has_raw                  ? raw.size()
                          : *t == dtype::float32 ? floats.size() * es
                          : *t == dtype::float64 ? doubles.size() * es
                                                 : ints.size() * es;
  if (got != n * es)
    m.fail(dynamic::text("tensor '", name, "' holds ", got, " bytes for ", n, " elements of ",
                         dtype_name(*t)));
  var v = var::empty(*e, *t);
  char* dst = static_cast<char*>(v.ready().data->bytes) + v.ready().offset * es;
  if (has_raw) {
    std::memcpy(dst, raw.data(), raw.size());
    if (*t == dtype::bool_)
      detail::normalise_bools(v);
  } else if (*t == dtype::float32) {
    std::memcpy(dst, floats.data(), n * 4);
  } else if (*t == dtype::float64) {
    std::memcpy(dst, doubles.data(), n * 8);
  } else {  // integers, bools, and 16-bit floats' bits, one per list element
    for (std::size_t k = 0; k < n; ++k)
      std::memcpy(dst + k * es, &ints[k], es);  // (little-endian: the low bytes)
    if (*t == dtype::bool_)
      detail::normalise_bools(v);
  }
  return {name, v};
}

inline value_proto read_value_info(protobuf::reader m, const std::string& what) {
  value_proto v;
  std::int64_t elem = 0;
  while (m.next()) {
    if (m.field() == field::value_info_name)
      v.name = std::string(m.bytes());
    if (m.field() != field::value_info_type)
      continue;
    protobuf::reader type = m.message();
    while (type.next()) {
      if (type.field() != field::type_tensor)
        continue;
      protobuf::reader tensor = type.message();
      while (tensor.next()) {
        if (tensor.field() == field::type_tensor_elem_type)
          elem = tensor.int64();
        if (tensor.field() != field::type_tensor_shape)
          continue;
        protobuf::reader shape = tensor.message();
        while (shape.next()) {
          if (shape.field() != field::shape_dim)
            continue;
          protobuf::reader dim = shape.message();
          std::int64_t d = -1;
          while (dim.next())
            if (dim.field() == field::dim_value)
              d = dim.int64();
          v.dims.push_back(d);
        }
      }
    }
  }
  const std::optional<dtype> t = dtype_of_elem(elem);
  if (!t)
    throw std::invalid_argument(dynamic::text(what, ": input or output '", v.name,
                                              "' is not a tensor of a type fusegrad has"));
  v.type = *t;
  return v;
}

inline node_proto read_node(protobuf::reader m, const std::string& what) {
  node_proto n;
  while (m.next()) {
    switch (m.field()) {
      case field::node_input: n.in.emplace_back(m.bytes()); break;
      case field::node_output: n.out.emplace_back(m.bytes()); break;
      case field::node_name: n.name = std::string(m.bytes()); break;
      case field::node_op_type: n.op = std::string(m.bytes()); break;
      case field::node_domain: n.domain = std::string(m.bytes()); break;
      case field::node_attribute: {
        protobuf::reader a = m.message();
        std::string name;
        attr_value value;
        std::vector<std::int64_t> ints;
        std::vector<float> floats;
        std::int64_t type = 0;
        while (a.next()) {
          switch (a.field()) {
            case field::attr_name: name = std::string(a.bytes()); break;
            case field::attr_type: type = a.int64(); break;
            case field::attr_i: value = a.int64(); break;
            case field::attr_f: value = a.f32(); break;
            case field::attr_s: value = std::string(a.bytes()); break;
            case field::attr_t: value = read_tensor(a.message(), what).second; break;
            case field::attr_ints: a.append_int64s(ints); break;
            case field::attr_floats: a.append_f32s(floats); break;
            case field::attr_g:
            case field::attr_graphs:
              throw std::invalid_argument(what + ": node '" + n.name + "' (" + n.op +
                                          ") holds a subgraph (If, Loop, Scan), which is not "
                                          "imported");
            case field::attr_ref_attr_name:
              throw std::invalid_argument(what + ": node '" + n.name +
                                          "' refers to a function's attribute");
            default: break;
          }
        }
        if (type == attr_ints)
          value = std::move(ints);
        else if (type == attr_floats)
          value = std::move(floats);
        n.attrs[name] = std::move(value);
        break;
      }
      default: break;
    }
  }
  return n;
}

inline model_proto read_model(std::string_view bytes, const std::string& what) {
  model_proto model;
  protobuf::reader m(bytes, what);
  bool has_graph = false;
  while (m.next()) {
    if (m.field() == field::model_opset_import) {
      protobuf::reader o = m.message();
      std::string domain;
      std::int64_t version = 0;
      while (o.next()) {
        if (o.field() == field::opset_domain)
          domain = std::string(o.bytes());
        if (o.field() == field::opset_version)
          version = o.int64();
      }
      if (domain.empty() || domain == "ai.onnx")
        model.opset = version;
    }
    if (m.field() != field::model_graph)
      continue;
    has_graph = true;
    protobuf::reader g = m.message();
    std::vector<value_proto> inputs;
    while (g.next()) {
      switch (g.field()) {
        case field::graph_node: model.nodes.push_back(read_node(g.message(), what)); break;
        case field::graph_initializer:
          model.initializers.push_back(read_tensor(g.message(), what));
          break;
        case field::graph_input: inputs.push_back(read_value_info(g.message(), what)); break;
        case field::graph_output:
          model.outputs.push_back(read_value_info(g.message(), what));
          break;
        case field::graph_sparse_initializer:
          throw std::invalid_argument(what + ": sparse initializers are not read");
        default: break;
      }
    }
    // (before IR 4, initializers were listed among the inputs too)
    for (value_proto& v : inputs)
      if (std::none_of(model.initializers.begin(), model.initializers.end(),
                       [&](const auto& i) { return i.first == v.name; }))
        model.inputs.push_back(std::move(v));
  }
  if (!has_graph)
    throw format_error(what + ": not an ONNX model (no graph)");
  if (model.opset < 13)
    throw std::invalid_argument(dynamic::text(
        what, ": the model is of opset ", model.opset,
        "; fusegrad reads opset 13 and later (re-export it, e.g. opset_version=17)"));
  return model;
}

// Runs a model's nodes on fusegrad's ops (while fg::trace records them). A node whose inputs
// are all constants (initializers that are not parameters, Constant nodes, shapes) runs
// unrecorded, once: its outputs are constants of the graph.
class interpreter {
 public:
  interpreter(const std::string& what) : what_(what) {}

  void set(const std::string& name, var v, bool constant) {
    values_[name] = std::move(v);
    if (constant)
      constants_.insert(name);
  }
  // An initializer that is a parameter: an op's input, and readable where a constant is needed
  // (its value then, as at export).
  void set_parameter(const std::string& name, var v) {
    values_[name] = std::move(v);
    parameters_.insert(name);
  }
  var get(const std::string& name) const {
    const auto it = values_.find(name);
    if (it == values_.end())
      fail(dynamic::text("reads '", name, "', which no node, input or initializer makes"));
    return it->second;
  }

  void run(const node_proto& n) {
    node_ = &n;
    if (!n.domain.empty() && n.domain != "ai.onnx")
      fail("is of the domain '" + n.domain + "'; only ONNX's default domain is read");
    const auto& table = ops();
    const auto it = table.find(n.op);
    if (it == table.end())
      fail("is an op that fusegrad does not import");
    bool constant = true;
    for (const std::string& i : n.in)
      constant = constant && (i.empty() || constants_.count(i));
    std::vector<var> out;
    if (constant || n.op == "Shape") {
      const untraced off;
      out = it->second(*this);
      constant = true;
    } else {
      out = it->second(*this);
    }
    for (std::size_t k = 0; k < n.out.size(); ++k) {
      if (n.out[k].empty())
        continue;
      if (k >= out.size() || !out[k].defined())
        fail(dynamic::text("asks for output ", k, ", which fusegrad does not compute"));
      set(n.out[k], out[k], constant);
    }
  }

  // ---- what the op functions read ----
  const node_proto& node() const { return *node_; }
  bool has(std::size_t k) const { return k < node_->in.size() && !node_->in[k].empty(); }
  var in(std::size_t k) const {
    if (!has(k))
      fail(dynamic::text("lacks its input ", k));
    return get(node_->in[k]);
  }
  bool constant(std::size_t k) const { return has(k) && constants_.count(node_->in[k]); }
  bool readable(std::size_t k) const {
    return constant(k) || (has(k) && parameters_.count(node_->in[k]));
  }
  // A constant input's elements as integers (axes, extents, indices).
  std::vector<std::int64_t> ints(std::size_t k) const {
    if (!readable(k))
      fail(dynamic::text("computes its input ", k,
                         " (axes, extents) from the graph's inputs; fusegrad needs it constant"));
    const untraced off;
    const var v = in(k).to(dtype::int64);
    const std::int64_t* p = v.data<std::int64_t>();
    return std::vector<std::int64_t>(p, p + v.size());
  }
  // A constant input's elements as numbers.
  std::vector<double> numbers(std::size_t k) const {
    if (!readable(k))
      fail(dynamic::text("computes its input ", k, " from the graph's inputs; fusegrad needs it "
                         "constant"));
    const untraced off;
    const var v = in(k).to(dtype::float64);
    const double* p = v.data<double>();
    return std::vector<double>(p, p + v.size());
  }
  double number(std::size_t k) const {
    const std::vector<double> v = numbers(k);
    if (v.size() != 1)
      fail(dynamic::text("has a bound of ", v.size(), " elements, not one"));
    return v[0];
  }
  template <class P> bool number_any(std::size_t k, P p) const {
    const std::vector<double> v = numbers(k);
    return std::any_of(v.begin(), v.end(), p);
  }
  template <class T> T attr(std::string_view name, T fallback) const {
    const auto it = node_->attrs.find(name);
    if (it == node_->attrs.end())
      return fallback;
    if (const T* v = std::get_if<T>(&it->second))
      return *v;
    fail(dynamic::text("has an attribute '", std::string(name), "' of another kind"));
  }
  std::int64_t i(std::string_view name, std::int64_t fallback) const {
    return attr<std::int64_t>(name, fallback);
  }
  float f(std::string_view name, float fallback) const { return attr<float>(name, fallback); }
  std::vector<std::int64_t> list(std::string_view name,
                                 std::vector<std::int64_t> fallback = {}) const {
    return attr<std::vector<std::int64_t>>(name, std::move(fallback));
  }
  bool has_attr(std::string_view name) const { return node_->attrs.count(name) != 0; }
  // Axes given as an attribute (older opsets) or as input k (newer ones); none: all.
  std::vector<std::int64_t> axes(std::size_t k) const {
    return has(k) ? ints(k) : list("axes");
  }
  [[noreturn]] void fail(const std::string& why) const {
    throw std::invalid_argument(dynamic::text(
        "fg::io::load_onnx(): ", what_, ": node '", node_ ? node_->name : std::string(), "' (",
        node_ ? node_->op : std::string(), ") ", why));
  }

  using op_fn = std::vector<var> (*)(interpreter&);
  static const std::map<std::string, op_fn, std::less<>>& ops();

 private:
  // Ops run here are not recorded (folded constants).
  struct untraced {
    untraced() { ++dynamic::trace_state_of_thread().depth; }
    ~untraced() { --dynamic::trace_state_of_thread().depth; }
    untraced(const untraced&) = delete;
    untraced& operator=(const untraced&) = delete;
  };

  std::string what_;
  std::map<std::string, var> values_;
  std::set<std::string> constants_, parameters_;
  const node_proto* node_ = nullptr;
};

// ---- shapes ----

inline int axis(const interpreter& r, std::int64_t a, std::size_t rank) {
  const std::int64_t k = a < 0 ? a + std::int64_t(rank) : a;
  if (k < 0 || k >= std::int64_t(rank))
    r.fail(dynamic::text("names axis ", a, " of a tensor of rank ", rank));
  return int(k);
}
inline extents to_extents(const interpreter& r, const std::vector<std::int64_t>& v) {
  std::string why;
  const std::optional<extents> e = checked_extents(v, why);
  if (!e)
    r.fail("makes a tensor of " + why);
  return *e;
}
inline std::vector<std::int64_t> dims(const var& x) {
  return std::vector<std::int64_t>(x.shape().begin(), x.shape().end());
}
// Numpy's broadcast of two shapes (ONNX's multidirectional broadcasting).
inline std::vector<std::int64_t> broadcast(const interpreter& r, std::vector<std::int64_t> a,
                                           std::vector<std::int64_t> b) {
  if (a.size() < b.size())
    std::swap(a, b);
  b.insert(b.begin(), a.size() - b.size(), 1);
  for (std::size_t k = 0; k < a.size(); ++k) {
    if (a[k] != b[k] && a[k] != 1 && b[k] != 1)
      r.fail("broadcasts shapes that do not broadcast");
    a[k] = a[k] == 1 ? b[k] : a[k];
  }
  return a;
}
inline var constant_ints(const std::vector<std::int64_t>& v) {
  return var::from(v, {index_t(v.size())}, dtype::int64);
}

// ---- the ops ----

inline std::vector<var> one(var v) { return {std::move(v)}; }

template <var (*F)(const var&)> std::vector<var> unary(interpreter& r) { return one(F(r.in(0))); }

// Add, Sub, Mul, Div, Pow; on integer constants (shape arithmetic) Div truncates, as ONNX's.
template <class Op> std::vector<var> binary(interpreter& r) {
  const var a = r.in(0), b = r.in(1);
  if constexpr (std::is_same_v<Op, ops::div_op>) {
    if (!is_floating(a.dtype())) {
      if (!r.constant(0) || !r.constant(1))
        r.fail("divides integers computed from the graph's inputs");
      var q = fg::apply<Op>(a.to(dtype::float64), b.to(dtype::float64));
      double* p = q.data<double>();
      for (index_t k = 0; k < q.size(); ++k)
        p[k] = std::trunc(p[k]);
      return one(q.to(a.dtype()));
    }
  }
  return one(fg::apply<Op>(a, b));
}

inline std::vector<var> reshape_op(interpreter& r) {
  const var x = r.in(0);
  std::vector<std::int64_t> shape = r.ints(1);
  const bool allow_zero = r.i("allowzero", 0) != 0;
  double known = 1;
  std::int64_t infer = -1;
  for (std::size_t a = 0; a < shape.size(); ++a) {
    if (shape[a] == 0 && !allow_zero) {
      if (a >= x.rank())
        r.fail("copies an extent the input does not have");
      shape[a] = std::int64_t(x.shape()[a]);
    }
    if (shape[a] == -1 && infer < 0)
      infer = std::int64_t(a);
    else
      known *= double(shape[a]);  // (in double: no overflow; to_extents refuses the absurd)
  }
  if (infer >= 0)
    shape[std::size_t(infer)] = known > 0 ? std::int64_t(double(x.size()) / known) : 0;
  return one(reshape(x, to_extents(r, shape)));
}

inline std::vector<var> unsqueeze_op(interpreter& r) {
  const var x = r.in(0);
  const std::vector<std::int64_t> ax = r.axes(1);
  const std::size_t rank = x.rank() + ax.size();
  if (rank > max_rank)
    r.fail("makes a tensor of more than fg::max_rank axes");
  std::vector<bool> added(rank);
  for (std::int64_t a : ax) {
    const auto k = std::size_t(axis(r, a, rank));
    if (added[k])
      r.fail("names an axis twice");
    added[k] = true;
  }
  std::vector<std::int64_t> shape;
  for (std::size_t a = 0, k = 0; a < rank; ++a)
    shape.push_back(added[a] ? 1 : std::int64_t(x.shape()[k++]));
  return one(reshape(x, to_extents(r, shape)));
}

inline std::vector<var> squeeze_op(interpreter& r) {
  const var x = r.in(0);
  std::vector<bool> gone(x.rank());
  const std::vector<std::int64_t> ax = r.axes(1);
  for (std::size_t a = 0; a < x.rank(); ++a)
    gone[a] = ax.empty() && x.shape()[a] == 1;
  for (std::int64_t a : ax)
    gone[std::size_t(axis(r, a, x.rank()))] = true;
  std::vector<std::int64_t> shape;
  for (std::size_t a = 0; a < x.rank(); ++a)
    if (!gone[a])
      shape.push_back(std::int64_t(x.shape()[a]));
  return one(reshape(x, to_extents(r, shape)));
}

inline std::vector<var> flatten_op(interpreter& r) {
  const var x = r.in(0);
  const std::int64_t given = r.i("axis", 1), n = std::int64_t(x.rank());
  if (given < -n || given > n)
    r.fail(dynamic::text("flattens at axis ", given, " of a tensor of rank ", n));
  const auto a = std::size_t(given < 0 ? given + n : given);
  std::int64_t outer = 1;
  for (std::size_t k = 0; k < a; ++k)
    outer *= std::int64_t(x.shape()[k]);
  return one(reshape(x, {index_t(outer), index_t(outer ? std::int64_t(x.size()) / outer : 0)}));
}

inline std::vector<var> transpose_op(interpreter& r) {
  const var x = r.in(0);
  std::vector<std::int64_t> perm = r.list("perm");
  if (perm.empty())
    for (std::size_t a = x.rank(); a-- > 0;)
      perm.push_back(std::int64_t(a));
  return one(permute(x, std::vector<int>(perm.begin(), perm.end())));
}

// Gather along an axis; an embedding (a parameter's rows by indices) records as one.
inline std::vector<var> gather_op(interpreter& r) {
  const var x = r.in(0);
  var idx = r.in(1).to(dtype::int64);
  const int a = axis(r, r.i("axis", 0), x.rank());
  if (r.constant(1)) {  // negative indices count from the end
    std::vector<std::int64_t> v = r.ints(1);
    for (std::int64_t& k : v)
      k = k < 0 ? k + std::int64_t(x.shape()[std::size_t(a)]) : k;
    idx = var::from(v, idx.shape(), dtype::int64);
  }
  if (a == 0 && x.rank() == 2 && is_floating(x.dtype()) && idx.rank() > 0)
    return one(nn::embedding(x, idx));
  std::vector<std::int64_t> shape(x.shape().begin(), x.shape().begin() + a);
  shape.insert(shape.end(), idx.shape().begin(), idx.shape().end());
  shape.insert(shape.end(), x.shape().begin() + a + 1, x.shape().end());
  return one(reshape(index_select(x, a, reshape(idx, {idx.size()})), to_extents(r, shape)));
}

inline std::vector<var> slice_op(interpreter& r) {
  var x = r.in(0);
  const std::vector<std::int64_t> starts = r.ints(1), ends = r.ints(2);
  std::vector<std::int64_t> ax = r.has(3) ? r.ints(3) : std::vector<std::int64_t>{};
  std::vector<std::int64_t> steps = r.has(4) ? r.ints(4) : std::vector<std::int64_t>{};
  if (ax.empty())
    for (std::size_t k = 0; k < starts.size(); ++k)
      ax.push_back(std::int64_t(k));
  steps.resize(starts.size(), 1);
  if (ends.size() != starts.size() || ax.size() != starts.size())
    r.fail("gives starts, ends and axes of different lengths");
  for (std::size_t k = 0; k < starts.size(); ++k) {
    const int a = axis(r, ax[k], x.rank());
    const std::int64_t n = std::int64_t(x.shape()[std::size_t(a)]);
    if (steps[k] > 0) {
      const auto clampi = [&](std::int64_t v) {
        v = v < 0 ? v + n : v;
        return std::clamp<std::int64_t>(v, 0, n);
      };
      x = slice(x, a, sindex_t(clampi(starts[k])), sindex_t(clampi(ends[k])),
                sindex_t(steps[k]));
    } else if (steps[k] == -1 && (starts[k] >= n - 1 || starts[k] == -1) && ends[k] < -n) {
      x = flip(x, {a});
    } else {
      r.fail("slices backwards other than a whole axis, which fusegrad does not import");
    }
  }
  return one(x);
}

inline std::vector<var> split_op(interpreter& r) {
  const var x = r.in(0);
  const int a = axis(r, r.i("axis", 0), x.rank());
  const std::int64_t n = std::int64_t(x.shape()[std::size_t(a)]);
  std::vector<std::int64_t> parts = r.has(1) ? r.ints(1) : r.list("split");
  const std::int64_t k = std::int64_t(r.node().out.size());
  if (parts.empty()) {  // equal parts (opset 13 to 17: they must divide the axis)
    if (k == 0 || n % k)
      r.fail(dynamic::text("splits ", n, " elements into ", k, " equal parts"));
    parts.assign(std::size_t(k), n / k);
  }
  std::int64_t total = 0;
  for (std::int64_t p : parts) {
    if (p < 0)
      r.fail("has a part of negative length");
    total += p;
  }
  if (total != n || std::int64_t(parts.size()) != k)
    r.fail(dynamic::text("splits ", n, " elements into parts of ", total, " in all, or into ",
                         parts.size(), " parts for ", k, " outputs"));
  std::vector<var> out;
  std::int64_t at = 0;
  for (std::int64_t p : parts) {
    out.push_back(slice(x, a, index_t(at), index_t(at + p)));
    at += p;
  }
  return out;
}

inline std::vector<var> concat_op(interpreter& r) {
  std::vector<var> xs;
  for (std::size_t k = 0; k < r.node().in.size(); ++k)
    xs.push_back(r.in(k));
  return one(concat(xs, axis(r, r.i("axis", 0), xs.at(0).rank())));
}

inline std::vector<var> expand_op(interpreter& r) {
  const var x = r.in(0);
  return one(broadcast_to(x, to_extents(r, broadcast(r, dims(x), r.ints(1)))));
}

inline std::vector<var> shape_op(interpreter& r) {
  const std::vector<std::int64_t> d = dims(r.in(0));
  const auto n = std::int64_t(d.size());
  auto clampi = [&](std::int64_t v) { return std::clamp<std::int64_t>(v < 0 ? v + n : v, 0, n); };
  const std::int64_t b = clampi(r.i("start", 0)), e = clampi(r.i("end", n));
  return one(constant_ints(std::vector<std::int64_t>(d.begin() + b, d.begin() + std::max(b, e))));
}

inline std::vector<var> constant_op(interpreter& r) {
  const auto& a = r.node().attrs;
  if (const auto it = a.find("value"); it != a.end() && std::holds_alternative<var>(it->second))
    return one(std::get<var>(it->second));
  if (r.has_attr("value_float"))
    return one(var::full({}, r.f("value_float", 0)));
  if (r.has_attr("value_int"))
    return one(var::full({}, double(r.i("value_int", 0)), dtype::int64));
  if (r.has_attr("value_ints"))
    return one(constant_ints(r.list("value_ints")));
  if (r.has_attr("value_floats")) {
    const auto v = r.attr<std::vector<float>>("value_floats", {});
    return one(var::from(v, {index_t(v.size())}, dtype::float32));
  }
  r.fail("holds a kind of constant that fusegrad does not import");
}

inline std::vector<var> constant_of_shape_op(interpreter& r) {
  const extents e = to_extents(r, r.ints(0));
  const var fill = r.attr<var>("value", var::zeros({1}));
  if (fill.size() != 1)
    r.fail("fills with a value of other than one element");
  return one(var::full(e, fill.to(dtype::float64).data<double>()[0], fill.dtype()));
}

inline std::vector<var> range_op(interpreter& r) {
  const double start = r.number(0), limit = r.number(1), delta = r.number(2);
  const double count = std::ceil((limit - start) / delta);
  if (delta == 0 || !std::isfinite(count) || count > max_elements)
    r.fail("makes a range of no finite length");
  const auto n = std::int64_t(std::max(0.0, count));
  std::vector<double> v;
  for (std::int64_t k = 0; k < n; ++k)
    v.push_back(start + double(k) * delta);
  return one(var::from(v, {index_t(n)}, dtype::float64).to(r.in(0).dtype()));
}

inline std::vector<var> cast_op(interpreter& r) {
  const std::optional<dtype> t = dtype_of_elem(r.i("to", 0));
  if (!t)
    r.fail("casts to an element type fusegrad has not");
  return one(r.in(0).to(*t));
}

inline std::vector<var> matmul_op(interpreter& r) {
  var a = r.in(0), b = r.in(1);
  const bool a1 = a.rank() == 1, b1 = b.rank() == 1;
  if (a1)
    a = reshape(a, {1, a.shape()[0]});
  if (b1)
    b = reshape(b, {b.shape()[0], 1});
  if (a.rank() > 2 && b.rank() > 2) {  // batch axes broadcast, as numpy's matmul
    std::vector<std::int64_t> da = dims(a), db = dims(b);
    const std::vector<std::int64_t> batch =
        broadcast(r, std::vector<std::int64_t>(da.begin(), da.end() - 2),
                  std::vector<std::int64_t>(db.begin(), db.end() - 2));
    auto widen = [&](const var& x, const std::vector<std::int64_t>& d) {
      std::vector<std::int64_t> s = batch;
      s.insert(s.end(), d.end() - 2, d.end());
      return d == s ? x : broadcast_to(x, to_extents(r, s));
    };
    a = widen(a, da);
    b = widen(b, db);
  }
  var y = matmul(a, b);
  if (a1 || b1) {
    std::vector<std::int64_t> s = dims(y);
    if (b1)
      s.pop_back();
    if (a1)
      s.erase(s.end() - (b1 ? 1 : 2));
    y = reshape(y, to_extents(r, s));
  }
  return one(y);
}

// alpha op(A) op(B) + beta C; as a linear layer when it is one (x W^T + b).
inline std::vector<var> gemm_op(interpreter& r) {
  const var a = r.i("transA", 0) ? transpose(r.in(0)) : r.in(0);
  const bool tb = r.i("transB", 0) != 0;
  const double alpha = r.f("alpha", 1), beta = r.f("beta", 1);
  if (tb && alpha == 1 && beta == 1 && (!r.has(2) || r.in(2).rank() <= 1))
    return one(nn::linear(a, r.in(1), r.has(2) ? r.in(2) : var()));
  var y = matmul(a, tb ? transpose(r.in(1)) : r.in(1));
  if (alpha != 1)
    y = y * alpha;
  if (r.has(2))
    y = y + (beta == 1 ? r.in(2) : r.in(2) * beta);
  return one(y);
}

// Equal pads on every side and one stride for both axes: what fg::nn's 2-D conv and pools take.
inline std::pair<index_t, index_t> square_window(interpreter& r, std::size_t spatial) {
  const std::vector<std::int64_t> strides = r.list("strides", std::vector<std::int64_t>(spatial, 1));
  const std::vector<std::int64_t> pads = r.list("pads", std::vector<std::int64_t>(2 * spatial, 0));
  const std::vector<std::int64_t> dil = r.list("dilations", std::vector<std::int64_t>(spatial, 1));
  const std::string pad_mode = r.attr<std::string>("auto_pad", "NOTSET");
  if (spatial != 2)
    r.fail(dynamic::text("works on ", spatial, " spatial axes; fusegrad imports 2 (NCHW)"));
  if (strides.size() != spatial || pads.size() != 2 * spatial || dil.size() != spatial ||
      std::any_of(strides.begin(), strides.end(), [](auto v) { return v < 1; }) ||
      std::any_of(pads.begin(), pads.end(), [](auto v) { return v < 0; }))
    r.fail("has strides, pads or dilations that are not one positive stride and two non-negative "
           "pads per spatial axis");
  if (pad_mode != "NOTSET" && pad_mode != "VALID")
    r.fail("pads by auto_pad " + pad_mode + ", which fusegrad does not import");
  if (std::any_of(strides.begin(), strides.end(), [&](auto s) { return s != strides[0]; }) ||
      std::any_of(pads.begin(), pads.end(), [&](auto p) { return p != pads[0]; }) ||
      std::any_of(dil.begin(), dil.end(), [](auto d) { return d != 1; }))
    r.fail("has unequal strides or pads, or dilations, which fg::nn's 2-D windows do not take "
           "yet");
  return {index_t(strides[0]), index_t(pad_mode == "VALID" ? 0 : pads[0])};
}

inline std::vector<var> conv_op(interpreter& r) {
  const var x = r.in(0), w = r.in(1);
  if (r.i("group", 1) != 1)
    r.fail("is a grouped convolution, which fg::nn does not have yet");
  const auto [stride, pad] = square_window(r, w.rank() - 2);
  return one(nn::conv2d(x, w, r.has(2) ? r.in(2) : var(), stride, pad));
}

template <bool Max> std::vector<var> pool_op(interpreter& r) {
  const std::vector<std::int64_t> k = r.list("kernel_shape");
  const auto [stride, pad] = square_window(r, k.size());
  if (k.size() != 2 || k[0] != k[1] || pad != 0 || r.i("ceil_mode", 0) != 0)
    r.fail("pools with a window that is not square, padding or ceil_mode, which fg::nn's "
           "pools do not take yet");
  return one(Max ? nn::max_pool2d(r.in(0), index_t(k[0]), stride)
                 : nn::avg_pool2d(r.in(0), index_t(k[0]), stride));
}

inline std::vector<var> pad_op(interpreter& r) {
  const var x = r.in(0);
  const std::vector<std::int64_t> p = r.ints(1);
  const std::size_t n = x.rank();
  std::vector<std::int64_t> ax = r.has(3) ? r.ints(3) : std::vector<std::int64_t>{};
  if (ax.empty())
    for (std::size_t a = 0; a < n; ++a)
      ax.push_back(std::int64_t(a));
  if (p.size() != 2 * ax.size())
    r.fail("gives pads that are not a begin and an end per axis");
  std::vector<std::int64_t> begin(n), end(n);
  for (std::size_t k = 0; k < ax.size(); ++k) {
    const int a = axis(r, ax[k], n);
    begin[std::size_t(a)] = p[k];
    end[std::size_t(a)] = p[ax.size() + k];
  }
  std::vector<index_t> pairs;  // (before, after) from the last axis backwards
  for (std::size_t a = n; a-- > 0;) {
    pairs.push_back(index_t(begin[a]));
    pairs.push_back(index_t(end[a]));
  }
  const std::string mode = r.attr<std::string>("mode", "constant");
  if (mode == "reflect")
    return one(pad(x, pairs, pad_mode::reflect));
  if (mode == "edge")
    return one(pad(x, pairs, pad_mode::replicate));
  if (mode != "constant")
    r.fail("pads in mode '" + mode + "', which fusegrad has not");
  return one(pad(x, pairs, pad_mode::constant, r.has(2) ? r.number(2) : 0.0));
}

template <class Red> std::vector<var> reduce_op(interpreter& r) {
  const var x = r.in(0);
  std::vector<std::int64_t> ax = r.axes(1);
  if (ax.empty() && r.i("noop_with_empty_axes", 0))
    return one(x);
  // (ONNX keeps the input's dtype; fusegrad sums integers in int64)
  return one(reduce<Red>(x, std::vector<int>(ax.begin(), ax.end()), r.i("keepdims", 1) != 0)
                 .to(x.dtype()));
}

template <bool Max> std::vector<var> arg_op(interpreter& r) {
  if (r.i("select_last_index", 0))
    r.fail("selects the last of equal elements; fusegrad's argmax selects the first");
  const var x = r.in(0);
  const int a = axis(r, r.i("axis", 0), x.rank());
  const bool keep = r.i("keepdims", 1) != 0;
  return one(Max ? argmax(x, a, keep) : argmin(x, a, keep));
}

inline std::vector<var> softmax_op(interpreter& r) {
  return one(nn::softmax(r.in(0), int(r.i("axis", -1))));
}
inline std::vector<var> log_softmax_op(interpreter& r) {
  return one(nn::log_softmax(r.in(0), int(r.i("axis", -1))));
}

// (x - mean) / sqrt(var + eps) * scale + bias over the axes from `axis` on.
inline std::vector<var> layer_norm_op(interpreter& r) {
  const var x = r.in(0);
  std::vector<int> ax;
  for (std::size_t a = std::size_t(axis(r, r.i("axis", -1), x.rank())); a < x.rank(); ++a)
    ax.push_back(int(a));
  const var m = mean(x, ax, true), centred = x - m;
  const var v = mean(square(centred), ax, true);
  var y = centred / sqrt(v + double(r.f("epsilon", 1e-5f))) * r.in(1);
  return one(r.has(2) ? y + r.in(2) : y);
}

// Inference: the running mean and variance (inputs 3 and 4) per channel (axis 1).
inline std::vector<var> batch_norm_op(interpreter& r) {
  if (r.i("training_mode", 0))
    r.fail("is in training mode; fusegrad imports a BatchNormalization for inference");
  const var x = r.in(0);
  std::vector<std::int64_t> s(x.rank(), 1);
  s.at(1) = std::int64_t(x.shape()[1]);
  const extents e = to_extents(r, s);
  const var scale = reshape(r.in(1), e), bias = reshape(r.in(2), e), m = reshape(r.in(3), e),
            v = reshape(r.in(4), e);
  return one((x - m) / sqrt(v + double(r.f("epsilon", 1e-5f))) * scale + bias);
}

inline std::vector<var> clip_op(interpreter& r) {
  const double inf = std::numeric_limits<double>::infinity();
  return one(clamp(r.in(0), r.has(1) ? r.number(1) : -inf, r.has(2) ? r.number(2) : inf));
}

template <class Op> std::vector<var> variadic(interpreter& r) {
  var y = r.in(0);
  for (std::size_t k = 1; k < r.node().in.size(); ++k)
    y = fg::apply<Op>(y, r.in(k));
  return one(y);
}

inline std::vector<var> where_op(interpreter& r) {
  return one(where(r.in(0), r.in(1), r.in(2)));
}

inline std::vector<var> topk_op(interpreter& r) {
  const var x = r.in(0);
  const std::vector<std::int64_t> k = r.ints(1);
  const sorted_result s = topk(x, index_t(k.at(0)), axis(r, r.i("axis", -1), x.rank()),
                               r.i("largest", 1) != 0);
  return {s.values, s.indices};
}

inline std::vector<var> cumsum_op(interpreter& r) {
  if (r.i("exclusive", 0) || r.i("reverse", 0))
    r.fail("is an exclusive or reverse cumulative sum, which fusegrad has not");
  const var x = r.in(0);
  return one(cumsum(x, axis(r, r.ints(1).at(0), x.rank())));
}

inline std::vector<var> scatter_op(interpreter& r) {
  const var x = r.in(0), idx = r.in(1).to(dtype::int64), src = r.in(2);
  const int a = axis(r, r.i("axis", 0), x.rank());
  const std::string red = r.attr<std::string>("reduction", "none");
  if (red == "add")
    return one(scatter_add(x, a, idx, src));
  if (red != "none")
    r.fail("scatters with reduction '" + red + "', which fusegrad has not");
  return one(scatter(x, a, idx, src));
}

inline std::vector<var> loss_op(interpreter& r, bool softmax) {
  if (r.has(2) || r.has_attr("ignore_index") || r.attr<std::string>("reduction", "mean") != "mean")
    r.fail("has class weights, ignore_index or a reduction other than mean, which fusegrad's "
           "losses do not take yet");
  return one(softmax ? nn::cross_entropy(r.in(0), r.in(1)) : nn::nll_loss(r.in(0), r.in(1)));
}

// The recurrent layers' checks: one direction, default activations, no clip, layout 0.
inline void plain_recurrence(interpreter& r) {
  if (r.attr<std::string>("direction", "forward") != "forward")
    r.fail("runs backwards or in both directions, which fusegrad does not import yet");
  if (r.has_attr("activations") || r.has_attr("clip") || r.i("layout", 0) != 0 ||
      r.i("input_forget", 0) != 0)
    r.fail("has activations, clip, layout or input_forget other than the defaults");
}
// The initial state (input k) must be absent or zero: fusegrad's recurrences start from zero.
inline void zero_state(interpreter& r, std::size_t k) {
  if (r.has(k) && (!r.readable(k) || r.number_any(k, [](double v) { return v != 0; })))
    r.fail("starts from a state that is not zero; fusegrad's recurrences start from zero");
}
// x [T, B, I] through weights w [1, G H, I] and bias b [1, 2 G H] -> [T, B, G H] (rows in
// `order`, ONNX's gate order mapped to ours), and the recurrent weights and bias in that order.
struct projected {
  var xp, w_hh, b_hh;
};
inline projected project(interpreter& r, const std::vector<std::int64_t>& order, index_t H) {
  const var x = r.in(0);
  const index_t T = x.shape()[0], B = x.shape()[1], I = x.shape()[2];
  const index_t G = index_t(order.size()) * H;
  std::vector<std::int64_t> rows;
  for (std::int64_t k : order)
    for (index_t j = 0; j < H; ++j)
      rows.push_back(k * std::int64_t(H) + std::int64_t(j));
  const var perm = constant_ints(rows);
  const var w = index_select(reshape(r.in(1), {G, I}), 0, perm);
  const var rw = index_select(reshape(r.in(2), {G, H}), 0, perm);
  var wb = var::zeros({G}, x.dtype()), rb = var::zeros({G}, x.dtype());
  if (r.has(3)) {
    const var b = reshape(r.in(3), {2 * G});
    wb = index_select(slice(b, 0, 0, G), 0, perm);
    rb = index_select(slice(b, 0, G, 2 * G), 0, perm);
  }
  return {reshape(nn::linear(reshape(x, {T * B, I}), w, wb), {T, B, G}), rw, rb};
}
inline std::vector<index_t> lengths(interpreter& r) {
  if (!r.has(4))
    return {};
  const std::vector<std::int64_t> v = r.ints(4);
  return std::vector<index_t>(v.begin(), v.end());
}

// ONNX's LSTM (gates i, o, f, c) as fusegrad's whole-sequence LSTM (i, f, g, o).
inline std::vector<var> lstm_op(interpreter& r) {
  plain_recurrence(r);
  if (r.has(7))
    r.fail("has peephole weights, which fusegrad's LSTM has not");
  zero_state(r, 5);
  zero_state(r, 6);
  const index_t H = index_t(r.i("hidden_size", 0)), T = r.in(0).shape()[0],
                B = r.in(0).shape()[1];
  const projected p = project(r, {0, 2, 3, 1}, H);
  const var seq = nn::detail::lstm_sequence(p.xp, p.w_hh, p.b_hh, lengths(r));
  const var last = slice(seq, 0, T, T + 1);
  return {reshape(slice(slice(seq, 0, 0, T), 2, 0, H), {T, 1, B, H}),
          reshape(slice(last, 2, 0, H), {1, B, H}), reshape(slice(last, 2, H, 2 * H), {1, B, H})};
}

// ONNX's GRU (gates z, r, h; as PyTorch exports it, linear_before_reset = 1), step by step.
inline std::vector<var> gru_op(interpreter& r) {
  plain_recurrence(r);
  if (r.i("linear_before_reset", 0) != 1)
    r.fail("applies its reset gate before the linear map (linear_before_reset = 0), which "
           "fusegrad's GRU does not");
  zero_state(r, 5);
  const index_t H = index_t(r.i("hidden_size", 0)), T = r.in(0).shape()[0],
                B = r.in(0).shape()[1];
  const projected p = project(r, {1, 0, 2}, H);  // ours: r, z, n
  const std::vector<index_t> len = lengths(r);
  if (!len.empty() && index_t(len.size()) != B)
    r.fail(dynamic::text("gives ", len.size(), " sequence lengths for a batch of ", B));
  var h = var::zeros({B, H}, p.xp.dtype());
  std::vector<var> ys;
  for (index_t t = 0; t < T; ++t) {
    const var xt = select(p.xp, 0, t), hp = nn::linear(h, p.w_hh, p.b_hh);
    const var rg = sigmoid(slice(xt, 1, 0, H) + slice(hp, 1, 0, H));
    const var z = sigmoid(slice(xt, 1, H, 2 * H) + slice(hp, 1, H, 2 * H));
    const var n = tanh(slice(xt, 1, 2 * H, 3 * H) + rg * slice(hp, 1, 2 * H, 3 * H));
    const var next = (1.0 - z) * n + z * h;
    if (len.empty()) {
      h = next;
      ys.push_back(h);
      continue;
    }
    var on = var::empty({B, 1}, h.dtype());  // 1 for the sequences still running
    for (index_t b = 0; b < B; ++b)
      on.set(b, len[std::size_t(b)] > t ? 1.0 : 0.0);
    h = where(on, next, h);
    ys.push_back(next * on);
  }
  return {reshape(stack(ys, 0), {T, 1, B, H}), reshape(h, {1, B, H})};
}

inline std::vector<var> identity_op(interpreter& r) { return one(r.in(0)); }
// Inference: the identity; a Dropout in training mode would draw.
inline std::vector<var> dropout_op(interpreter& r) {
  if (r.has(2) && (!r.readable(2) || r.number(2) != 0))
    r.fail("is in training mode; fusegrad imports a Dropout for inference");
  return one(r.in(0));
}
inline std::vector<var> reciprocal_op(interpreter& r) { return one(1.0 / r.in(0)); }
inline std::vector<var> not_op(interpreter& r) { return one(r.in(0) == 0.0); }
inline std::vector<var> nonzero_op(interpreter& r) { return one(transpose(nonzero(r.in(0)))); }
inline std::vector<var> tile_op(interpreter& r) {
  const std::vector<std::int64_t> reps = r.ints(1);
  return one(repeat(r.in(0), std::vector<index_t>(reps.begin(), reps.end())));
}
inline std::vector<var> gather_elements_op(interpreter& r) {
  const var x = r.in(0);
  return one(gather(x, axis(r, r.i("axis", 0), x.rank()), r.in(1).to(dtype::int64)));
}

inline const std::map<std::string, interpreter::op_fn, std::less<>>& interpreter::ops() {
  static const std::map<std::string, op_fn, std::less<>> table = {
      {"Identity", identity_op},
      {"Dropout", dropout_op},
      {"Relu", unary<relu>},
      {"Sigmoid", unary<sigmoid>},
      {"Tanh", unary<tanh>},
      {"Exp", unary<exp>},
      {"Log", unary<log>},
      {"Sqrt", unary<sqrt>},
      {"Abs", unary<abs>},
      {"Erf", unary<erf>},
      {"Sin", unary<sin>},
      {"Cos", unary<cos>},
      {"Softplus", unary<softplus>},
      {"Neg", [](interpreter& r) { return one(-r.in(0)); }},
      {"Reciprocal", reciprocal_op},
      {"Add", binary<ops::add_op>},
      {"Sub", binary<ops::sub_op>},
      {"Mul", binary<ops::mul_op>},
      {"Div", binary<ops::div_op>},
      {"Pow", binary<ops::pow_op>},
      {"Max", variadic<ops::max_op>},
      {"Min", variadic<ops::min_op>},
      {"Sum", variadic<ops::add_op>},
      {"Equal", binary<ops::equal_op>},
      {"Less", binary<ops::less_op>},
      {"LessOrEqual", binary<ops::less_equal_op>},
      {"Greater", binary<ops::greater_op>},
      {"GreaterOrEqual", binary<ops::greater_equal_op>},
      {"Not", not_op},
      {"Where", where_op},
      {"Clip", clip_op},
      {"Cast", cast_op},
      {"Constant", constant_op},
      {"ConstantOfShape", constant_of_shape_op},
      {"Range", range_op},
      {"Shape", shape_op},
      {"Reshape", reshape_op},
      {"Flatten", flatten_op},
      {"Unsqueeze", unsqueeze_op},
      {"Squeeze", squeeze_op},
      {"Transpose", transpose_op},
      {"Gather", gather_op},
      {"GatherElements", gather_elements_op},
      {"ScatterElements", scatter_op},
      {"Slice", slice_op},
      {"Split", split_op},
      {"Concat", concat_op},
      {"Expand", expand_op},
      {"Tile", tile_op},
      {"Pad", pad_op},
      {"NonZero", nonzero_op},
      {"MatMul", matmul_op},
      {"Gemm", gemm_op},
      {"Conv", conv_op},
      {"MaxPool", pool_op<true>},
      {"AveragePool", pool_op<false>},
      {"Softmax", softmax_op},
      {"LogSoftmax", log_softmax_op},
      {"LayerNormalization", layer_norm_op},
      {"BatchNormalization", batch_norm_op},
      {"ReduceSum", reduce_op<ops::sum_red>},
      {"ReduceMean", reduce_op<ops::mean_red>},
      {"ReduceProd", reduce_op<ops::prod_red>},
      {"ReduceMax", reduce_op<ops::max_red>},
      {"ReduceMin", reduce_op<ops::min_red>},
      {"ReduceLogSumExp", reduce_op<ops::logsumexp_red>},
      {"ArgMax", arg_op<true>},
      {"ArgMin", arg_op<false>},
      {"TopK", topk_op},
      {"CumSum", cumsum_op},
      {"NegativeLogLikelihoodLoss", [](interpreter& r) { return loss_op(r, false); }},
      {"SoftmaxCrossEntropyLoss", [](interpreter& r) { return loss_op(r, true); }},
      {"LSTM", lstm_op},
      {"GRU", gru_op},
  };
  return table;
}

}  // namespace detail::onnx

// An ONNX model (the bytes of a .onnx file; `what` names it in errors) as a graph traced from
// its nodes. Its float initializers become parameters (requiring a gradient), but for the
// running statistics of a BatchNormalization, and its other initializers constants; nodes computing from constants only (shape arithmetic) are folded.
// Inputs take the extents the file gives, or options.input_shapes for symbolic ones. A node
// fusegrad cannot run is refused, naming the node and why; a malformed file is a format_error.
inline onnx_model from_onnx(std::string_view bytes, const std::string& what = "ONNX model",
                            const onnx_import_options& options = {}) {
  namespace on = detail::onnx;
  const on::model_proto m = on::read_model(bytes, what);
  onnx_model out;
  on::interpreter run(what);
  std::set<std::string> buffers;  // a BatchNormalization's running statistics: not trained
  for (const on::node_proto& n : m.nodes)
    if (n.op == "BatchNormalization")
      for (std::size_t k = 3; k < std::min<std::size_t>(n.in.size(), 5); ++k)
        buffers.insert(n.in[k]);
  for (const auto& [name, v] : m.initializers) {
    if (is_floating(v.dtype()) && !buffers.count(name)) {
      var p = v;
      p.requires_grad(true);
      out.named_parameters.emplace_back(name, p);
      run.set_parameter(name, p);
    } else {
      run.set(name, v, true);
    }
  }
  std::vector<var> examples;
  for (const on::value_proto& in : m.inputs) {
    extents e = extents::of_rank(in.dims.size());
    const auto given = options.input_shapes.find(in.name);
    if (given != options.input_shapes.end()) {
      e = given->second;
    } else {
      for (std::size_t a = 0; a < in.dims.size(); ++a)
        if (in.dims[a] < 0)
          throw std::invalid_argument(dynamic::text(
              "fg::io::load_onnx(): ", what, ": input '", in.name, "' has a symbolic axis ", a,
              "; give its extents in onnx_import_options::input_shapes"));
      std::string why;
      const std::optional<extents> checked = on::checked_extents(in.dims, why);
      if (!checked)
        throw format_error(dynamic::text(what, ": input '", in.name, "' has ", why));
      e = *checked;
    }
    examples.push_back(var::zeros(e, in.type));
    out.input_names.push_back(in.name);
  }
  for (const on::value_proto& o : m.outputs)
    out.output_names.push_back(o.name);
  out.graph = dynamic::trace_span(false, examples, [&](std::span<const var> in) {
    for (std::size_t k = 0; k < in.size(); ++k)
      run.set(m.inputs[k].name, in[k], false);
    for (const on::node_proto& n : m.nodes)
      run.run(n);
    std::vector<var> results;
    for (const on::value_proto& o : m.outputs)
      results.push_back(run.get(o.name));
    return results;
  });
  return out;
}

// Reads an ONNX file (from_onnx of its bytes).
inline onnx_model load_onnx(const std::string& path, const onnx_import_options& options = {}) {
  const std::vector<char> bytes = detail::read_file(path, "fg::io::load_onnx()");
  return from_onnx(std::string_view(bytes.data(), bytes.size()), "'" + path + "'", options);
}

}  // namespace fg::io

FG_DIAGNOSTICS_END
