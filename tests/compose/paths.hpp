// tests/compose/paths.hpp — running one tree on each path of the library: what a path returns,
// fg::var (fused and fg::no_fusion) by interpreting the tree, and the registry the generated
// static-path translation units fill
// SPDX-License-Identifier: MIT
#pragma once

#include "tree.hpp"
#include "variants.hpp"

#include <fusegrad/dynamic.hpp>
#include <fusegrad/fusegrad.hpp>

#include <map>
#include <string>
#include <vector>

namespace compose {

// tree.hpp lists the op table by hand (its reference must not share the library's formulas): an
// op added to ops/*.hpp must get a case there, and here, before this test builds.
static_assert(unary_count == fg::ops::unary_ops::size &&
                  binary_count == fg::ops::binary_ops::size + fg::ops::comparison_ops::size &&
                  reduction_count == fg::ops::reductions::size,
              "tests/compose: the op table changed; give the new op a case in tree.hpp's "
              "generator and reference and in paths.hpp's interpreter");

// A path's value of the tree and its gradient with respect to every leaf tensor the tree reads
// (in the order of tree::used_leaves()).
struct result {
  double value = 0;
  std::vector<std::vector<double>> grads;
};

// ---------------------------------------------------------------------------------------------
// fg::var: the tree's ops called one by one, as a define-by-run program would.

class var_interpreter {
 public:
  var_interpreter(const tree& t, const std::vector<array>& in, fg::dtype type)
      : t_(t), type_(type) {
    for (const int l : t.used_leaves()) {
      const array& a = in[std::size_t(l)];
      fg::extents e = fg::extents::of_rank(a.shape.size());
      for (std::size_t k = 0; k < a.shape.size(); ++k)
        e[k] = a.shape[k];
      fg::var v = fg::var::empty(e, type);
      for (std::size_t i = 0; i < a.v.size(); ++i)
        v.set(fg::index_t(i), double(a.v[i]));
      v.requires_grad(true);
      leaves_[l] = v;
    }
  }
  result run() {
    fg::var y = eval(t_.root);
    result r;
    r.value = y.item();
    y.backward();
    for (const int l : t_.used_leaves()) {
      const fg::var g = leaves_[l].grad();
      std::vector<double> out(std::size_t(leaves_[l].size()), 0.0);
      if (g.defined())
        for (std::size_t i = 0; i < out.size(); ++i)
          out[i] = g.at(fg::index_t(i));
      r.grads.push_back(std::move(out));
    }
    return r;
  }

 private:
  static fg::extents to_extents(const dims& d) {
    fg::extents e = fg::extents::of_rank(d.size());
    for (std::size_t k = 0; k < d.size(); ++k)
      e[k] = d[k];
    return e;
  }
  static fg::var unary_op(int op, const fg::var& x) {
    switch (op) {
      case neg:
        return -x;
      case abs_:
        return fg::abs(x);
      case square:
        return fg::square(x);
      case sqrt_:
        return fg::sqrt(x);
      case exp_:
        return fg::exp(x);
      case log_:
        return fg::log(x);
      case log1p_:
        return fg::log1p(x);
      case expm1_:
        return fg::expm1(x);
      case sin_:
        return fg::sin(x);
      case cos_:
        return fg::cos(x);
      case tanh_:
        return fg::tanh(x);
      case sigmoid:
        return fg::sigmoid(x);
      case relu:
        return fg::relu(x);
      case softplus:
        return fg::softplus(x);
      case erf_:
        return fg::erf(x);
    }
    throw std::logic_error("compose: unknown unary op");
  }
  // Numbers stay numbers (the var overloads taking a double), as a user writes them.
  template <class A, class B> static fg::var binary_op(int op, const A& a, const B& b) {
    switch (op) {
      case add:
        return a + b;
      case sub:
        return a - b;
      case mul:
        return a * b;
      case div_:
        return a / b;
      case pow_:
        return fg::pow(a, b);
      case minimum:
        return fg::minimum(a, b);
      case maximum:
        return fg::maximum(a, b);
      case less:
        return a < b;
      case less_equal:
        return a <= b;
      case greater:
        return a > b;
      case greater_equal:
        return a >= b;
      case equal:
        return fg::equal(a, b);
      case not_equal:
        return fg::not_equal(a, b);
    }
    throw std::logic_error("compose: unknown binary op");
  }
  static fg::var reduction(int op, const fg::var& x, std::initializer_list<int> axes, bool keep) {
    switch (op) {
      case r_sum:
        return fg::sum(x, axes, keep);
      case r_mean:
        return fg::mean(x, axes, keep);
      case r_prod:
        return fg::prod(x, axes, keep);
      case r_max:
        return fg::max(x, axes, keep);
      case r_min:
        return fg::min(x, axes, keep);
      case r_logsumexp:
        return fg::logsumexp(x, axes, keep);
    }
    throw std::logic_error("compose: unknown reduction");
  }
  fg::var reduce(const node& nd, const fg::var& x) {
    const std::size_t r = x.rank();
    if (nd.axes == (1 << r) - 1 && !nd.keep)
      return reduction(nd.op, x, {}, false);
    switch (nd.axes) {  // rank 2 here: one axis (rank-1 and 0-d trees reduce every axis)
      case 1:
        return reduction(nd.op, x, {0}, nd.keep);
      case 2:
        return reduction(nd.op, x, {1}, nd.keep);
      default:
        return reduction(nd.op, x, {0, 1}, nd.keep);
    }
  }
  bool is_number(int id) const { return t_.nodes[std::size_t(id)].k == kind::number; }
  double number(int id) const { return t_.nodes[std::size_t(id)].value; }

