// fusegrad/io/freeze.hpp — a traced graph frozen into a C++ header for firmware (fg::freeze): the
// model as an fg::static_nn type with static shapes, its weights as constexpr arrays, so that a
// build with no heap and no exceptions runs it (and can train it further on the device)
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic.hpp"
#include "fusegrad/expr/functions.hpp"
#include "fusegrad/io/file.hpp"

#include <charconv>
#include <cmath>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

FG_DIAGNOSTICS_BEGIN

namespace fg {

struct freeze_options {
  // The namespace the header declares its names in.
  std::string name_space = "frozen_model";
};

namespace detail::freezing {

[[noreturn]] inline void refuse(const std::string& why) {
  throw std::invalid_argument(
      "fg::freeze(): " + why +
      "; a frozen graph is a chain of what fg::static_nn has: linear layers, 2-D convolutions "
      "and pools, flatten, and unary ops");
}

// The op struct (fg::ops::<struct>) of each unary op of the table, by its graph name.
inline const std::map<std::string, std::string, std::less<>>& unary_structs() {
  static const std::map<std::string, std::string, std::less<>> m = {
#define FG_FREEZE_UNARY(fn, op_type) {ops::op_type::name, #op_type},
      FG_UNARY_FUNCTIONS(FG_FREEZE_UNARY)
#undef FG_FREEZE_UNARY
  };
  return m;
}

// A number as a C++ literal that reads back to the same bits: hexadecimal, with the float
// suffix for float32.
inline std::string literal(double v, bool single) {
  if (!std::isfinite(v))
    refuse("a weight is not finite");
  char buf[64];
  char* p = buf;
  if (std::signbit(v)) {
    *p++ = '-';
    v = -v;
  }
  *p++ = '0';
  *p++ = 'x';
  const auto r = single ? std::to_chars(p, buf + sizeof buf, float(v), std::chars_format::hex)
                        : std::to_chars(p, buf + sizeof buf, v, std::chars_format::hex);
  return std::string(buf, r.ptr) + (single ? "f" : "");
}

// `values` (row-major) as `inline constexpr T name[n] = {...};`, eight to a line.
inline void array(std::ostream& out, const char* type, const std::string& name, const var& values,
                  bool single) {
  const var v = values.to(dtype::float64);
  const double* p = v.data<double>();
  out << "inline constexpr " << type << " " << name << "[" << v.size() << "] = {";
  for (index_t k = 0; k < v.size(); ++k)
    out << (k % 8 ? " " : "\n    ") << literal(p[k], single) << (k + 1 < v.size() ? "," : "");
  out << "};\n";
}

}  // namespace detail::freezing

// The header fg::freeze writes, as a string.
inline std::string freeze_source(const graph& g, const freeze_options& o = {}) {
  namespace fz = detail::freezing;
  if (g.inputs().size() != 1 || g.outputs().size() != 1)
    fz::refuse(dynamic::text("the graph has ", g.inputs().size(), " inputs and ",
                             g.outputs().size(), " outputs, not one of each"));
  const graph::value& in = g.values()[std::size_t(g.inputs()[0])];
  if (in.type != dtype::float32 && in.type != dtype::float64)
    fz::refuse(dynamic::text("the input is ", dtype_name(in.type), ", not float32 or float64"));
  const bool single = in.type == dtype::float32;
  const char* type = single ? "float" : "double";
  std::map<int, var> captured;
  for (const graph::capture& c : g.captures())
    captured[c.id] = c.tensor;

  std::vector<std::string> layers;
  std::ostringstream weights, load;
  int cur = g.inputs()[0];
  const index_t batch = in.shape.rank() ? in.shape[0] : 0;
  int params = 0;
  // The layer's parameters as arrays, and load()'s lines that copy them into layer k.
  auto parameters = [&](const var& w, const var& b, const char* what) {
    const std::size_t k = layers.size() - 1;
    weights << "// layer " << k << ": " << what << "\n";
    fz::array(weights, type, dynamic::text("weight_", params), w, single);
    fz::array(weights, type, dynamic::text("bias_", params), b, single);
    load << "  for (fg::index_t i = 0; i < " << w.size() << "; ++i)\n    m.layer<" << k
         << ">().weight[i] = weight_" << params << "[i];\n"
         << "  for (fg::index_t i = 0; i < " << b.size() << "; ++i)\n    m.layer<" << k
         << ">().bias[i] = bias_" << params << "[i];\n";
    ++params;
  };
  auto tensor_type = [&](const extents& e) {
    std::string t = dynamic::text("fg::shape<");
    for (std::size_t a = 0; a < e.rank(); ++a)
      t += dynamic::text(a ? ", " : "", e[a]);
    return t + ">";
  };
  auto weights_of = [&](const graph::step& s, index_t n_out) {
    const auto w = captured.find(s.in[1]);
    const auto b = s.in[2] < 0 ? captured.end() : captured.find(s.in[2]);
    if (w == captured.end() || (s.in[2] >= 0 && b == captured.end()))
      fz::refuse("the weights of '" + s.op + "' are computed, not parameters");
    return std::pair{w->second, b == captured.end() ? var::zeros({n_out}, in.type) : b->second};
  };
  for (const graph::step& s : g.steps()) {
    const graph::value& out = g.values()[std::size_t(s.out.at(0))];
    const extents& now = g.values()[std::size_t(cur)].shape;
    if (s.in.empty() || s.in[0] != cur)
      fz::refuse("the step '" + s.op + "' does not continue the chain from the input");
    if (s.op == "reshape") {
      if (out.shape.rank() != 2 || out.shape[0] != batch)
        fz::refuse("a reshape makes " + out.shape.str() + ", not [batch, features]");
      if (now.rank() != 2)
        layers.push_back("fg::static_nn::flatten");
    } else if (s.op == "linear") {
      if (now.rank() != 2)
        fz::refuse("a linear layer takes " + now.str() + ", not [batch, features]");
      const index_t n_out = out.shape[1], n_in = now[1];
      const auto [w, b] = weights_of(s, n_out);
      layers.push_back(dynamic::text("fg::static_nn::dense<", type, ", ", n_in, ", ", n_out, ">"));
      // fg::nn's weight is [out, in] (x W^T); fg::static_nn's is [in, out] (x W).
      parameters(transpose(w), b, dynamic::text("dense ", n_in, " -> ", n_out).c_str());
    } else if (s.op == "conv2d") {
      const auto [w, b] = weights_of(s, out.shape[1]);
      layers.push_back(dynamic::text("fg::static_nn::conv2d<", type, ", ", tensor_type(now), ", ",
                                     w.shape()[0], ", ", w.shape()[2], ", ", w.shape()[3], ", ",
                                     s.attrs.i(0), ", ", s.attrs.i(1), ">"));
      parameters(w, b, dynamic::text("conv2d ", w.shape().str()).c_str());
    } else if (s.op == "max_pool2d" || s.op == "avg_pool2d") {
      const std::int64_t k = s.attrs.i(0), stride = s.attrs.i(1) ? s.attrs.i(1) : k;
      layers.push_back(dynamic::text("fg::static_nn::", s.op, "<", type, ", ", tensor_type(now),
                                     ", ", k, ", ", stride, ">"));
    } else if (const auto u = fz::unary_structs().find(s.op); u != fz::unary_structs().end()) {
      layers.push_back("fg::static_nn::activation<fg::ops::" + u->second + ">");
    } else {
      fz::refuse("the graph's op '" + s.op + "' has no fg::static_nn counterpart");
    }
    cur = s.out[0];
  }
  if (layers.empty() || cur != g.outputs()[0])
    fz::refuse("the graph's output is not the end of a chain of layers");
  const graph::value& result = g.values()[std::size_t(cur)];
  if (in.shape.rank() < 2 || result.shape.rank() != 2)
    fz::refuse("the input is " + in.shape.str() + " and the output " + result.shape.str() +
               "; a frozen model maps [batch, ...] to [batch, outputs]");

  std::ostringstream h;
  h << "// Frozen by fg::freeze() from a traced fusegrad graph: a static-shape fg::static_nn "
       "model\n// and its weights (exact: hexadecimal literals). Needs no heap and no "
       "exceptions.\n"
    << "//   " << o.name_space << "::model m; " << o.name_space << "::load(m);\n"
    << "//   " << o.name_space << "::output y = m(x);  // x: " << o.name_space << "::input\n"
    << "// The batch is the one traced. A model of dense layers and activations trains further\n"
    << "// with fg::static_nn::trainer; convolutions and pools run inference only.\n"
    << "#pragma once\n\n#include <fusegrad/static_nn.hpp>\n\nnamespace " << o.name_space
    << " {\n\n";
  h << "inline constexpr fg::index_t batch = " << batch << ";\n";
  h << "using model = fg::static_nn::sequential<";
  for (std::size_t k = 0; k < layers.size(); ++k)
    h << (k ? ",\n                                       " : "") << layers[k];
  h << ">;\n";
  h << "using input = fg::tensor<" << type << ", " << tensor_type(in.shape) << ">;\n";
  h << "using output = fg::tensor<" << type << ", " << tensor_type(result.shape) << ">;\n\n";
  h << weights.str() << "\n// Sets m's parameters to the frozen weights.\n"
    << "inline void load(model& m) {\n" << load.str() << "}\n\n}  // namespace " << o.name_space
    << "\n";
  return h.str();
}

// Writes freeze_source(g, o) to `path` (atomically). Refuses, naming why, a graph that is not a
// chain of linear layers, 2-D convolutions and pools, a flatten and unary ops from one
// [batch, ...] input to a [batch, outputs] output.
inline void freeze(const graph& g, const std::string& path, const freeze_options& o = {}) {
  const std::string text = freeze_source(g, o);
  io::detail::write_atomically(path, "fg::freeze()", [&](std::ostream& out) { out << text; });
}

}  // namespace fg

FG_DIAGNOSTICS_END
