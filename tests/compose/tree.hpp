// tests/compose/tree.hpp — random expression trees for the composition test: the tree, a seeded
// generator, a C++ printer, an independent reference evaluator and its finite differences
// SPDX-License-Identifier: MIT
//
// A tree is data: the same description is printed as a static expression (generate.cpp writes
// them into translation units), interpreted on fg::var (var_path.hpp), and evaluated here by
// plain loops in long double, which are the reference. Nothing here includes fusegrad.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace compose {

using dims = std::vector<int>;

// The op lists, in the order of ops/unary.hpp, ops/binary.hpp and ops/reduce.hpp.
inline constexpr const char* unary_names[] = {"neg",  "abs",     "square", "sqrt",     "exp",
                                              "log",  "log1p",   "expm1",  "sin",      "cos",
                                              "tanh", "sigmoid", "relu",   "softplus", "erf"};
enum unary : int {
  neg,
  abs_,
  square,
  sqrt_,
  exp_,
  log_,
  log1p_,
  expm1_,
  sin_,
  cos_,
  tanh_,
  sigmoid,
  relu,
  softplus,
  erf_,
  unary_count
};
inline constexpr const char* binary_names[] = {"+", "-",  "*", "/",  "pow",   "minimum",  "maximum",
                                               "<", "<=", ">", ">=", "equal", "not_equal"};
enum binary : int {
  add,
  sub,
  mul,
  div_,
  pow_,
  minimum,
  maximum,
  less,
  less_equal,
  greater,
  greater_equal,
  equal,
  not_equal,
  binary_count
};
inline constexpr int first_comparison = less;
inline constexpr const char* reduction_names[] = {"sum", "mean", "prod", "max", "min", "logsumexp"};
enum reduction : int { r_sum, r_mean, r_prod, r_max, r_min, r_logsumexp, reduction_count };

enum class kind { leaf, number, unary, binary, where, reduce, transpose, reshape, matmul };

struct node {
  kind k = kind::leaf;
  int op = 0;         // unary, binary or reduction index
  int leaf = 0;       // leaf tensor index
  double value = 0;   // a number
  int axes = 0;       // reduce: bit k set = reduce axis k; all bits of the rank = every axis
  bool keep = false;  // reduce: keepdim
  dims shape;         // the node's extents
  std::vector<int> kids;
};

// The leaf tensors a tree may read, by name and extents (M, N chosen per tree): full [M, N] and
// [N, M] ones (read directly, transposed and reshaped), and the broadcast shapes [M, 1], [1, N],
// [N], [M] and [].
struct leaf_tensor {
  const char* name;
  dims shape;
};

struct tree {
  std::uint64_t seed = 0;
  int m = 2, n = 3;
  std::vector<node> nodes;
  int root = -1;
  std::vector<leaf_tensor> leaves;
  bool kernel_form =
      false;  // elementwise over same-shaped leaves under one sum: fg::kernel runs it

  // The leaf tensors reachable from the root, in index order.
  std::vector<int> used_leaves() const {
    std::vector<int> u;
    std::function<void(int)> walk = [&](int id) {
      const node& nd = nodes[std::size_t(id)];
      if (nd.k == kind::leaf && std::find(u.begin(), u.end(), nd.leaf) == u.end())
        u.push_back(nd.leaf);
      for (int k : nd.kids)
        walk(k);
    };
    walk(root);
    std::sort(u.begin(), u.end());
    return u;
  }
  int count(int id) const {
    int c = 1;
    for (int k : nodes[std::size_t(id)].kids)
      c += count(k);
    return c;
  }
};