  fg::var eval(int id) {
    const node& nd = t_.nodes[std::size_t(id)];
    auto kid = [&](int i) { return eval(nd.kids[std::size_t(i)]); };
    switch (nd.k) {
      case kind::leaf:
        return leaves_[nd.leaf];
      case kind::number:
        return fg::var::scalar(nd.value, type_);
      case kind::unary:
        return unary_op(nd.op, kid(0));
      case kind::binary:
        if (is_number(nd.kids[0]))
          return binary_op(nd.op, number(nd.kids[0]), kid(1));
        if (is_number(nd.kids[1]))
          return binary_op(nd.op, kid(0), number(nd.kids[1]));
        return binary_op(nd.op, kid(0), kid(1));
      case kind::where: {
        // A number operand of where becomes a 0-d var.
        return fg::where(kid(0), kid(1), kid(2));
      }
      case kind::reduce:
        return reduce(nd, kid(0));
      case kind::transpose:
        return fg::transpose(kid(0));
      case kind::reshape:
        return fg::reshape(kid(0), to_extents(nd.shape));
      case kind::matmul:
        return fg::matmul(kid(0), kid(1));
    }
    throw std::logic_error("compose: unknown node");
  }

  const tree& t_;
  fg::dtype type_;
  std::map<int, fg::var> leaves_;
};

// ---------------------------------------------------------------------------------------------
// The static path: generate.cpp writes, per tree, a function that builds the tree's expression
// over tensors of the leaf extents (static ones, or fg::dyn) and differentiates it with one of
// the entry points; the runner looks it up by tree index.

using static_fn = result (*)(static_variant, const std::vector<array>&);
struct compiled_tree {
  static_fn run;
  const char* expression;  // as printed when generated: a stale build shows as a difference
};
// Filled by the generated translation units (and the shrinker's): tree index -> function.
std::map<std::size_t, compiled_tree>& static_registry();
struct register_static {
  register_static(std::size_t index, static_fn f, const char* expression) {
    static_registry()[index] = {f, expression};
  }
};

// Helpers the generated functions call.
template <class Tensor> void fill(Tensor& x, const array& a) {
  for (std::size_t i = 0; i < a.v.size(); ++i)
    x[fg::index_t(i)] = typename Tensor::value_type(a.v[i]);
}
template <class Tensor> std::vector<double> to_vector(const Tensor& g) {
  std::vector<double> v(std::size_t(g.size()));
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = double(g[fg::index_t(i)]);
  return v;
}
inline fg::var to_var(const array& a, fg::dtype type) {
  fg::var v = fg::var::empty(fg::extents{fg::index_t(a.v.size())}, type);
  for (std::size_t i = 0; i < a.v.size(); ++i)
    v.set(fg::index_t(i), double(a.v[i]));
  v.requires_grad(true);
  return v;
}

}  // namespace compose
