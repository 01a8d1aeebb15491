// fusegrad/nn/recurrent.hpp — LSTM and GRU over batches of sequences of different lengths, with
// PyTorch's parameter names and gate order. The input projection runs once for every time step
// (one GEMM); each step then adds the hidden projection and updates the state.
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/elementwise.hpp"
#include "fusegrad/dynamic/layout.hpp"
#include "fusegrad/nn/init.hpp"
#include "fusegrad/nn/linear.hpp"
#include "fusegrad/nn/module.hpp"
#include "fusegrad/ops/unary.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

FG_DIAGNOSTICS_BEGIN

namespace fg::nn {

// output [T, B, hidden]: the hidden state after each step, zero past a sequence's length;
// h (and for an LSTM c) [B, hidden]: the state after each sequence's last step.
struct rnn_result {
  var output, h, c;
};

namespace detail {

// Calls f(V-typed offset j) over [0, n) in SIMD batches of T, then element by element.
template <class T, class F> void simd_loop(index_t n, F f) {
  using B = simd::batch<T>;
  constexpr index_t w = simd::lanes<B>;
  index_t j = 0;
  for (; j + w <= n; j += w)
    f(B(), j);
  for (; j < n; ++j)
    f(T(), j);
}

}  // namespace detail

namespace detail {

// One LSTM row: a [4H] (the gates before their activations: i, f, g, o) and c [H] give
// c2 = sig(f) c + sig(i) tanh(g) and h = sig(o) tanh(c2), through the op table's sigmoid and
// tanh.
template <class T> void lstm_row(const T* a, const T* c, T* h, T* c2, index_t H) {
  using sg = ops::sigmoid_op;
  using th = ops::tanh_op;
  simd_loop<T>(H, [&]<class V>(V, index_t j) {
    const V i = sg::forward(simd::load<V>(a + j)), f = sg::forward(simd::load<V>(a + H + j));
    const V g = th::forward(simd::load<V>(a + 2 * H + j));
    const V o = sg::forward(simd::load<V>(a + 3 * H + j));
    const V cn = f * simd::load<V>(c + j) + i * g;
    simd::store(c2 + j, cn);
    simd::store(h + j, o * th::forward(cn));
  });
}
// Its backward: the gradients dh of h and dc2 of c2 give da [4H] and dc [H] (c2 as computed).
template <class T>
void lstm_row_backward(const T* a, const T* c, const T* c2, const T* dh, const T* dc2, T* da, T* dc,
                       index_t H) {
  using sg = ops::sigmoid_op;
  using th = ops::tanh_op;
  simd_loop<T>(H, [&]<class V>(V, index_t j) {
    const V ai = simd::load<V>(a + j), af = simd::load<V>(a + H + j),
            ag = simd::load<V>(a + 2 * H + j), ao = simd::load<V>(a + 3 * H + j);
    const V i = sg::forward(ai), f = sg::forward(af), g = th::forward(ag), o = sg::forward(ao);
    const V cv = simd::load<V>(c2 + j), tc = th::forward(cv);
    const V gh = simd::load<V>(dh + j);
    const V dcv = simd::load<V>(dc2 + j) + gh * o * th::derivative(cv, tc);
    simd::store(da + j, dcv * g * sg::derivative(ai, i));
    simd::store(da + H + j, dcv * simd::load<V>(c + j) * sg::derivative(af, f));
    simd::store(da + 2 * H + j, dcv * i * th::derivative(ag, g));
    simd::store(da + 3 * H + j, gh * tc * sg::derivative(ao, o));
    simd::store(dc + j, dcv * f);
  });
}

}  // namespace detail

// One LSTM step as one op: z [B, 4H] (the gates before their activations, in the order i, f, g,
// o) and c [B, H] give [B, 2H] holding h' = sig(o) tanh(c') and c' = sig(f) c + sig(i) tanh(g)
// side by side. Forward and backward are one pass each over the state.
inline var lstm_cell(const var& z, const var& c) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("lstm_cell", {}, {&z, &c},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list&) {
                       return nn::lstm_cell(ins[0], ins[1]);
                     });
  const index_t B = c.shape()[0], H = c.shape()[1];
  if (z.rank() != 2 || c.rank() != 2 || z.shape()[0] != B || z.shape()[1] != 4 * H)
    throw shape_error(dynamic::text("fg::nn::lstm_cell(): z is ", z.shape().str(), ", c ",
                                    c.shape().str(), "; expected [B, 4H] and [B, H]"));
  var y = var::empty({B, 2 * H}, z.dtype());
  dispatch(z.dtype(), [&](auto t) {
    using T = decltype(t);
    for (index_t b = 0; b < B; ++b) {
      T* h = y.data<T>() + b * 2 * H;
      detail::lstm_row(z.data<T>() + b * 4 * H, c.data<T>() + b * H, h, h + H, H);
    }
  });
  dynamic::record(y, "lstm_cell", {z, c}, [&](dynamic::node& n) {
    return [z = n.save(z), c = n.save(c), y = n.save(y.detach()), B, H,
            needs = n.wants()](const var& gy) {
      var dz = var::empty(z.shape(), z.dtype()), dc = var::empty(c.shape(), c.dtype());
      dispatch(gy.dtype(), [&](auto t) {
        using T = decltype(t);
        for (index_t b = 0; b < B; ++b) {
          const T* dh = gy.data<T>() + b * 2 * H;
          detail::lstm_row_backward(z.data<T>() + b * 4 * H, c.data<T>() + b * H,
                                    y.data<T>() + b * 2 * H + H, dh, dh + H,
                                    dz.data<T>() + b * 4 * H, dc.data<T>() + b * H, H);
        }
      });
      return dynamic::var_list{needs[0] ? dz : var(), needs[1] ? dc : var()};
    };
  });
  return y;
}