inline int size_of(const dims& d) {
  int s = 1;
  for (int x : d)
    s *= x;
  return s;
}
inline dims broadcast(const dims& a, const dims& b) {
  const std::size_t r = std::max(a.size(), b.size());
  dims out(r);
  for (std::size_t k = 0; k < r; ++k) {
    const int x = k + a.size() >= r ? a[k + a.size() - r] : 1;
    const int y = k + b.size() >= r ? b[k + b.size() - r] : 1;
    out[k] = std::max(x, y);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The generator: a tree of a requested shape, recursively; every child either has the shape
// asked for exactly (`exact`: matmul operands, transposed and reshaped operands) or broadcasts
// to it. Operands of ops with a restricted domain go through an adapter made of ops too
// (sqrt(0.5 + square(u)), log(0.5 + square(u)), pow(0.5 + square(u), v), a / (1 + square(u))).

class generator {
 public:
  explicit generator(std::uint64_t seed) : rng_(seed) { t_.seed = seed; }

  tree make(int depth) {
    t_.m = pick(2, 5);
    t_.n = pick(2, 5);
    if (chance(0.35))
      t_.n = t_.m;  // square: a leaf of [M, N] also reads as [N, M]
    const int m = t_.m, n = t_.n;
    t_.leaves = {{"a", {m, n}}, {"b", {n, m}}, {"c", {m, 1}}, {"d", {1, n}},
                 {"e", {n}},    {"f", {m}},    {"s", {}},     {"a2", {m, n}}};
    if (chance(0.2)) {
      t_.kernel_form = true;
      t_.root = reduce_all(elementwise_only(depth), r_sum);
      return t_;
    }
    // The root: a scalar, from every-axis reductions of 2-d, 1-d or 0-d trees.
    t_.root = scalar_root(depth);
    return t_;
  }

 private:
  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  double number() {
    static constexpr double values[] = {0.5, 0.75, 1.5, 2.0, -0.5, -1.25, 3.0};
    return values[pick(0, 6)];
  }

  int add(node nd) {
    t_.nodes.push_back(std::move(nd));
    return int(t_.nodes.size()) - 1;
  }
  const dims& shape(int id) const { return t_.nodes[std::size_t(id)].shape; }

  int leaf(int i) {
    node nd;
    nd.k = kind::leaf;
    nd.leaf = i;
    nd.shape = t_.leaves[std::size_t(i)].shape;
    return add(nd);
  }
  int num(double v) {
    node nd;
    nd.k = kind::number;
    nd.value = v;
    return add(nd);
  }
  int un(int op, int a) {
    node nd;
    nd.k = kind::unary;
    nd.op = op;
    nd.shape = shape(a);
    nd.kids = {a};
    return add(nd);
  }
  int bin(int op, int a, int b) {
    node nd;
    nd.k = kind::binary;
    nd.op = op;
    nd.shape = broadcast(shape(a), shape(b));
    nd.kids = {a, b};
    return add(nd);
  }
  int where(int c, int a, int b) {
    node nd;
    nd.k = kind::where;
    nd.shape = broadcast(shape(c), broadcast(shape(a), shape(b)));
    nd.kids = {c, a, b};
    return add(nd);
  }
  int red(int op, int a, int axes, bool keep) {
    node nd;
    nd.k = kind::reduce;
    nd.op = op;
    nd.axes = axes;
    nd.keep = keep;
    const dims& in = shape(a);
    for (std::size_t k = 0; k < in.size(); ++k) {
      if (axes & (1 << k)) {
        if (keep)
          nd.shape.push_back(1);
      } else {
        nd.shape.push_back(in[k]);
      }
    }
    nd.kids = {a};
    return add(nd);
  }
  int reduce_all(int a, int op) { return red(op, a, (1 << shape(a).size()) - 1, false); }
  int transpose(int a) {
    node nd;
    nd.k = kind::transpose;
    nd.shape = dims(shape(a).rbegin(), shape(a).rend());
    nd.kids = {a};
    return add(nd);
  }
  int reshape(int a, dims to) {
    node nd;
    nd.k = kind::reshape;
    nd.shape = std::move(to);
    nd.kids = {a};
    return add(nd);
  }
  int matmul(int a, int b) {
    node nd;
    nd.k = kind::matmul;
    nd.shape = {shape(a)[0], shape(b)[1]};
    nd.kids = {a, b};
    return add(nd);
  }

  // u mapped into (0.5, inf): the adapter of log, sqrt and pow's base.
  int positive(int u) { return bin(add_, num(0.5), un(square, u)); }
  static constexpr int add_ = binary::add;

  int scalar_root(int depth) {
    const int kids = chance(0.3) ? 2 : 1;
    int r = -1;
    for (int i = 0; i < kids; ++i) {
      const int which = pick(0, 9);
      const dims in = which < 6 ? dims{t_.m, t_.n} : which < 8 ? dims{t_.n} : dims{t_.m};
      const int op = pick(0, reduction_count - 1);
      const int x = reduce_all(gen(in, depth, true), op);
      r = r < 0 ? x : bin(pick(0, 2), r, x);  // +, -, *
    }
    return r;
  }

  // A tree for fg::kernel: elementwise ops over the two [M, N] leaves and numbers.
  int elementwise_only(int depth) {
    if (depth == 0 || chance(0.2))
      return chance(0.5) ? leaf(0) : leaf(7);
    const int c = pick(0, 9);
    if (c < 4)
      return unary_of(elementwise_only(depth - 1));
    if (c < 8) {
      int x = elementwise_only(depth - 1);
      int y = chance(0.15) ? num(number()) : elementwise_only(depth - 1);
      if (chance(0.5))
        std::swap(x, y);
      if (t_.nodes[std::size_t(x)].k == kind::number && t_.nodes[std::size_t(y)].k == kind::number)
        y = leaf(0);
      return binary_of(x, y);
    }
    const int cmp = pick(first_comparison, binary_count - 1);
    return where(bin(cmp, elementwise_only(depth - 1), elementwise_only(depth - 1)),
                 elementwise_only(depth - 1), elementwise_only(depth - 1));
  }

  int unary_of(int u) {
    const int op = pick(0, unary_count - 1);
    switch (op) {
      case sqrt_:
      case log_:
        return un(op, positive(u));
      case log1p_:
        return un(op, un(square, u));
      default:
        return un(op, u);
    }
  }
  bool is_number(int id) const { return t_.nodes[std::size_t(id)].k == kind::number; }
  // Arithmetic, pow, min, max (comparisons are made where their step is used). A number is a
  // direct operand of +, -, *, min or max, as a user writes `x * 1.5`.
  int binary_of(int x, int y) {
    static constexpr int with_number[] = {add_, sub, mul, minimum, maximum};
    const int op = is_number(x) || is_number(y) ? with_number[pick(0, 4)] : pick(0, maximum);
    switch (op) {
      case div_:
        return bin(div_, x, bin(add_, num(1.0), un(square, y)));
      case pow_:
        return bin(pow_, positive(x), y);
      default:
        return bin(op, x, y);
    }
  }

  // A leaf, possibly through a layout op, of shape `s` (or broadcasting to it unless exact).
  int leaf_for(const dims& s, bool exact) {
    const int m = t_.m, n = t_.n;
    std::vector<std::function<int()>> c;
    // Reads of one tensor through several index maps are what the test is after: b's two views
    // (and a's, when square) are listed twice.
    if (s == dims{m, n}) {
      c.push_back([&] { return leaf(0); });
      c.push_back([&] { return leaf(0); });
      c.push_back([&] { return leaf(7); });
      c.push_back([&] { return transpose(leaf(1)); });
      c.push_back([&] { return transpose(leaf(1)); });
      c.push_back([&] { return reshape(leaf(1), {m, n}); });
      c.push_back([&] { return reshape(leaf(1), {m, n}); });
      c.push_back([&] { return transpose(reshape(leaf(0), {n, m})); });
      if (!exact) {
        c.push_back([&] { return leaf(2); });
        c.push_back([&] { return leaf(3); });
        c.push_back([&] { return leaf(4); });
        c.push_back([&] { return leaf(6); });
        c.push_back([&] { return transpose(transpose(leaf(2))); });
      }
    }
    if (s == dims{n, m}) {
      c.push_back([&] { return leaf(1); });
      c.push_back([&] { return transpose(leaf(0)); });
      c.push_back([&] { return transpose(leaf(0)); });
      c.push_back([&] { return transpose(leaf(7)); });
      c.push_back([&] { return reshape(leaf(0), {n, m}); });
      if (!exact) {
        c.push_back([&] { return transpose(leaf(2)); });
        c.push_back([&] { return transpose(leaf(3)); });
        c.push_back([&] { return leaf(5); });
        c.push_back([&] { return leaf(6); });
      }
    }
    if (s == dims{n}) {
      c.push_back([&] { return leaf(4); });
      c.push_back([&] { return reshape(leaf(3), {n}); });
    }
    if (s == dims{m}) {
      c.push_back([&] { return leaf(5); });
      c.push_back([&] { return reshape(leaf(2), {m}); });
    }
    if (s.empty() || (!exact && s.size() == 1))
      c.push_back([&] { return leaf(6); });
    if (c.empty())
      return -1;
    return c[std::size_t(pick(0, int(c.size()) - 1))]();
  }

  int gen(const dims& s, int depth, bool exact) {
    const int m = t_.m, n = t_.n;
    const bool two = s.size() == 2, one = s.size() == 1;
    const bool has_leaf =
        s.empty() || s == dims{m, n} || s == dims{n, m} || s == dims{n} || s == dims{m};
    if (depth <= 0 || (has_leaf && chance(0.15))) {
      const int l = has_leaf ? leaf_for(s, exact) : -1;
      if (l >= 0)
        return l;
      // [M, M] or [N, N]: only a product makes them.
      const int k = s[0] == m ? n : m;
      return matmul(gen({s[0], k}, 0, true), gen({k, s[1]}, 0, true));
    }
    const int c = pick(0, 99);
    if (c < 25)
      return unary_of(gen(s, depth - 1, exact));
    if (c < 50) {
      int x = gen(s, depth - 1, exact);
      int y = chance(0.15) ? num(number()) : gen(s, depth - 1, false);
      if (chance(0.5))
        std::swap(x, y);
      return binary_of(x, y);
    }
    if (c < 56) {
      const int cmp = pick(first_comparison, binary_count - 1);
      return where(bin(cmp, gen(s, depth - 1, false), gen(s, depth - 1, false)),
                   gen(s, depth - 1, exact), gen(s, depth - 1, false));
    }
    if (c < 59) {  // a comparison as a value: a step, zero gradient
      const int cmp = pick(first_comparison, binary_count - 1);
      return bin(mul, gen(s, depth - 1, exact),
                 bin(cmp, gen(s, depth - 1, false), gen(s, depth - 1, false)));
    }
    if (c < 72) {  // a reduction: keepdim broadcasts back, or a 1-d/0-d result
      const int op = pick(0, reduction_count - 1);
      if (two && !exact) {
        const int axis = pick(0, 1);
        return red(op, gen(s, depth - 1, true), 1 << axis, true);
      }
      if (one) {  // [M, N] or [N, M], reduced over the axis whose extent s[0] is not
        const dims in = chance(0.5) ? dims{m, n} : dims{n, m};
        const int axis = in[1] == s[0] ? 0 : 1;
        return red(op, gen(in, depth - 1, true), 1 << axis, false);
      }
      if (s.empty()) {
        const dims in = chance(0.5) ? dims{m, n} : dims{n};
        return reduce_all(gen(in, depth - 1, true), op);
      }
      return gen(s, depth - 1, exact);
    }
    if (c < 82 && two)  // a transpose of a computed value (materialised), or of a leaf
      return transpose(gen({s[1], s[0]}, depth - 1, true));
    if (c < 88 && two)  // a reshape of a computed value: same count, other extents
      return reshape(gen({s[1], s[0]}, depth - 1, true), s);
    if (c < 94 && two) {
      const int k = chance(0.5) ? m : n;
      return matmul(gen({s[0], k}, depth - 1, true), gen({k, s[1]}, depth - 1, true));
    }
    return unary_of(gen(s, depth - 1, exact));
  }

  std::mt19937_64 rng_;
  tree t_;
};

// ---------------------------------------------------------------------------------------------
// The printer: a tree as the C++ a user would write. `dyn` prints reshapes with run-time
// extents (for tensors of fg::dyn extents).

inline std::string print(const tree& t, int id, bool dyn) {
  const node& nd = t.nodes[std::size_t(id)];
  auto kid = [&](int i) { return print(t, nd.kids[std::size_t(i)], dyn); };
  std::ostringstream o;
  switch (nd.k) {
    case kind::leaf:
      o << t.leaves[std::size_t(nd.leaf)].name;
      break;
    case kind::number:
      o << nd.value;
      if (nd.value == std::floor(nd.value))
        o << ".0";
      break;
    case kind::unary:
      if (nd.op == neg)
        o << "-(" << kid(0) << ")";
      else
        o << "fg::" << unary_names[nd.op] << "(" << kid(0) << ")";
      break;
    case kind::binary:
      if (nd.op <= div_ || (nd.op >= less && nd.op <= greater_equal))
        o << "(" << kid(0) << " " << binary_names[nd.op] << " " << kid(1) << ")";
      else
        o << "fg::" << binary_names[nd.op] << "(" << kid(0) << ", " << kid(1) << ")";
      break;
    case kind::where:
      o << "fg::where(" << kid(0) << ", " << kid(1) << ", " << kid(2) << ")";
      break;
    case kind::reduce: {
      const std::size_t r = t.nodes[std::size_t(nd.kids[0])].shape.size();
      const bool all = nd.axes == (1 << r) - 1 && !nd.keep;
      o << "fg::" << reduction_names[nd.op];
      if (nd.keep)
        o << "<true>";
      o << "(" << kid(0);
      if (!all) {
        o << ", fg::axes<";
        bool first = true;
        for (std::size_t k = 0; k < r; ++k)
          if (nd.axes & (1 << k)) {
            o << (first ? "" : ", ") << k;
            first = false;
          }
        o << ">{}";
      }
      o << ")";
      break;
    }
    case kind::transpose:
      o << "fg::transpose(" << kid(0) << ")";
      break;
    case kind::reshape: {
      o << "fg::reshape<fg::shape<";
      for (std::size_t k = 0; k < nd.shape.size(); ++k)
        o << (k ? ", " : "") << (dyn ? "fg::dyn" : std::to_string(nd.shape[k]));
      o << ">>(" << kid(0);
      if (dyn) {
        o << ", {";
        for (std::size_t k = 0; k < nd.shape.size(); ++k)
          o << (k ? ", " : "") << nd.shape[k];
        o << "}";
      }
      o << ")";
      break;
    }
    case kind::matmul:
      o << "fg::matmul(" << kid(0) << ", " << kid(1) << ")";
      break;
  }
  return o.str();
}
inline std::string print(const tree& t, bool dyn = false) {
  return print(t, t.root, dyn);
}

// ---------------------------------------------------------------------------------------------
// The reference: every node as a dense row-major array, in long double, by plain loops.

using real = long double;
struct array {
  dims shape;
  std::vector<real> v;
};

// The inputs of a tree: one array per leaf tensor, values in [-1, 1] from the tree's seed.
inline std::vector<array> make_inputs(const tree& t) {
  std::mt19937_64 g(t.seed ^ 0x9e3779b97f4a7c15ull);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<array> in;
  for (const auto& l : t.leaves) {
    array a{l.shape, std::vector<real>(std::size_t(size_of(l.shape)))};
    for (auto& x : a.v)
      x = real(u(g));
    in.push_back(std::move(a));
  }
  return in;
}

// Element `flat` of `out` (row-major), read from `a` broadcast to out's extents.
inline real at_broadcast(const array& a, const dims& out, int flat) {
  int idx = 0, stride = 1;
  for (int k = int(out.size()) - 1; k >= 0; --k) {
    const int i = flat % out[std::size_t(k)];
    flat /= out[std::size_t(k)];
    const int ak = k - int(out.size() - a.shape.size());
    if (ak >= 0) {
      const int e = a.shape[std::size_t(ak)];
      idx += (e == 1 ? 0 : i) * stride;
      stride *= e;
    }
  }
  return a.v[std::size_t(idx)];
}

struct evaluation {
  real value = 0;
  real margin = std::numeric_limits<real>::infinity();  // nearest kink of a non-smooth op
  real domain = std::numeric_limits<real>::infinity();  // nearest edge of an op's domain
  real largest = 0;                                     // largest |value| of any node
  bool finite = true;
};

class reference {
 public:
  reference(const tree& t, const std::vector<array>& in) : t_(t), in_(in) {}
  evaluation run() {
    ev_ = {};
    const array r = eval(t_.root);
    ev_.value = r.v[0];
    return ev_;
  }

 private:
  void kink(real d) { ev_.margin = std::min(ev_.margin, std::abs(d)); }
  // How far inside its domain an argument is (log, sqrt and pow's base need x > 0, log1p
  // x > -1, a divisor x != 0).
  void inside(real d) { ev_.domain = std::min(ev_.domain, d); }
  real unary_fn(int op, real x) {
    switch (op) {
      case neg:
        return -x;
      case abs_:
        kink(x);
        return std::abs(x);
      case square:
        return x * x;
      case sqrt_:
        inside(x);
        return std::sqrt(x);
      case exp_:
        return std::exp(x);
      case log_:
        inside(x);
        return std::log(x);
      case log1p_:
        inside(1 + x);
        return std::log1p(x);
      case expm1_:
        return std::expm1(x);
      case sin_:
        return std::sin(x);
      case cos_:
        return std::cos(x);
      case tanh_:
        return std::tanh(x);
      case sigmoid:
        return 1 / (1 + std::exp(-x));
      case relu:
        kink(x);
        return x > 0 ? x : 0;
      case softplus:
        return std::log1p(std::exp(x));
      case erf_:
        return std::erf(x);
    }
    return 0;
  }
  real binary_fn(int op, real a, real b) {
    switch (op) {
      case add:
        return a + b;
      case sub:
        return a - b;
      case mul:
        return a * b;
      case div_:
        inside(std::abs(b));
        return a / b;
      case pow_:
        inside(a);
        return std::pow(a, b);
      case minimum:
        kink(a - b);
        return std::min(a, b);
      case maximum:
        kink(a - b);
        return std::max(a, b);
      case less:
        kink(a - b);
        return a < b;
      case less_equal:
        kink(a - b);
        return a <= b;
      case greater:
        kink(a - b);
        return a > b;
      case greater_equal:
        kink(a - b);
        return a >= b;
      case equal:
        kink(a - b);
        return a == b;
      case not_equal:
        kink(a - b);
        return a != b;
    }
    return 0;
  }
  void note(const array& a) {
    for (real x : a.v) {
      if (!std::isfinite(x))
        ev_.finite = false;
      ev_.largest = std::max(ev_.largest, std::abs(x));
    }
  }
  array eval(int id) {
    array r = eval_node(id);
    note(r);
    return r;
  }
  array eval_node(int id) {
    const node& nd = t_.nodes[std::size_t(id)];
    std::vector<array> k;
    for (int c : nd.kids)
      k.push_back(eval(c));
    array out{nd.shape, std::vector<real>(std::size_t(size_of(nd.shape)))};
    const int n = size_of(nd.shape);
    switch (nd.k) {
      case kind::leaf:
        return in_[std::size_t(nd.leaf)];
      case kind::number:
        out.v = {real(nd.value)};
        return out;
      case kind::unary:
        for (int i = 0; i < n; ++i)
          out.v[std::size_t(i)] = unary_fn(nd.op, k[0].v[std::size_t(i)]);
        return out;
      case kind::binary:
        for (int i = 0; i < n; ++i)
          out.v[std::size_t(i)] =
              binary_fn(nd.op, at_broadcast(k[0], nd.shape, i), at_broadcast(k[1], nd.shape, i));
        return out;
      case kind::where:
        for (int i = 0; i < n; ++i)
          out.v[std::size_t(i)] = at_broadcast(k[0], nd.shape, i) != 0
                                      ? at_broadcast(k[1], nd.shape, i)
                                      : at_broadcast(k[2], nd.shape, i);
        return out;
      case kind::transpose: {
        const dims& s = k[0].shape;
        if (s.size() < 2)
          return k[0];
        for (int i = 0; i < s[0]; ++i)
          for (int j = 0; j < s[1]; ++j)
            out.v[std::size_t(j * s[0] + i)] = k[0].v[std::size_t(i * s[1] + j)];
        return out;
      }
      case kind::reshape:
        out.v = k[0].v;
        return out;
      case kind::matmul: {
        const int rows = k[0].shape[0], inner = k[0].shape[1], cols = k[1].shape[1];
        for (int i = 0; i < rows; ++i)
          for (int j = 0; j < cols; ++j) {
            real s = 0;
            for (int p = 0; p < inner; ++p)
              s += k[0].v[std::size_t(i * inner + p)] * k[1].v[std::size_t(p * cols + j)];
            out.v[std::size_t(i * cols + j)] = s;
          }
        return out;
      }
      case kind::reduce:
        return reduce(nd, k[0]);
    }
    return out;
  }
  // Slices of `a` over the reduced axes, folded per output element.
  array reduce(const node& nd, const array& a) {
    array out{nd.shape, {}};
    const std::size_t r = a.shape.size();
    std::vector<std::vector<real>> slices(std::size_t(size_of(nd.shape)));
    for (int flat = 0; flat < size_of(a.shape); ++flat) {
      int rest = flat, o = 0, stride = 1;
      for (int kk = int(r) - 1; kk >= 0; --kk) {
        const int i = rest % a.shape[std::size_t(kk)];
        rest /= a.shape[std::size_t(kk)];
        if (!(nd.axes & (1 << kk))) {
          o += i * stride;
          stride *= a.shape[std::size_t(kk)];
        }
      }
      slices[std::size_t(o)].push_back(a.v[std::size_t(flat)]);
    }
    for (auto& s : slices) {
      real y = 0;
      switch (nd.op) {
        case r_sum:
        case r_mean:
          for (real x : s)
            y += x;
          if (nd.op == r_mean)
            y /= real(s.size());
          break;
        case r_prod:
          y = 1;
          for (real x : s)
            y *= x;
          break;
        case r_max:
        case r_min: {
          std::vector<real> sorted = s;
          std::sort(sorted.begin(), sorted.end());
          if (nd.op == r_max)
            std::reverse(sorted.begin(), sorted.end());
          y = sorted[0];
          if (sorted.size() > 1)
            kink(sorted[0] - sorted[1]);
          break;
        }
        case r_logsumexp: {
          const real mx = *std::max_element(s.begin(), s.end());
          real acc = 0;
          for (real x : s)
            acc += std::exp(x - mx);
          y = mx + std::log(acc);
          break;
        }
      }
      out.v.push_back(y);
    }
    return out;
  }

  const tree& t_;
  const std::vector<array>& in_;
  evaluation ev_;
};

// Whether the forward pass is a fair test at its inputs: finite, moderate values, every
// argument well inside its op's domain, and every non-smooth op at least 2e-3 from its kink.
inline bool well_posed(const evaluation& e) {
  return e.finite && e.largest < 1e4 && e.margin > 2e-3 && e.domain > 1e-2;
}

// The reference gradient with respect to every leaf tensor: fourth-order central differences of
// the long double evaluation, with step h.
inline std::vector<std::vector<real>> reference_gradient(const tree& t, std::vector<array> in,
                                                         real h = 1e-4L) {
  std::vector<std::vector<real>> g(in.size());
  for (std::size_t l = 0; l < in.size(); ++l) {
    g[l].resize(in[l].v.size());
    for (std::size_t i = 0; i < in[l].v.size(); ++i) {
      const real keep = in[l].v[i];
      auto f = [&](real x) {
        in[l].v[i] = x;
        return reference(t, in).run().value;
      };
      g[l][i] = (-f(keep + 2 * h) + 8 * f(keep + h) - 8 * f(keep - h) + f(keep - 2 * h)) / (12 * h);
      in[l].v[i] = keep;
    }
  }
  return g;
}

// Whether tree t is a fair test: well posed, and its differences with steps h and h / 2 agree
// (they do not where a step moves some op across a kink: values that change fast near one).
inline bool fair_test(const tree& t) {
  const auto in = make_inputs(t);
  if (!well_posed(reference(t, in).run()))
    return false;
  const auto g1 = reference_gradient(t, in), g2 = reference_gradient(t, in, 5e-5L);
  for (std::size_t l = 0; l < g1.size(); ++l) {
    real scale = 1;
    for (real x : g1[l])
      scale = std::max(scale, std::abs(x));
    for (std::size_t i = 0; i < g1[l].size(); ++i)
      if (!(std::abs(g1[l][i] - g2[l][i]) <= 1e-9L * scale))
        return false;
  }
  return true;
}

// A tree that is a fair test, from (seed, index): the index's own seed, regenerated while the
// tree is not (each retry its own seed, so any index reproduces alone).
inline tree make_tree(std::uint64_t seed, std::uint64_t index, int depth = 4) {
  for (std::uint64_t attempt = 0;; ++attempt) {
    const std::uint64_t s = seed * 0x100000001b3ull + index * 1000003ull + attempt * 7919ull;
    tree t = generator(s).make(depth);
    if (t.count(t.root) <= 60 && fair_test(t))
      return t;
  }
}

}  // namespace compose
