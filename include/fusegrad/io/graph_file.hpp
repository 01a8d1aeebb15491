// fusegrad/io/graph_file.hpp — a traced graph and its tensors in one file (fg::io::save_graph,
// fg::io::load_graph): a safetensors file whose metadata holds the graph as JSON, loadable by a
// program that does not have the function that was traced
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic.hpp"
#include "fusegrad/io/safetensors.hpp"
#include "fusegrad/nn/activation.hpp"
#include "fusegrad/nn/conv2d.hpp"
#include "fusegrad/nn/dropout.hpp"
#include "fusegrad/nn/embedding.hpp"
#include "fusegrad/nn/linear.hpp"
#include "fusegrad/nn/loss.hpp"
#include "fusegrad/nn/normalization.hpp"
#include "fusegrad/nn/pool.hpp"
#include "fusegrad/nn/recurrent.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

FG_DIAGNOSTICS_BEGIN

namespace fg::io {

// Registers the replay of every op of fg::var and fg::nn, so that a graph loaded from a file
// runs in a program that has traced nothing yet. Each op registers its replay (written beside it)
// when it is first recorded, so this records one call of each, on small tensors; load_graph()
// calls it.
inline void register_graph_ops() {
  static std::once_flag once;
  std::call_once(once, [] {
    generator g(0);
    auto every_op = [&](const var& x) {  // x: float32 [2, 2, 4, 4]
      const var m = reshape(x, {16, 4}), i = var::zeros({16, 4}, dtype::int64),
                i1 = var::zeros({16}, dtype::int64);
      const var v = slice(m, 0, 0, 4);
      std::vector<var> out{abs(x),
                           square(x),
                           sqrt(x),
                           exp(x),
                           log(x),
                           log1p(x),
                           expm1(x),
                           sin(x),
                           cos(x),
                           tanh(x),
                           sigmoid(x),
                           relu(x),
                           softplus(x),
                           erf(x),
                           -x,
                           x + x,
                           x - x,
                           x * x,
                           x / x,
                           pow(x, x),
                           minimum(x, x),
                           maximum(x, x),
                           x<x, x <= x, x>
                               x,
                           x >= x,
                           x == x,
                           x != x,
                           sum(x),
                           mean(x),
                           prod(x),
                           max(x),
                           min(x),
                           logsumexp(x),
                           transpose(m, 0, 1),
                           concat({m, m}, 0),
                           gather(m, 1, i),
                           scatter(m, 1, i, m),
                           scatter(m, 1, i, 1.0),
                           scatter_add(m, 1, i, m),
                           nonzero(m),
                           slice(m, 0, 0, 8, 2),
                           index_select(m, 0, i1),
                           flip(m, {0}),
                           repeat(m, {1, 2}),
                           pad(m, {1, 1}),
                           masked_fill(m, m > 0, 0.0),
                           masked_select(m, m > 0),
                           broadcast_to(v, {2, 4, 4}),
                           where(m > 0, m, m),
                           clamp(m, 0, 1),
                           matmul(v, v),
                           cumsum(m, 0),
                           cumprod(m, 0),
                           argmax(m),
                           argmax(m, 0),
                           argmin(m),
                           argmin(m, 0),
                           sort(m, 0).values,
                           argsort(m, 0),
                           topk(m, 1, 0).values,
                           m.to(dtype::float64),
                           m.detach(),
                           m.to(fg::host),
                           var::rand({2}, g),
                           var::randn({2}, g),
                           var::randint(0, 2, {2}, g),
                           var::randperm(2, g),
                           multinomial(abs(v), 1, false, g),
                           nn::conv2d(x, x, var(), 1, 0),
                           nn::max_pool2d(x, 2),
                           nn::avg_pool2d(x, 2),
                           nn::linear(m, v),
                           nn::embedding(v, i),
                           nn::nll_loss(m, i1),
                           nn::cross_entropy(m, i1),
                           nn::dropout(x, 0.5, g),
                           nn::lstm_cell(m, slice(m, 1, 0, 1)),
                           nn::detail::lstm_sequence(reshape(m, {4, 4, 4}), slice(v, 1, 0, 1),
                                                     reshape(slice(v, 1, 0, 1), {4}), {})};
      nn::detail::blend_running(var::zeros({4}), slice(v, 0, 0, 1), 0.1);
      return out;
    };
    (void)trace(every_op, var::ones({2, 2, 4, 4}));
  });
}

namespace detail {

inline constexpr const char* graph_key = "fusegrad.graph";

inline format_error graph_fault(const std::string& path, const std::string& why) {
  return format_error(dynamic::text("fg::io::load_graph(): '", path, "': ", why));
}

inline nlohmann::json attr_json(const dynamic::attr& a, const std::string& path) {
  nlohmann::json j = {{"name", a.name}};
  std::visit(
      [&](const auto& v) {
        using A = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<A, std::int64_t>)
          j["int"] = v;
        else if constexpr (std::is_same_v<A, bool>)
          j["bool"] = v;
        else if constexpr (std::is_same_v<A, double>)
          j["number"] = std::isfinite(v) ? nlohmann::json(v)  // (JSON has no inf or NaN)
                        : std::isnan(v)  ? nlohmann::json("nan")
                                         : nlohmann::json(v > 0 ? "inf" : "-inf");
        else if constexpr (std::is_same_v<A, std::vector<std::int64_t>>)
          j["ints"] = v;
        else if constexpr (std::is_same_v<A, dtype>)
          j["dtype"] = dtype_name(v);
        else if (v == &dynamic::default_generator().g)
          j["generator"] = "default";
        else
          throw std::invalid_argument(dynamic::text(
              "fg::io::save_graph(): '", path,
              "': the graph draws random numbers from a generator of its own (dropout in "
              "training mode, or a draw given a generator), which a file cannot hold; trace "
              "the model in evaluation mode (train(false)), or draw from the default generator"));
      },
      a.value);
  return j;
}

inline dtype dtype_named(const std::string& name, const std::string& path) {
  for (int t = 0; t <= int(dtype::bool_); ++t)
    if (name == dtype_name(dtype(t)))
      return dtype(t);
  throw graph_fault(path, dynamic::text("unknown dtype '", name, "'"));
}

inline dynamic::attr attr_from(const nlohmann::json& j, const std::string& path) {
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string() || j.size() != 2)
    throw graph_fault(path, "an attribute is not {\"name\": ..., \"<kind>\": value}");
  // The name must outlive the graph: names are kept once per process.
  static std::mutex lock;
  static std::set<std::string> names;
  const char* name;
  {
    const std::lock_guard<std::mutex> hold(lock);
    name = names.insert(j["name"].get<std::string>()).first->c_str();
  }
  for (const auto& [kind, v] : j.items()) {
    if (kind == "name")
      continue;
    if (kind == "int" && v.is_number_integer())
      return {name, v.get<std::int64_t>()};
    if (kind == "bool" && v.is_boolean())
      return {name, v.get<bool>()};
    if (kind == "number" && v.is_number())
      return {name, v.get<double>()};
    if (kind == "number" && (v == "inf" || v == "-inf" || v == "nan"))
      return {name, v == "nan"   ? std::numeric_limits<double>::quiet_NaN()
                    : v == "inf" ? std::numeric_limits<double>::infinity()
                                 : -std::numeric_limits<double>::infinity()};
    if (kind == "ints" && v.is_array()) {
      std::vector<std::int64_t> xs;
      for (const auto& x : v) {
        if (!x.is_number_integer())
          throw graph_fault(path, dynamic::text("attribute '", name, "' holds a non-integer"));
        xs.push_back(x.get<std::int64_t>());
      }
      return {name, std::move(xs)};
    }
    if (kind == "dtype" && v.is_string())
      return {name, dtype_named(v.get<std::string>(), path)};
    if (kind == "generator" && v == "default")
      return {name, &dynamic::default_generator().g};
    throw graph_fault(path, dynamic::text("attribute '", name, "' has an unknown kind '", kind,
                                          "' or a value of the wrong type"));
  }
  throw graph_fault(path, "an attribute has no value");
}