namespace detail {

// A whole LSTM sequence as one op, as cuDNN runs it. xp [T, B, 4H] is the input projection
// (x W_ih^T + b_ih, all steps in one GEMM); w_hh [4H, H] and b_hh [4H] the recurrent weights.
// The result P [T + 1, B, 2H] holds the output h_t in P[t, :, :H] (zero past a sequence's
// length) and the final state (h_n, c_n) in P[T]. The backward runs the steps in reverse for
// the state gradients, then gets dW_hh and db_hh from every step at once: one GEMM over T B
// rows instead of T small ones and T accumulations.
inline var lstm_sequence(const var& xp, const var& w_hh, const var& b_hh,
                         const std::vector<index_t>& lengths) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record(
        "lstm_sequence", {{"lengths", dynamic::int_attr(lengths)}}, {&xp, &w_hh, &b_hh},
        [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list& at) {
          return nn::detail::lstm_sequence(ins[0], ins[1], ins[2], at.list<index_t>(0));
        });
  const index_t T = xp.shape()[0], B = xp.shape()[1], H = w_hh.shape()[1], G = 4 * H;
  const dtype t = xp.dtype();
  // (LSTM::run checks its arguments; a graph read from a file reaches this op directly)
  if (xp.rank() != 3 || w_hh.rank() != 2 || xp.shape()[2] != G || w_hh.shape()[0] != G ||
      b_hh.rank() != 1 || b_hh.shape()[0] != G || (!lengths.empty() && index_t(lengths.size()) != B))
    throw shape_error(dynamic::text("fg::nn::detail::lstm_sequence(): xp ", xp.shape().str(),
                                    ", w_hh ", w_hh.shape().str(), ", b_hh ", b_hh.shape().str(),
                                    " and ", lengths.size(),
                                    " lengths; expected [T, B, 4H], [4H, H], [4H] and B or none"));
  auto active = [&lengths](index_t step, index_t b) {
    return lengths.empty() || step < lengths[std::size_t(b)];
  };
  // Saved for the backward: gate pre-activations per step, and the states before each step.
  var zs = var::empty({T, B, G}, t), hs = var::zeros({T + 1, B, H}, t),
      cs = var::zeros({T + 1, B, H}, t), p = var::zeros({T + 1, B, 2 * H}, t);
  dispatch(t, [&](auto z) {
    using V = decltype(z);
    const V *px = xp.data<V>(), *pb = b_hh.data<V>();
    V *pz = zs.data<V>(), *ph = hs.data<V>(), *pc = cs.data<V>(), *pp = p.data<V>();
    for (index_t s = 0; s < T; ++s) {
      V* zt = pz + s * B * G;
      for (index_t b = 0; b < B; ++b)
        for (index_t k = 0; k < G; ++k)
          zt[b * G + k] = px[(s * B + b) * G + k] + pb[k];
      gemm<V>(B, G, H, ph + s * B * H, false, w_hh.data<V>(), true, zt, true);
      for (index_t b = 0; b < B; ++b) {
        const V *h0 = ph + (s * B + b) * H, *c0 = pc + (s * B + b) * H;
        V *h1 = ph + ((s + 1) * B + b) * H, *c1 = pc + ((s + 1) * B + b) * H;
        if (!active(s, b)) {  // ended: the state stays, the output is zero
          std::copy_n(h0, H, h1);
          std::copy_n(c0, H, c1);
          continue;
        }
        lstm_row(zt + b * G, c0, h1, c1, H);
        std::copy_n(h1, H, pp + (s * B + b) * 2 * H);
      }
    }
    for (index_t b = 0; b < B; ++b) {
      std::copy_n(ph + (T * B + b) * H, H, pp + (T * B + b) * 2 * H);
      std::copy_n(pc + (T * B + b) * H, H, pp + (T * B + b) * 2 * H + H);
    }
  });
  dynamic::record(p, "lstm", {xp, w_hh, b_hh}, [&](dynamic::node& n) {
    return [zs, hs, cs, w = n.save(w_hh), lengths, T, B, H, G, needs = n.wants()](const var& gp) {
      auto active = [&lengths](index_t step, index_t b) {
        return lengths.empty() || step < lengths[std::size_t(b)];
      };
      var dz = var::zeros({T, B, G}, gp.dtype());  // zero for steps past a length
      var dw, db;
      dispatch(gp.dtype(), [&](auto z) {
        using V = decltype(z);
        const V *pg = gp.data<V>(), *pz = zs.data<V>(), *pc = cs.data<V>();
        V* pdz = dz.data<V>();
        var state = var::empty({3, B, H}, gp.dtype());  // dh, dc, and the next dh or dc
        V *dh = state.data<V>(), *dc = dh + B * H, *next = dc + B * H;
        for (index_t b = 0; b < B; ++b) {
          std::copy_n(pg + (T * B + b) * 2 * H, H, dh + b * H);
          std::copy_n(pg + (T * B + b) * 2 * H + H, H, dc + b * H);
        }
        for (index_t s = T; s-- > 0;) {
          for (index_t b = 0; b < B; ++b) {
            if (!active(s, b))
              continue;  // dh and dc pass through unchanged
            V* dhb = dh + b * H;
            const V* go = pg + (s * B + b) * 2 * H;  // the output's gradient
            for (index_t j = 0; j < H; ++j)
              dhb[j] += go[j];
            lstm_row_backward(pz + (s * B + b) * G, pc + (s * B + b) * H,
                              pc + ((s + 1) * B + b) * H, dhb, dc + b * H, pdz + (s * B + b) * G,
                              next + b * H, H);
            std::copy_n(next + b * H, H, dc + b * H);
          }
          // dh_{s-1} = dz_s W_hh for the running sequences; the others keep theirs.
          gemm<V>(B, H, G, pdz + s * B * G, false, w.data<V>(), false, next);
          for (index_t b = 0; b < B; ++b)
            if (active(s, b))
              std::copy_n(next + b * H, H, dh + b * H);
        }
        if (needs[1]) {  // dW_hh = sum over steps of dz_s^T h_{s-1}: one GEMM over T B rows
          dw = var::empty({G, H}, gp.dtype());
          gemm<V>(G, H, T * B, pdz, true, hs.data<V>(), false, dw.data<V>());
        }
        if (needs[2]) {
          db = var::zeros({G}, gp.dtype());
          V* pdb = db.data<V>();
          for (index_t r = 0; r < T * B; ++r)
            for (index_t k = 0; k < G; ++k)
              pdb[k] += pdz[r * G + k];
        }
      });
      return dynamic::var_list{needs[0] ? dz : var(), dw, db};
    };
  });
  return p;
}

