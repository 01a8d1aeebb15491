// fusegrad/dynamic/fusion.hpp — pending elementwise ops: an elementwise op on vars computes
// nothing until its value is read, so that a chain of them runs as one pass over cache-sized
// chunks, forward and backward, and is one node on the tape
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/parallel.hpp"
#include "fusegrad/dynamic/tape.hpp"
#include "fusegrad/ops/op.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <span>
#include <type_traits>
#include <utility>

FG_DIAGNOSTICS_BEGIN

namespace fg {

namespace dynamic {

// Elements per pass through a chain: every intermediate of a chunk stays in L1.
inline constexpr index_t fusion_chunk = 256;
// Elements per block of a chain that one thread takes (fg::parallel_for): longer chains run on
// several threads. Blocks are cut the same way whatever the thread count, and a sum's partials
// are combined in block order, so values and gradients do not depend on it.
inline constexpr index_t fusion_block = 64 * fusion_chunk;
// Ops in one chain at most: a longer one is cut (its first part computed) so that what the
// backward recomputes, and the scratch, stay small.
inline constexpr unsigned fusion_limit = 32;

// Whether elementwise ops on this thread are deferred and fused (fg::no_fusion turns it off).
inline bool& fusion_enabled() {
  thread_local bool on = true;
  return on;
}

template <class Op, class T, std::size_t N>
inline constexpr bool has_aux_v = []<std::size_t... I>(std::index_sequence<I...>) {
  return has_aux<Op, simd::batch<T>, decltype((void)I, simd::batch<T>())...>;
}
(std::make_index_sequence<N>{});

// y = Op(x...) over n contiguous elements; with `aux`, the op's auxiliary value too (sin's
// cos), for a backward in the same pass.
template <class Op, class T, std::size_t... I>
void forward_contiguous(std::index_sequence<I...>, T* y, const T* const* x, index_t n,
                        T* aux = nullptr) {
  using B = simd::batch<T>;
  constexpr index_t w = simd::lanes<B>;
  constexpr bool keeps = has_aux_v<Op, T, sizeof...(I)>;
  index_t i = 0;
  if (keeps && aux) {
    if constexpr (keeps) {
      for (; i + w <= n; i += w) {
        const auto r = Op::forward_aux(simd::load<B>(x[I] + i)...);
        simd::store(y + i, r.value);
        simd::store(aux + i, r.aux);
      }
      for (; i < n; ++i) {
        const auto r = Op::forward_aux(x[I][i]...);
        y[i] = r.value;
        aux[i] = r.aux;
      }
    }
    return;
  }
  for (; i + w <= n; i += w)
    simd::store(y + i, Op::forward(simd::load<B>(x[I] + i)...));
  for (; i < n; ++i)
    y[i] = Op::forward(x[I][i]...);
}

// The sum of n contiguous elements, in SIMD batches.
template <class T> T sum_contiguous(const T* x, index_t n) {
  using B = simd::batch<T>;
  constexpr index_t w = simd::lanes<B>;
  B acc(T(0));
  index_t i = 0;
  for (; i + w <= n; i += w)
    acc = acc + simd::load<B>(x + i);
  T total = simd::hsum(acc);
  for (; i < n; ++i)
    total += x[i];
  return total;
}

// adj[k] (+)= g * dy/dx_k over n contiguous elements, for the k whose adj[k] is not null:
// stored where bit k of `store` is set, added elsewhere (two k may share one adj: x * x). `aux`,
// when given, holds what forward_contiguous kept.
template <class Op, class T, std::size_t... I>
void backward_contiguous(std::index_sequence<I...>, const T* g, const T* y, const T* aux,
                         const T* const* x, T* const* adj, unsigned store, index_t n) {
  constexpr std::size_t N = sizeof...(I);
  using B = simd::batch<T>;
  constexpr index_t w = simd::lanes<B>;
  auto partials = [&]<class V>(V, index_t i) {
    if constexpr (has_aux_v<Op, T, N>)
      if (aux)
        return fg::detail::local_partials<Op, V>(simd::load<V>(y + i), simd::load<V>(aux + i),
                                                 simd::load<V>(x[I] + i)...);
    return fg::detail::local_partials<Op, V>(simd::load<V>(y + i), no_aux{},
                                             simd::load<V>(x[I] + i)...);
  };
  index_t i = 0;
  for (; i + w <= n; i += w) {
    const auto d = partials(B(), i);
    const B gb = simd::load<B>(g + i);
    for (std::size_t k = 0; k < N; ++k)
      if (adj[k])
        simd::store(adj[k] + i, store >> k & 1 ? gb * d[k] : simd::load<B>(adj[k] + i) + gb * d[k]);
  }
  for (; i < n; ++i) {
    const auto d = partials(T(), i);
    for (std::size_t k = 0; k < N; ++k)
      if (adj[k])
        adj[k][i] = (store >> k & 1 ? T(0) : adj[k][i]) + g[i] * d[k];
  }
}

// An op of the table, its loops typed by dtype and reached through pointers: a chain is a list
// of these, built at run time.
template <class T> struct fused_kernels {
  void (*forward)(T* y, T* aux, const T* const* x, index_t n);
  void (*backward)(const T* g, const T* y, const T* aux, const T* const* x, T* const* adj,
                   unsigned store, index_t n);
};
struct fused_op {
  const char* name;
  unsigned arity;
  bool aux;  // keeps an auxiliary value for its backward
  fused_kernels<float> f32;
  fused_kernels<double> f64;
  template <class T> const fused_kernels<T>& kernels() const {
    if constexpr (std::is_same_v<T, float>)
      return f32;
    else
      return f64;
  }
};
template <class Op, std::size_t N, class T> constexpr fused_kernels<T> kernels_of() {
  using seq = std::make_index_sequence<N>;
  return {[](T* y, T* aux, const T* const* x, index_t n) {
            forward_contiguous<Op>(seq{}, y, x, n, aux);
          },
          [](const T* g, const T* y, const T* aux, const T* const* x, T* const* adj, unsigned store,
             index_t n) { backward_contiguous<Op>(seq{}, g, y, aux, x, adj, store, n); }};
}
template <class Op, std::size_t N>
inline constexpr fused_op fused_op_of{Op::name, N, has_aux_v<Op, float, N>,
                                      kernels_of<Op, N, float>(), kernels_of<Op, N, double>()};

// A chain, flattened: its operands (computed tensors) and its ops in evaluation order.
struct fused_leaf {
  std::shared_ptr<storage> data;
  std::size_t offset = 0;
  unsigned version = 0;  // of `data` when planned: the backward refuses changed elements
  fg::extents shape;
  bool broadcast = false;  // one element, read for every element of the result
  bool wants = false;      // requires a gradient
};
struct fused_step {
  const fused_op* op = nullptr;
  std::array<std::int16_t, 3> args{};  // step j as j, leaf k as -(k + 1)
  bool wants = false;                  // a gradient flows through it
  unsigned store = 0;                  // bit a: the backward's first write to argument a's adjoint
};
struct fused_program {
  dtype type = dtype::float32;
  // Where the chain runs (null: the host): where its operands in device memory are. Its other
  // operands are then one-element host tensors (numbers), passed to the device by value.
  const device_backend* device = nullptr;
  index_t n = 0;  // elements of the result
  pool_vector<fused_leaf> leaves;
  pool_vector<fused_step> steps;  // the last one is the result
};

inline void plan_backward(fused_program& p, var_list& inputs);

// The chain rooted at the pending `root`, each operand and op found once. `inputs` gets a
// handle on each leaf that wants a gradient (undefined for the others), in leaf order.
inline fused_program plan_fused(impl& root, var_list& inputs) {
  fused_program p;
  p.type = root.type;
  p.device = root.chain_device;
  p.n = root.shape.size();
  p.steps.reserve(root.fused);
  p.leaves.reserve(root.fused + 2);
  inputs.reserve(root.fused + 2);
  // Where each step and leaf came from (the chain is short: a linear search finds them).
  std::array<const impl*, fusion_limit> step_of;
  std::array<const impl*, 3 * fusion_limit> leaf_of;
  auto leaf = [&](const std::shared_ptr<impl>& x) -> std::int16_t {
    const std::size_t L = p.leaves.size();
    const std::size_t k =
        std::size_t(std::find(leaf_of.begin(), leaf_of.begin() + L, x.get()) - leaf_of.begin());
    if (k == L) {
      const bool wants = x->requires_grad;
      p.leaves.push_back(
          {x->data, x->offset, x->data->version, x->shape, x->shape.size() != p.n, wants});
      inputs.push_back(wants ? var(x) : var());
      leaf_of[k] = x.get();
    }
    return std::int16_t(-std::ptrdiff_t(k) - 1);
  };
  auto step = [&](auto& self, impl& x) -> std::int16_t {
    const std::size_t S = p.steps.size();
    if (auto it = std::find(step_of.begin(), step_of.begin() + S, &x); it != step_of.begin() + S)
      return std::int16_t(it - step_of.begin());
    fused_step s;
    s.op = x.op;
    for (unsigned a = 0; a < x.op->arity; ++a) {
      const std::shared_ptr<impl>& arg = x.args[a];
      s.args[a] = arg->pending() ? self(self, *arg) : leaf(arg);
    }
    s.wants = x.requires_grad;  // not through an op made under fg::no_grad
    step_of[p.steps.size()] = &x;
    p.steps.push_back(s);
    return std::int16_t(p.steps.size() - 1);
  };
  step(step, root);
  plan_backward(p, inputs);
  return p;
}

// Which steps a gradient flows through, and the backward's order: on entry a step's `wants`
// says whether it was made with gradients on; it keeps it if an argument wants one too. The
// backward visits steps last to first: the first write to each adjoint stores (no zeroing),
// and a leaf no step writes to gets no gradient (its only users were made under fg::no_grad):
// `inputs[k]` is reset for it.
inline void plan_backward(fused_program& p, var_list& inputs) {
  auto arg_wants = [&](std::int16_t x) {
    return x < 0 ? p.leaves[std::size_t(-x - 1)].wants : p.steps[std::size_t(x)].wants;
  };
  for (fused_step& s : p.steps) {  // (arguments come before the steps that read them)
    bool any = false;
    for (unsigned a = 0; a < s.op->arity; ++a)
      any = any || arg_wants(s.args[a]);
    s.wants = s.wants && any;
  }
  std::array<bool, fusion_limit> step_written{};
  std::array<bool, 3 * fusion_limit> leaf_written{};
  step_written[p.steps.size() - 1] = true;  // the result's adjoint is given
  for (std::size_t j = p.steps.size(); j-- > 0;) {
    fused_step& s = p.steps[j];
    s.wants = s.wants && step_written[j];
    if (!s.wants)
      continue;
    for (unsigned a = 0; a < s.op->arity; ++a) {
      const std::int16_t x = s.args[a];
      if (!arg_wants(x))
        continue;
      bool& written = x < 0 ? leaf_written[std::size_t(-x - 1)] : step_written[std::size_t(x)];
      s.store |= unsigned(!written) << a;
      written = true;
    }
  }
  for (std::size_t k = 0; k < p.leaves.size(); ++k)
    if (p.leaves[k].wants && !leaf_written[k]) {
      p.leaves[k].wants = false;
      inputs[k] = var();
    }
}

// One pass of a chain over chunks of its elements: scratch for every step's values (and, for a
// backward, their auxiliary values and adjoints), from the pool.
template <class T> class fused_pass {
 public:
  static constexpr index_t C = fusion_chunk;
  static constexpr index_t W = simd::lanes<simd::batch<T>>;
  static_assert(C % W == 0, "fusegrad: a fusion chunk is a whole number of SIMD batches");

  fused_pass(const fused_program& p, bool backward) : p_(p), backward_(backward) {
    const std::size_t L = p.leaves.size(), S = p.steps.size();
    count_ = (L + S + (backward ? 2 * S + L + 2 : 0)) * std::size_t(C);
    buf_ = static_cast<T*>(pool_acquire(count_ * sizeof(T)));
    vals_ = buf_ + L * C;
    aux_ = vals_ + S * C;
    adj_ = aux_ + S * C;
    for (std::size_t k = 0; k < L; ++k)  // a broadcast operand, spread over a chunk once
      if (p.leaves[k].broadcast)
        std::fill_n(buf_ + k * C, chunk(), *leaf_data(k));
  }
  fused_pass(const fused_pass&) = delete;
  fused_pass& operator=(const fused_pass&) = delete;
  ~fused_pass() { pool_release(buf_, count_ * sizeof(T)); }

  // Values of elements [i, i + len); the result's go to `out` when given. Returns them.
  const T* forward(index_t i, index_t len, T* out = nullptr) {
    const std::size_t S = p_.steps.size();
    const index_t m = stage(i, len);
    const T* x[3] = {};
    for (std::size_t j = 0; j < S; ++j) {
      const fused_step& s = p_.steps[j];
      for (unsigned a = 0; a < s.op->arity; ++a)
        x[a] = value(s.args[a], i);
      T* y = out && !staged_ && j + 1 == S ? out : vals_ + j * C;
      s.op->template kernels<T>().forward(y, keeps_aux(s) ? aux_ + j * C : nullptr, x, m);
    }
    const T* result = vals_ + (S - 1) * C;
    if (!out)
      return result;
    if (staged_)
      std::copy_n(result, len, out);
    return out;
  }
  // After forward(i, len): the adjoints of those elements, the result's being g. Leaf k's is
  // written to leaf_grad[k] + i (a whole gradient) or, for a broadcast leaf, to
  // broadcast_adjoint(k).
  void backward(index_t i, index_t len, const T* g, T* const* leaf_grad) {
    const std::size_t L = p_.leaves.size(), S = p_.steps.size();
    const index_t m = staged_ ? padded(len) : len;
    if (staged_) {  // g too is read in whole batches
      T* s = adj_ + (L + S + 1) * C;
      std::fill(std::copy_n(g, len, s), s + m, T(0));
      g = s;
    }
    const T* x[3] = {};
    T* a[3] = {};
    for (std::size_t j = S; j-- > 0;) {
      const fused_step& s = p_.steps[j];
      if (!s.wants)
        continue;
      for (unsigned k = 0; k < s.op->arity; ++k) {
        const std::int16_t arg = s.args[k];
        x[k] = value(arg, i);
        if (arg >= 0)
          a[k] = p_.steps[std::size_t(arg)].wants ? adj_ + (L + std::size_t(arg)) * C : nullptr;
        else {
          const std::size_t l = std::size_t(-arg - 1);
          a[k] = !p_.leaves[l].wants                 ? nullptr
                 : p_.leaves[l].broadcast || staged_ ? adj_ + l * C
                                                     : leaf_grad[l] + i;
        }
      }
      s.op->template kernels<T>().backward(j + 1 == S ? g : adj_ + (L + j) * C, vals_ + j * C,
                                           keeps_aux(s) ? aux_ + j * C : nullptr, x, a, s.store, m);
    }
    if (staged_)
      for (std::size_t l = 0; l < L; ++l)
        if (p_.leaves[l].wants && !p_.leaves[l].broadcast)
          std::copy_n(adj_ + l * C, len, leaf_grad[l] + i);
  }
  const T* broadcast_adjoint(std::size_t k) const { return adj_ + k * C; }
  // len rounded up to whole SIMD batches: what a chunk of len elements runs over.
  static index_t padded(index_t len) { return (len + W - 1) / W * W; }
  // Elements of a chunk that are set: a small tensor's, rounded up to whole batches.
  index_t chunk() const { return std::min(C, padded(p_.n)); }
  // A chunk to hold a constant seed for backward().
  T* seed_buffer() { return adj_ + (p_.leaves.size() + p_.steps.size()) * C; }

 private:
  // A chunk that is not a whole number of batches (the last, or a small tensor's only one) runs
  // in whole batches too: its leaves are copied to scratch and padded with their last element
  // (a value the ops are known to take), so that no op falls back to a scalar loop (W5 at
  // n = 10 spent 7% of its step in scalar exp and log). Returns the length to run.
  index_t stage(index_t i, index_t len) {
    const index_t m = padded(len);
    staged_ = m != len;
    if (staged_)
      for (std::size_t k = 0; k < p_.leaves.size(); ++k)
        if (!p_.leaves[k].broadcast) {
          T* s = buf_ + k * C;
          std::fill(std::copy_n(leaf_data(k) + i, len, s), s + m, s[len - 1]);
        }
    return m;
  }
  bool keeps_aux(const fused_step& s) const { return backward_ && s.wants && s.op->aux; }
  const T* leaf_data(std::size_t k) const {
    return static_cast<const T*>(p_.leaves[k].data->bytes) + p_.leaves[k].offset;
  }
  const T* value(std::int16_t a, index_t i) const {
    if (a >= 0)
      return vals_ + a * C;
    const std::size_t k = std::size_t(-a - 1);
    return p_.leaves[k].broadcast || staged_ ? buf_ + k * C : leaf_data(k) + i;
  }

  const fused_program& p_;
  bool backward_;
  T* buf_;  // operands (broadcast or staged), step values, aux values, adjoints (leaves,
            // steps, seed, staged g)
  T* vals_;
  T* aux_;
  T* adj_;
  std::size_t count_;
  bool staged_ = false;  // this chunk's leaves are read from their scratch copies
};

// Fresh gradients for the leaves of p that want one, where p runs; a one-element leaf's is
// zeroed (every element adds to it).
inline var_list leaf_gradients(const fused_program& p) {
  var_list grads(p.leaves.size());
  for (std::size_t k = 0; k < grads.size(); ++k)
    if (p.leaves[k].wants)
      grads[k] = p.leaves[k].broadcast ? zeros_on(p.device, p.leaves[k].shape, p.type)
                                       : empty_on(p.device, p.leaves[k].shape, p.type);
  return grads;
}

// fused_sweep on the device: the sum of the values times `scale` goes to *total (an element in
// device memory) when given.
inline var_list device_sweep(const fused_program& p, const var* g, const double* seed, void* total,
                             double scale) {
  var_list grads = g || seed ? leaf_gradients(p) : var_list();
  std::array<void*, 3 * fusion_limit> dst;  // a chain has at most this many leaves
  for (std::size_t k = 0; k < grads.size(); ++k)
    dst[k] = grads[k].defined() ? grads[k].get().data->bytes : nullptr;
  p.device->sweep(p, g ? g->ready().first_byte() : nullptr, seed ? *seed : 0.0, total, scale,
                  grads.empty() ? nullptr : dst.data());
  for (std::size_t k = 0; k < grads.size(); ++k)  // a host number's gradient goes back there
    if (grads[k].defined() && !p.leaves[k].data->device)
      grads[k] = grads[k].to(host);
  return grads;
}

// One pass of a chain over all its elements: its values summed into `total` when given, and the
// gradients of its leaves (those that want one) when `seed` or g is: g, of the result's shape,
// is the result's gradient; without it every element's gradient is *seed (the chain under a
// sum or mean). Nothing of the result's size is written but the gradients.
inline var_list fused_sweep(const fused_program& p, const var* g, const double* seed,
                            double* total) {
  if (p.device) {
    if (total)  // (reduce_fused sums on the device itself)
      throw std::logic_error("fusegrad: a device chain's sum is not read back here");
    return device_sweep(p, g, seed, nullptr, 0);
  }
  const bool backward = g || seed;
  var_list grads = backward ? leaf_gradients(p) : var_list();
  dispatch(p.type, [&](auto z) {
    using T = decltype(z);
    constexpr index_t C = fused_pass<T>::C;
    // A chain has at most this many leaves; only the first grads.size() entries are read.
    std::array<T*, 3 * fusion_limit> dst;
    for (std::size_t k = 0; k < grads.size(); ++k)
      dst[k] = grads[k].defined() ? grads[k].template data<T>() : nullptr;
    const T* gp = g ? g->data<T>() : nullptr;
    // What a block adds: its values' sum (chunk sums added in double: 1e7 floats lose no digits
    // to the order) and the adjoints of its broadcast leaves.
    struct partial {
      double sum = 0;
      std::array<T, 3 * fusion_limit> adj{};
    };
    const partial all = parallel_reduce(
        0, p.n, fusion_block, partial{},
        [&](index_t lo, index_t hi) {
          fused_pass<T> pass(p, backward);
          T* constant = pass.seed_buffer();
          if (seed)
            std::fill_n(constant, pass.chunk(), T(*seed));
          partial r;
          for (index_t i = lo; i < hi; i += C) {
            const index_t len = std::min(C, hi - i);
            const T* y = pass.forward(i, len);
            if (total)
              r.sum += double(sum_contiguous(y, len));
            if (!backward)
              continue;
            pass.backward(i, len, gp ? gp + i : constant, dst.data());
            for (std::size_t k = 0; k < grads.size(); ++k)
              if (dst[k] && p.leaves[k].broadcast) {
                const T* a = pass.broadcast_adjoint(k);
                r.adj[k] = std::accumulate(a, a + len, r.adj[k]);
              }
          }
          return r;
        },
        [&](partial a, const partial& b) {
          a.sum += b.sum;
          for (std::size_t k = 0; k < grads.size(); ++k)
            a.adj[k] += b.adj[k];
          return a;
        });
    for (std::size_t k = 0; k < grads.size(); ++k)
      if (dst[k] && p.leaves[k].broadcast)
        dst[k][0] = all.adj[k];
    if (total)
      *total = all.sum;
  });
  return grads;
}

inline const fg::extents& node::input_shape(std::size_t k) const {
  return fused ? fused->leaves[k].shape : input_shapes[k];
}
inline const char* node::changed() const {
  for (const auto& [s, version] : saved)
    if (s->version != version)
      return name;
  if (fused)  // name the op of the chain that read the changed leaf
    for (std::size_t k = 0; k < fused->leaves.size(); ++k)
      if (fused->leaves[k].data->version != fused->leaves[k].version)
        for (const fused_step& s : fused->steps)
          for (unsigned a = 0; a < s.op->arity; ++a)
            if (s.args[a] == -std::ptrdiff_t(k) - 1)
              return s.op->name;
  return nullptr;
}

// Records the node of a computed chain on `out`, if a leaf wants a gradient.
template <class MakeBackward>
void record_fused(impl& out, const char* name, std::shared_ptr<const fused_program> prog,
                  var_list&& inputs, MakeBackward make) {
  if (std::none_of(inputs.begin(), inputs.end(), [](const var& v) { return v.defined(); })) {
    out.requires_grad = false;
    return;
  }
  node& n = attach_node(out, name);  // the program keeps the leaves' shapes and versions
  n.inputs = std::move(inputs);
  n.backward = make(prog);
  n.fused = std::move(prog);
}

// Computes chain `prog` into `root` (its dtype and shape set, no elements yet) in one pass and,
// if root requires a gradient, records the chain as one node named `name`. `inputs`: as
// plan_fused gives them.
inline void compute_chain(impl& root, std::shared_ptr<const fused_program> prog, var_list&& inputs,
                          const char* name) {
  const device_backend* dev = prog->device;
  auto data = make_pooled<storage>(std::size_t(prog->n) * element_size(root.type), dev);
  if (dev && prog->n)  // before the var changes: if the launch fails, a pending one stays so
    dev->realise(*prog, data->bytes);
  root.data = std::move(data);
  root.offset = 0;
  root.op = nullptr;  // computed from here on, even if something below throws
  root.args = {};
  root.fused = 0;
  if (!dev) {
    dispatch(root.type, [&](auto z) {
      using T = decltype(z);
      constexpr index_t C = fused_pass<T>::C;
      T* out = static_cast<T*>(root.data->bytes);
      parallel_for(0, prog->n, fusion_block, [&](index_t lo, index_t hi) {
        fused_pass<T> pass(*prog, false);
        for (index_t i = lo; i < hi; i += C)
          pass.forward(i, std::min(C, hi - i), out + i);
      });
    });
  }
  if (!root.requires_grad)
    return;
  record_fused(root, name, std::move(prog), std::move(inputs), [](const auto& p) {
    return [p](const var& g) { return fused_sweep(*p, &g, nullptr, nullptr); };
  });
}

// Computes a pending var: its chain in one pass, one node on the tape.
inline void realise_fused(impl& root) {
  if (root.owner)
    std::exchange(root.owner, nullptr)->remove(&root);
  var_list inputs;
  auto prog = make_pooled<fused_program>(plan_fused(root, inputs));
  compute_chain(root, std::move(prog), std::move(inputs), root.op->name);
}

// Why a chain of Op on these operands cannot run on device `dev`. Out of line: defer()'s path
// is hot.
template <class Op, std::same_as<var>... V>
[[noreturn, gnu::cold, gnu::noinline]] void refuse_chain(const device_backend& dev,
                                                         const V&... in) {
  if (!dev.supports(&fused_op_of<Op, sizeof...(V)>))
    throw autograd_error(text("fg::", Op::name, ": this op has no form on the ", dev.name,
                              " device (only the ops of the table run there)"));
  std::string m = text("fg::", Op::name, ": on the ", dev.name,
                       " device, an operand in host memory must be one element (a number); "
                       "copy it there with .to(fg::cuda) (operands");
  ((m.append(" ").append(in.shape().str()).append(in.get().device() ? "" : " (host)")), ...);
  throw shape_error(text(m, ")"));
}

// Where a chain of Op on these operands runs (null: the host). On a device, the op must have
// a form there and operands in host memory must be numbers (one element), or this throws.
template <class Op, std::same_as<var>... V>
FG_INLINE const device_backend* chain_backend(const V&... in) {
  const device_backend* dev = nullptr;
  ((dev = dev ? dev : in.get().device()), ...);
  if (dev && (!dev->supports(&fused_op_of<Op, sizeof...(V)>) ||
              ((!in.get().device() && in.size() != 1) || ...))) [[unlikely]]
    refuse_chain<Op>(*dev, in...);
  return dev;
}

// A pending value: `op` on `args` (computed or pending values), of dtype `type` and extents
// `out`, on this thread's list of pending ops: what defer() makes, for an op known at run time
// (a traced graph's planned chain that it returns).
inline var pending_value(const fused_op* op, dtype type, const extents& out,
                         const device_backend* dev, std::span<const std::shared_ptr<impl>> args,
                         bool requires_grad) {
  auto p = make_pooled<impl>();
  p->chain_device = dev;
  p->type = type;
  p->shape = out;
  p->op = op;
  p->realise = &realise_fused;
  p->requires_grad = requires_grad;
  p->fused = 1;
  for (std::size_t k = 0; k < args.size(); ++k) {
    p->args[k] = args[k];
    p->fused += args[k]->fused;
  }
  pending_list& list = pending_ops();
  list.items.push_back(p.get());
  p->owner = &list;
  return var(std::move(p));
}

// The pending var Op(in...), or an empty var when the op cannot be deferred: anomaly mode or
// fg::no_fusion, or broadcasting other than of one element.
template <class Op, std::same_as<var>... V> var defer(const extents& out, const V&... in) {
  constexpr std::size_t N = sizeof...(V);
  static_assert(N <= 3, "fusegrad: a fused op has at most 3 operands");
  // On a device, every elementwise op is part of a chain (it has no op-by-op path).
  const device_backend* dev = chain_backend<Op>(in...);
  const bool elementwise = ((in.size() == out.size() || in.size() == 1) && ...);
  if (dev && !elementwise)
    throw std::logic_error("fusegrad: a device chain's operand was not spread to its shape");
  if (!dev && (!fusion_enabled() || anomaly_enabled() || !elementwise))
    return var();
  const bool requires_grad = grad_enabled() && (in.requires_grad() || ...);
  const std::array<const var*, N> args{&in...};
  auto size = [&] {
    unsigned s = 1;
    for (const var* a : args)
      s += a->get().fused;
    return s;
  };
  while (size() > fusion_limit) {  // cut the chain: its longest operand is computed now
    (*std::max_element(args.begin(), args.end(), [](const var* a, const var* b) {
      return a->get().fused < b->get().fused;
    }))->ready();
  }
  const std::array<std::shared_ptr<impl>, N> handles{in.handle()...};
  return pending_value(&fused_op_of<Op, N>, (in.dtype(), ...), out, dev, handles, requires_grad);
}

// d *= s, in place (a gradient no one else holds yet).
inline void scale(var& d, double s) {
  if (const device_backend* dev = d.get().device())
    return dev->scale(d.dtype(), d.get().first_byte(), d.size(), s);
  dispatch(d.dtype(), [&](auto z) {
    using T = decltype(z);
    T* p = d.data<T>();
    const index_t n = d.size();  // (hoisted: the stores might alias the extents otherwise)
    for (index_t i = 0; i < n; ++i)
      p[i] *= T(s);
  });
}

// sum or mean of every element of a pending var, in the chain's pass. When the tape records it,
// that same pass computes the gradients too, for an upstream gradient of 1 (as value_and_grad
// does): the backward scales them by the real one, and only a second backward (retain_graph)
// runs the chain again.
template <class Red>
var reduce_chain(std::shared_ptr<fused_program> prog, var_list&& inputs, bool requires_grad,
                 std::size_t rank, bool keepdim);
template <class Red> var reduce_fused(const var& x, bool keepdim) {
  var_list inputs;
  auto prog = make_pooled<fused_program>(plan_fused(x.get(), inputs));
  return reduce_chain<Red>(std::move(prog), std::move(inputs), x.requires_grad(), x.rank(),
                           keepdim);
}

// The same for chain `prog` (plan_fused's, with its `inputs`), whose elements require a
// gradient when `requires_grad`, of rank `rank`.
template <class Red>
var reduce_chain(std::shared_ptr<fused_program> prog, var_list&& inputs, bool requires_grad,
                 std::size_t rank, bool keepdim) {
  const dtype type = prog->type;
  const bool recording =
      grad_enabled() && requires_grad &&
      std::any_of(inputs.begin(), inputs.end(), [](const var& v) { return v.defined(); });
  // d result / d element, given the result's gradient
  auto seed = [](dtype t, double g, index_t n) {
    return dispatch(t, [&](auto z) {
      using T = decltype(z);
      return double(Red::seed(T(0), T(0), T(g), T(n), {}));
    });
  };
  const double unit = seed(type, 1, prog->n);
  extents shape = extents::of_rank(keepdim ? rank : 0);
  for (std::size_t k = 0; k < shape.rank(); ++k)
    shape[k] = 1;
  const device_backend* dev = prog->device;
  var out = empty_on(dev, shape, type);
  var_list grads;
  if (dev) {  // the value stays on the device: finish() of a sum or mean is a scaling
    const double scale = dispatch(type, [&](auto z) {
      using T = decltype(z);
      return double(Red::finish(T(1), T(0), T(prog->n)));
    });
    grads = device_sweep(*prog, nullptr, recording ? &unit : nullptr, out.get().data->bytes, scale);
  } else {
    double total = 0;
    grads = fused_sweep(*prog, nullptr, recording ? &unit : nullptr, &total);
    dispatch(type, [&](auto z) {
      using T = decltype(z);
      out.template data<T>()[0] = Red::finish(T(total), T(0), T(prog->n));
    });
  }
  if (!recording)
    return out;
  record_fused(out.get(), Red::name, std::move(prog), std::move(inputs), [&](const auto& p) {
    return [p, seed, grads = std::move(grads)](const var& g) mutable {
      const double gv = g.at(0);
      if (grads.empty()) {
        const double s = seed(p->type, gv, p->n);
        return fused_sweep(*p, nullptr, &s, nullptr);
      }
      var_list out = std::exchange(grads, {});
      if (gv != 1)
        for (var& d : out)
          if (d.defined())
            scale(d, gv);
      return out;
    };
  });
  return out;
}

}  // namespace dynamic

// Within its scope (on this thread) every elementwise op runs when it is called, as its own
// node: for stepping through ops one by one. (detect_anomaly does this too.)
class no_fusion : dynamic::switch_scope<dynamic::fusion_enabled, false> {};

}  // namespace fg

FG_DIAGNOSTICS_END