// The ids in j (an array of integers), each a value of the graph (or -1 where `none` allows).
inline std::vector<int> ids_from(const nlohmann::json& j, std::size_t values, bool none,
                                 const std::string& path, const char* what) {
  if (!j.is_array())
    throw graph_fault(path, dynamic::text("'", what, "' is not a list of value ids"));
  std::vector<int> ids;
  for (const auto& x : j) {
    if (!x.is_number_integer() || x.get<std::int64_t>() < (none ? -1 : 0) ||
        x.get<std::int64_t>() >= std::int64_t(values))
      throw graph_fault(path, dynamic::text("'", what, "' names a value that is not one of the ",
                                            values, " of the graph: ", x.dump()));
    ids.push_back(x.get<int>());
  }
  return ids;
}

}  // namespace detail

// Writes g to `path` (durably, as save_safetensors): a safetensors file whose tensors are the
// tensors g captured ("capture.<id>": parameters and constants) and whose metadata
// "fusegrad.graph" is the graph as JSON (values, inputs, outputs, steps with their attributes).
// Python's safetensors reads the tensors. A graph that draws from a generator of its own
// (dropout in training mode) is refused: a file cannot hold the generator.
inline void save_graph(const std::string& path, const graph& g) {
  nlohmann::json j = {{"format", 1}};
  nlohmann::json values = nlohmann::json::array(), steps = nlohmann::json::array(),
                 captures = nlohmann::json::array();
  for (const graph::value& v : g.values()) {
    if (v.on_device)
      throw std::invalid_argument(
          dynamic::text("fg::io::save_graph(): '", path,
                        "': the graph was traced on the device; trace it on "
                        "the host to save it"));
    values.push_back({{"dtype", dtype_name(v.type)},
                      {"shape", std::vector<index_t>(v.shape.begin(), v.shape.end())}});
  }
  tensor_map tensors;
  for (const graph::capture& c : g.captures()) {
    captures.push_back({{"id", c.id}, {"parameter", c.tensor.requires_grad()}});
    tensors[dynamic::text("capture.", c.id)] = c.tensor;
  }
  for (const graph::step& s : g.steps()) {
    nlohmann::json attrs = nlohmann::json::array();
    for (const dynamic::attr& a : s.attrs.items())
      attrs.push_back(detail::attr_json(a, path));
    steps.push_back(
        {{"op", s.op}, {"in", s.in}, {"out", s.out}, {"grad", s.grad}, {"attrs", attrs}});
  }
  j["values"] = values;
  j["inputs"] = g.inputs();
  j["outputs"] = g.outputs();
  j["captures"] = captures;
  j["steps"] = steps;
  j["warnings"] = g.warnings();
  save_safetensors(path, tensors, {{detail::graph_key, j.dump()}});
}

