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

#include <cmath>
#include <vector>

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

// One LSTM step as one op: z [B, 4H] (the gates before their activations, in the order i, f, g,
// o) and c [B, H] give [B, 2H] holding h' = sig(o) tanh(c') and c' = sig(f) c + sig(i) tanh(g)
// side by side. Forward and backward are one pass each over the state, through the op table's
// sigmoid and tanh (their values and derivatives), instead of a dozen recorded ops.
inline var lstm_cell(const var& z, const var& c) {
  const index_t B = c.shape()[0], H = c.shape()[1];
  if (z.rank() != 2 || c.rank() != 2 || z.shape()[0] != B || z.shape()[1] != 4 * H)
    throw shape_error(dynamic::text("fg::nn::lstm_cell(): z is ", z.shape().str(), ", c ",
                                    c.shape().str(), "; expected [B, 4H] and [B, H]"));
  using sg = ops::sigmoid_op;
  using th = ops::tanh_op;
  var y = var::empty({B, 2 * H}, z.dtype());
  dispatch(z.dtype(), [&](auto t) {
    using T = decltype(t);
    const T *pz = z.data<T>(), *pc = c.data<T>();
    T* py = y.data<T>();
    for (index_t b = 0; b < B; ++b) {
      const T *a = pz + b * 4 * H, *cb = pc + b * H;
      T *h = py + b * 2 * H, *c2 = h + H;
      detail::simd_loop<T>(H, [&]<class V>(V, index_t j) {
        const V i = sg::forward(simd::load<V>(a + j)), f = sg::forward(simd::load<V>(a + H + j));
        const V g = th::forward(simd::load<V>(a + 2 * H + j));
        const V o = sg::forward(simd::load<V>(a + 3 * H + j));
        const V cn = f * simd::load<V>(cb + j) + i * g;
        simd::store(c2 + j, cn);
        simd::store(h + j, o * th::forward(cn));
      });
    }
  });
  dynamic::record(y, "lstm_cell", {z, c}, [&](dynamic::node& n) {
    return [z = n.save(z), c = n.save(c), y = n.save(y.detach()), B, H,
            needs = n.wants()](const var& gy) {
      var dz = var::empty(z.shape(), z.dtype()), dc = var::empty(c.shape(), c.dtype());
      dispatch(gy.dtype(), [&](auto t) {
        using T = decltype(t);
        const T *pz = z.data<T>(), *pc = c.data<T>(), *py = y.data<T>(), *pg = gy.data<T>();
        T *pdz = dz.data<T>(), *pdc = dc.data<T>();
        for (index_t b = 0; b < B; ++b) {
          const T *a = pz + b * 4 * H, *cb = pc + b * H, *cn = py + b * 2 * H + H;
          const T *dh = pg + b * 2 * H, *dcn = dh + H;
          T *da = pdz + b * 4 * H, *dcb = pdc + b * H;
          detail::simd_loop<T>(H, [&]<class V>(V, index_t j) {
            const V ai = simd::load<V>(a + j), af = simd::load<V>(a + H + j),
                    ag = simd::load<V>(a + 2 * H + j), ao = simd::load<V>(a + 3 * H + j);
            const V i = sg::forward(ai), f = sg::forward(af), g = th::forward(ag),
                    o = sg::forward(ao);
            const V cv = simd::load<V>(cn + j), tc = th::forward(cv);
            const V gh = simd::load<V>(dh + j);
            const V dcv = simd::load<V>(dcn + j) + gh * o * th::derivative(cv, tc);
            simd::store(da + j, dcv * g * sg::derivative(ai, i));
            simd::store(da + H + j, dcv * simd::load<V>(cb + j) * sg::derivative(af, f));
            simd::store(da + 2 * H + j, dcv * i * th::derivative(ag, g));
            simd::store(da + 3 * H + j, gh * tc * sg::derivative(ao, o));
            simd::store(dcb + j, dcv * f);
          });
        }
      });
      return dynamic::var_list{needs[0] ? dz : var(), needs[1] ? dc : var()};
    };
  });
  return y;
}