// What LSTM and GRU share: the parameters, the input checks, and the input projection of every
// step at once.
class recurrent_base : public module {
 protected:
  recurrent_base(const char* name, index_t input, index_t hidden, index_t gates, generator& g,
                 dtype t)
      : name_(name), in_(input), hid_(hidden) {
    const double b = 1.0 / std::sqrt(double(hidden));
    auto make = [&](const char* pname, extents e) {
      var v = register_parameter(pname, var::empty(e, t));
      init::uniform(v, -b, b, g);
      return v;
    };
    weight_ih = make("weight_ih_l0", {gates * hidden, input});
    weight_hh = make("weight_hh_l0", {gates * hidden, hidden});
    bias_ih = make("bias_ih_l0", {gates * hidden});
    bias_hh = make("bias_hh_l0", {gates * hidden});
  }
  // x [T, B, input] and lengths (each 1..T, or none: all T): x W_ih^T + b_ih as [T, B, gates].
  var input_projection(const var& x, const std::vector<index_t>& lengths) const {
    if (x.rank() != 3 || x.shape()[2] != in_)
      throw shape_error(dynamic::text("fg::nn::", name_, ": x is ", x.shape().str(),
                                      "; expected [T, B, ", in_, "]"));
    const index_t T = x.shape()[0], B = x.shape()[1];
    if (!lengths.empty() && index_t(lengths.size()) != B)
      throw shape_error(
          dynamic::text("fg::nn::", name_, ": ", lengths.size(), " lengths for a batch of ", B));
    for (index_t len : lengths)
      if (len < 1 || len > T)
        throw shape_error(dynamic::text("fg::nn::", name_, ": a length of ", len,
                                        " for sequences of ", T, " steps"));
    return reshape(linear(reshape(x, {T * B, in_}), weight_ih, bias_ih),
                   {T, B, weight_ih.shape()[0]});
  }
  const char* name_;
  index_t in_, hid_;