// Reads a graph written by save_graph(), checked (a corrupt file throws format_error naming it
// and the fault). Its ops are found by name among every op of fg::var and fg::nn
// (register_graph_ops()); its parameters are new leaves that require a gradient, so the graph
// can be trained further (graph::parameters() gives them to an optimiser).
inline graph load_graph(const std::string& path) {
  register_graph_ops();
  std::map<std::string, std::string> meta;
  tensor_map tensors = load_safetensors(path, &meta);
  const auto found = meta.find(detail::graph_key);
  if (found == meta.end())
    throw detail::graph_fault(path, "no 'fusegrad.graph' in its metadata: not a saved graph");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(found->second);
  } catch (const nlohmann::json::exception& e) {
    throw detail::graph_fault(path, dynamic::text("the graph is not JSON (", e.what(), ")"));
  }
  for (const char* key : {"values", "inputs", "outputs", "captures", "steps", "warnings"})
    if (!j.is_object() || !j.contains(key) || !j[key].is_array())
      throw detail::graph_fault(path, dynamic::text("the graph has no '", key, "' list"));
  if (!j.contains("format") || j["format"] != 1)
    throw detail::graph_fault(path, "the graph's format is not 1 (written by another version?)");
  std::vector<graph::value> values;
  for (const auto& v : j["values"]) {
    if (!v.is_object() || !v.contains("dtype") || !v["dtype"].is_string() || !v.contains("shape") ||
        !v["shape"].is_array() || v["shape"].size() > max_rank)
      throw detail::graph_fault(path, dynamic::text("a value is not {dtype, shape}: ", v.dump()));
    graph::value val;
    val.type = detail::dtype_named(v["dtype"].get<std::string>(), path);
    val.shape = extents::of_rank(v["shape"].size());
    for (std::size_t a = 0; a < v["shape"].size(); ++a) {
      if (!v["shape"][a].is_number_unsigned())
        throw detail::graph_fault(path,
                                  dynamic::text("a value's shape is not extents: ", v.dump()));
      val.shape[a] = v["shape"][a].get<index_t>();
    }
    values.push_back(val);
  }
  const std::size_t n = values.size();
  std::vector<graph::capture> captures;
  for (const auto& c : j["captures"]) {
    if (!c.is_object() || !c.contains("id") || !c.contains("parameter") ||
        !c["parameter"].is_boolean())
      throw detail::graph_fault(path,
                                dynamic::text("a capture is not {id, parameter}: ", c.dump()));
    const int id =
        detail::ids_from(nlohmann::json::array({c["id"]}), n, false, path, "captures")[0];
    const auto t = tensors.find(dynamic::text("capture.", id));
    if (t == tensors.end())
      throw detail::graph_fault(path, dynamic::text("the tensor 'capture.", id, "' is missing"));
    var x = t->second;
    if (x.dtype() != values[std::size_t(id)].type || !(x.shape() == values[std::size_t(id)].shape))
      throw detail::graph_fault(
          path,
          dynamic::text("the tensor 'capture.", id, "' is ", dtype_name(x.dtype()), x.shape().str(),
                        ", the graph says ", dynamic::value_type_text(values[std::size_t(id)])));
    if (c["parameter"].get<bool>())
      x.requires_grad(true);
    captures.push_back({id, x});
  }
  std::vector<graph::step> steps;
  for (const auto& s : j["steps"]) {
    if (!s.is_object() || !s.contains("op") || !s["op"].is_string() || !s.contains("in") ||
        !s.contains("out") || !s.contains("grad") || !s["grad"].is_boolean() ||
        !s.contains("attrs") || !s["attrs"].is_array())
      throw detail::graph_fault(
          path, dynamic::text("a step is not {op, in, out, grad, attrs}: ", s.dump()));
    graph::step st;
    st.op = s["op"].get<std::string>();
    st.run = dynamic::op_registry::instance().find(st.op);
    if (!st.run)
      throw detail::graph_fault(path, dynamic::text("the op '", st.op,
                                                    "' is not one fusegrad knows (a newer "
                                                    "version's, or a user's own op)"));
    st.in = detail::ids_from(s["in"], n, true, path, "in");
    st.out = detail::ids_from(s["out"], n, true, path, "out");
    st.grad = s["grad"].get<bool>();
    std::vector<dynamic::attr> attrs;
    for (const auto& a : s["attrs"])
      attrs.push_back(detail::attr_from(a, path));
    st.attrs = dynamic::attr_list(std::move(attrs));
    steps.push_back(std::move(st));
  }
  std::vector<std::string> warnings;
  for (const auto& w : j["warnings"])
    if (w.is_string())
      warnings.push_back(w.get<std::string>());
  return graph::from_parts(std::move(values), std::move(steps), std::move(captures),
                           detail::ids_from(j["inputs"], n, false, path, "inputs"),
                           detail::ids_from(j["outputs"], n, false, path, "outputs"),
                           std::move(warnings));
}

}  // namespace fg::io

FG_DIAGNOSTICS_END
