// fusegrad/nn/linear.hpp — y = x W^T + b as one op (a GEMM and its two gradient GEMMs), and the
// Linear layer
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/matmul.hpp"
#include "fusegrad/nn/init.hpp"
#include "fusegrad/nn/module.hpp"

#include <type_traits>

#ifdef FUSEGRAD_USE_CBLAS
#include <cblas.h>
#endif

FG_DIAGNOSTICS_BEGIN

namespace fg::nn {

// Whether the layers' matrix products go to the BLAS library the program links, when it was
// built with FUSEGRAD_USE_CBLAS (CMake: link fusegrad::blas); otherwise, or when switched off,
// they run on the library's own GEMM (exec/gemm.hpp), which needs nothing (embedded builds).
inline bool& blas_enabled() {
#ifdef FUSEGRAD_USE_CBLAS
  static bool on = true;
#else
  static bool on = false;
#endif
  return on;
}

namespace detail {
// C[m x n] (+)= op(A) op(B) over contiguous row-major operands, op transposing when asked.
template <class T>
void gemm(index_t m, index_t n, index_t k, const T* a, bool ta, const T* b, bool tb, T* c,
          bool add = false) {
#ifdef FUSEGRAD_USE_CBLAS
  if (blas_enabled() && m && n && k) {
    const auto A = ta ? CblasTrans : CblasNoTrans, B = tb ? CblasTrans : CblasNoTrans;
    const int lda = int(ta ? m : k), ldb = int(tb ? k : n);
    const T beta = add ? T(1) : T(0);
    if constexpr (std::is_same_v<T, float>)
      cblas_sgemm(CblasRowMajor, A, B, int(m), int(n), int(k), 1.f, a, lda, b, ldb, beta, c,
                  int(n));
    else
      cblas_dgemm(CblasRowMajor, A, B, int(m), int(n), int(k), 1.0, a, lda, b, ldb, beta, c,
                  int(n));
    return;
  }
#endif
  // Scratch from the pool: a training step asks for the same sizes every time.
  var ws = var::empty({exec::gemm_blocking<T>::workspace(m, n, k)}, dtype_of<T>);
  dynamic::gemm<T>(m, n, k, a, ta, b, tb, c, add, ws.data<T>());
}
}  // namespace detail

// x [..., in], w [out, in] (PyTorch's layout), b [out] or undefined -> [..., out].
inline var linear(const var& x, const var& w, const var& b = var()) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("linear", {}, {&x, &w, &b},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list&) {
                       return nn::linear(ins[0], ins[1], ins[2]);
                     });
  dynamic::check_dtypes("linear", x, w);
  if (b.defined())
    dynamic::check_dtypes("linear", x, b);
  const extents& sx = x.shape();
  if (w.rank() != 2 || sx.rank() < 1 || sx[sx.rank() - 1] != w.shape()[1] ||
      (b.defined() && !(b.shape() == extents{w.shape()[0]})))
    throw shape_error(dynamic::text("fg::nn::linear(): x is ", sx.str(), ", weight ",
                                    w.shape().str(), ", bias ",
                                    b.defined() ? b.shape().str() : std::string("none"),
                                    "; expected x [..., in], weight [out, in], bias [out]"));
  const index_t in = w.shape()[1], out = w.shape()[0], rows = in ? x.size() / in : 0;
  extents ys = sx;
  ys[ys.rank() - 1] = out;
  var y = var::empty(ys, x.dtype());
  dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    T* py = y.data<T>();
    detail::gemm<T>(rows, out, in, x.data<T>(), false, w.data<T>(), true, py);
    if (b.defined()) {
      const T* pb = b.data<T>();
      for (index_t r = 0; r < rows; ++r)
        for (index_t o = 0; o < out; ++o)
          py[r * out + o] += pb[o];
    }
  });
  std::vector<var> inputs{x, w};
  if (b.defined())
    inputs.push_back(b);
  dynamic::record(y, "linear", inputs, [&](dynamic::node& n) {
    return [x = n.save(x), w = n.save(w), rows, in, out, needs = n.wants()](const var& g) {
      dynamic::var_list grads(needs.size());
      dispatch(g.dtype(), [&](auto z) {
        using T = decltype(z);
        const T* pg = g.data<T>();
        if (needs[0]) {  // dx = g W
          grads[0] = var::empty(x.shape(), g.dtype());
          detail::gemm<T>(rows, in, out, pg, false, w.data<T>(), false,
                          grads[0].template data<T>());
        }
        if (needs[1]) {                                 // dW = g^T x
          grads[1] = var::empty(w.shape(), g.dtype());  // the GEMM writes every element
          detail::gemm<T>(out, in, rows, pg, true, x.data<T>(), false, grads[1].template data<T>());
        }
        if (needs.size() > 2 && needs[2]) {  // db: the column sums of g
          grads[2] = var::zeros({out}, g.dtype());
          T* db = grads[2].template data<T>();
          for (index_t r = 0; r < rows; ++r)
            for (index_t o = 0; o < out; ++o)
              db[o] += pg[r * out + o];
        }
      });
      return grads;
    };
  });
  return y;
}

// A fully connected layer: [..., in] -> [..., out]. Weights as PyTorch initialises them
// (uniform, bound 1 / sqrt(in)), from the generator given.
class Linear : public module {
 public:
  Linear(index_t in, index_t out, generator& g, bool bias = true, dtype t = dtype::float32) {
    weight = register_parameter("weight", var::empty({out, in}, t));
    const double bound = 1.0 / std::sqrt(double(in));
    init::uniform(weight, -bound, bound, g);
    if (bias) {
      this->bias = register_parameter("bias", var::empty({out}, t));
      init::uniform(this->bias, -bound, bound, g);
    }
  }
  var forward(const var& x) override { return linear(x, weight, bias); }
  var weight, bias;
};

}  // namespace fg::nn

FG_DIAGNOSTICS_END