 public:
  var weight_ih, weight_hh, bias_ih, bias_hh;
};

}  // namespace detail

// i, f, g, o = split(x W_ih^T + b_ih + h W_hh^T + b_hh); c' = sig(f) c + sig(i) tanh(g);
// h' = sig(o) tanh(c'). The whole sequence is one op on the tape (detail::lstm_sequence).
class LSTM : public detail::recurrent_base {
 public:
  LSTM(index_t input, index_t hidden, generator& g, dtype t = dtype::float32)
      : recurrent_base("LSTM", input, hidden, 4, g, t) {}
  rnn_result run(const var& x, const std::vector<index_t>& lengths = {}) {
    const var p = detail::lstm_sequence(input_projection(x, lengths), weight_hh, bias_hh, lengths);
    const index_t T = x.shape()[0];
    const var last = select(p, 0, T);
    return {slice(slice(p, 0, 0, T), 2, 0, hid_), slice(last, 1, 0, hid_),
            slice(last, 1, hid_, 2 * hid_)};
  }
  var forward(const var& x) override { return run(x).output; }
};

// r, z = sig(x W_ir + b_ir + h W_hr + b_hr), ...; n = tanh(x W_in + b_in + r (h W_hn + b_hn));
// h' = (1 - z) n + z h. Each step is recorded op by op.
class GRU : public detail::recurrent_base {
 public:
  GRU(index_t input, index_t hidden, generator& g, dtype t = dtype::float32)
      : recurrent_base("GRU", input, hidden, 3, g, t) {}
  rnn_result run(const var& x, const std::vector<index_t>& lengths = {}) {
    const var xp = input_projection(x, lengths);
    const index_t T = x.shape()[0], B = x.shape()[1], H = hid_;
    rnn_result r{var(), var::zeros({B, H}, x.dtype()), var()};
    std::vector<var> outputs;
    for (index_t t = 0; t < T; ++t) {
      const var xt = select(xp, 0, t), hp = linear(r.h, weight_hh, bias_hh);
      const var rg = sigmoid(slice(xt, 1, 0, H) + slice(hp, 1, 0, H));
      const var z = sigmoid(slice(xt, 1, H, 2 * H) + slice(hp, 1, H, 2 * H));
      const var n = tanh(slice(xt, 1, 2 * H, 3 * H) + rg * slice(hp, 1, 2 * H, 3 * H));
      const var h = (1.0 - z) * n + z * r.h;
      index_t running = 0;
      for (index_t len : lengths)
        running += len > t;
      if (lengths.empty() || running == B) {
        r.h = h;
        outputs.push_back(h);
        continue;
      }
      var on = var::empty({B, 1}, x.dtype());  // 1 for the sequences still running
      for (index_t b = 0; b < B; ++b)
        on.set(b, lengths[std::size_t(b)] > t ? 1.0 : 0.0);
      r.h = where(on, h, r.h);
      outputs.push_back(h * on);
    }
    r.output = stack(outputs, 0);
    return r;
  }
  var forward(const var& x) override { return run(x).output; }
};

}  // namespace fg::nn

FG_DIAGNOSTICS_END