namespace detail {

// The recurrence shared by LSTM and GRU: `Cell` maps (input projection of step t [B, G],
// state) to the new state; the state stays as it was for sequences that have ended.
class recurrent_base : public module {
 protected:
  recurrent_base(index_t input, index_t hidden, index_t gates, generator& g, dtype t)
      : in_(input), hid_(hidden) {
    const double b = 1.0 / std::sqrt(double(hidden));
    auto make = [&](const char* name, extents e) {
      var v = register_parameter(name, var::empty(e, t));
      init::uniform(v, -b, b, g);
      return v;
    };
    weight_ih = make("weight_ih_l0", {gates * hidden, input});
    weight_hh = make("weight_hh_l0", {gates * hidden, hidden});
    bias_ih = make("bias_ih_l0", {gates * hidden});
    bias_hh = make("bias_hh_l0", {gates * hidden});
  }
  // x [T, B, input]; lengths (each 1..T) or empty (all T).
  template <class Cell>
  rnn_result run(const var& x, const std::vector<index_t>& lengths, bool has_cell, Cell cell) {
    if (x.rank() != 3 || x.shape()[2] != in_)
      throw shape_error(dynamic::text("fg::nn::", has_cell ? "LSTM" : "GRU", ": x is ",
                                      x.shape().str(), "; expected [T, B, ", in_, "]"));
    const index_t T = x.shape()[0], B = x.shape()[1];
    if (!lengths.empty() && index_t(lengths.size()) != B)
      throw shape_error(dynamic::text("fg::nn::", has_cell ? "LSTM" : "GRU", ": ", lengths.size(),
                                      " lengths for a batch of ", B));
    for (index_t len : lengths)
      if (len < 1 || len > T)
        throw shape_error(dynamic::text("fg::nn::", has_cell ? "LSTM" : "GRU", ": a length of ",
                                        len, " for sequences of ", T, " steps"));
    const var xp =
        reshape(linear(reshape(x, {T * B, in_}), weight_ih, bias_ih), {T, B, weight_ih.shape()[0]});
    rnn_result r{var(), var::zeros({B, hid_}, x.dtype()), var()};
    if (has_cell)
      r.c = var::zeros({B, hid_}, x.dtype());
    std::vector<var> outputs;
    for (index_t t = 0; t < T; ++t) {
      auto [h, c] = cell(select(xp, 0, t), r.h, r.c);
      index_t active = 0;
      for (index_t len : lengths)
        active += len > t;
      if (lengths.empty() || active == B) {
        r.h = h, r.c = c;
        outputs.push_back(h);
        continue;
      }
      var on = var::empty({B, 1}, x.dtype());  // 1 for the sequences still running
      for (index_t b = 0; b < B; ++b)
        on.set(b, lengths[std::size_t(b)] > t ? 1.0 : 0.0);
      r.h = where(on, h, r.h);
      if (has_cell)
        r.c = where(on, c, r.c);
      outputs.push_back(h * on);
    }
    r.output = stack(outputs, 0);
    return r;
  }
  var hidden_projection(const var& h) const { return linear(h, weight_hh, bias_hh); }
  index_t in_, hid_;

 public:
  var weight_ih, weight_hh, bias_ih, bias_hh;
};

}  // namespace detail

// i, f, g, o = split(x W_ih^T + b_ih + h W_hh^T + b_hh); c' = sig(f) c + sig(i) tanh(g);
// h' = sig(o) tanh(c').
class LSTM : public detail::recurrent_base {
 public:
  LSTM(index_t input, index_t hidden, generator& g, dtype t = dtype::float32)
      : recurrent_base(input, hidden, 4, g, t) {}
  rnn_result run(const var& x, const std::vector<index_t>& lengths = {}) {
    return recurrent_base::run(x, lengths, true, [&](const var& xt, const var& h, const var& c) {
      const var hc = lstm_cell(xt + hidden_projection(h), c);
      return std::pair{slice(hc, 1, 0, hid_), slice(hc, 1, hid_, 2 * hid_)};
    });
  }
  var forward(const var& x) override { return run(x).output; }
};

// r, z = sig(x W_ir + b_ir + h W_hr + b_hr), ...; n = tanh(x W_in + b_in + r (h W_hn + b_hn));
// h' = (1 - z) n + z h.
class GRU : public detail::recurrent_base {
 public:
  GRU(index_t input, index_t hidden, generator& g, dtype t = dtype::float32)
      : recurrent_base(input, hidden, 3, g, t) {}
  rnn_result run(const var& x, const std::vector<index_t>& lengths = {}) {
    return recurrent_base::run(x, lengths, false, [&](const var& xt, const var& h, const var&) {
      const var hp = hidden_projection(h);
      const index_t H = hid_;
      const var r = sigmoid(slice(xt, 1, 0, H) + slice(hp, 1, 0, H));
      const var z = sigmoid(slice(xt, 1, H, 2 * H) + slice(hp, 1, H, 2 * H));
      const var n = tanh(slice(xt, 1, 2 * H, 3 * H) + r * slice(hp, 1, 2 * H, 3 * H));
      return std::pair{(1.0 - z) * n + z * h, var()};
    });
  }
  var forward(const var& x) override { return run(x).output; }
};

}  // namespace fg::nn
