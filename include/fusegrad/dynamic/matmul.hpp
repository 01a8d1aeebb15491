// fusegrad/dynamic/matmul.hpp — matrix products of vars: 2-D, and batched over leading axes
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/elementwise.hpp"
#include "fusegrad/exec/gemm.hpp"

#include <string>
#include <vector>

FG_DIAGNOSTICS_BEGIN

namespace fg {

namespace dynamic {

// C[m x n] (+)= op(A) op(B) over contiguous row-major operands, op transposing when asked, on
// the library's GEMM; `ws` holds exec::gemm_blocking<T>::workspace(m, n, k) elements.
template <class T>
void gemm(index_t m, index_t n, index_t k, const T* a, bool ta, const T* b, bool tb, T* c, bool add,
          T* ws) {
  exec::gemm<T>(m, n, k, a, ta ? 1 : std::ptrdiff_t(k), ta ? std::ptrdiff_t(m) : 1, b,
                tb ? 1 : std::ptrdiff_t(n), tb ? std::ptrdiff_t(k) : 1, c, n, add, ws);
}

// C[b] = op(A[b]) op(B[b]) for every batch b, where op transposes when asked; a 2-D operand is
// shared by every batch. `c` is contiguous [batch, m, n], or, when not `c_batched`, one [m, n]
// holding the sum over the batches (the gradient of a shared operand).
// Batches with a C of their own run on several threads (attention's batch x heads: each product
// alone is too small to be cut); a shared C sums the batches in order, each product threaded.
template <class T>
void batched_gemm(index_t batch, index_t m, index_t n, index_t k, const T* a, bool a_batched,
                  bool ta, const T* b, bool b_batched, bool tb, T* c, bool c_batched = true) {
  const index_t macs = m * n * k;
  const index_t grain = c_batched ? fg::detail::chunk_indices(batch * macs, macs) : batch;
  parallel_for(0, batch, grain, [&](index_t i0, index_t i1) {
    std::vector<T> ws(exec::gemm_blocking<T>::workspace(m, n, k));
    for (index_t i = i0; i < i1; ++i) {
      const T* ai = a + (a_batched ? i * m * k : 0);
      const T* bi = b + (b_batched ? i * k * n : 0);
      gemm<T>(m, n, k, ai, ta, bi, tb, c + (c_batched ? i * m * n : 0), !c_batched && i > 0,
              ws.data());
    }
  });
}

// The elements of x where they are, on the host or a device (data<T>() is for the host only).
template <class T> T* elements(const var& x) {
  return x.ready().template elements<T>();
}

// batched_gemm on `dev` (null: the host).
template <class T>
void batched_gemm_on(const device_backend* dev, index_t batch, index_t m, index_t n, index_t k,
                     const T* a, bool a_batched, bool ta, const T* b, bool b_batched, bool tb, T* c,
                     bool c_batched = true) {
  if (!dev)
    return batched_gemm<T>(batch, m, n, k, a, a_batched, ta, b, b_batched, tb, c, c_batched);
  for (index_t i = 0; i < batch; ++i)
    dev->gemm(dtype_of<T>, m, n, k, a + (a_batched ? i * m * k : 0), ta,
              b + (b_batched ? i * k * n : 0), tb, c + (c_batched ? i * m * n : 0),
              !c_batched && i > 0);
}

}  // namespace dynamic

// [m, k] x [k, n] -> [m, n]; with leading batch axes on either side ([..., m, k] x [..., k, n],
// equal batch extents, or one side 2-D and shared) -> [..., m, n].
inline var matmul(const var& a, const var& b) {
  if (dynamic::tracer* t = dynamic::tracing()) [[unlikely]]
    return t->record("matmul", {}, {&a, &b},
                     [](fg::dynamic::replay_inputs ins, const fg::dynamic::attr_list&) {
                       return matmul(ins[0], ins[1]);
                     });
  dynamic::check_dtypes("matmul", a, b);
  const extents &sa = a.shape(), &sb = b.shape();
  auto fail = [&](const char* why) {
    throw shape_error(
        dynamic::text("fg::matmul(): A is ", sa.str(), ", B is ", sb.str(), "; ", why));
  };
  if (sa.rank() < 2 || sb.rank() < 2)
    fail("both must have at least 2 axes");
  const index_t m = sa[sa.rank() - 2], k = sa[sa.rank() - 1], n = sb[sb.rank() - 1];
  if (sb[sb.rank() - 2] != k)
    fail("A's columns must equal B's rows");
  const bool ab = sa.rank() > 2, bb = sb.rank() > 2;
  if (ab && bb && sa.rank() != sb.rank())
    fail("batched operands must have the same batch axes");
  const extents& lead = ab ? sa : sb;
  extents out = lead;
  out[out.rank() - 2] = m;
  out[out.rank() - 1] = n;
  if (ab && bb)
    for (std::size_t i = 0; i + 2 < sa.rank(); ++i)
      if (sa[i] != sb[i])
        fail("batched operands must have the same batch axes");
  const dynamic::device_backend* dev = a.get().device();  // on the host, or both on a device
  if (b.get().device() != dev)
    fail("one is on the host, the other on a device");
  const index_t batch = m * n != 0 ? out.size() / (m * n) : 0;
  var c = dynamic::empty_on(dev, out, a.dtype());
  dispatch(a.dtype(), [&](auto z) {
    using T = decltype(z);
    dynamic::batched_gemm_on<T>(dev, batch, m, n, k, dynamic::elements<T>(a), ab, false,
                                dynamic::elements<T>(b), bb, false, dynamic::elements<T>(c));
  });
  dynamic::record(c, "matmul", {a, b}, [&](dynamic::node& nd) {
    return [a = nd.save(a), b = nd.save(b), m, n, k, batch, ab, bb, dev,
            needs = nd.wants()](const var& g) {
      using dynamic::elements;
      dynamic::var_list grads(2);
      dispatch(g.dtype(), [&](auto z) {
        using T = decltype(z);
        // With no batch the products write nothing: the gradients are zeros.
        auto fresh = [&](const extents& e) {
          return batch ? dynamic::empty_on(dev, e, g.dtype())
                       : dynamic::zeros_on(dev, e, g.dtype());
        };
        if (needs[0]) {  // dA = dC B^T, summed over the batches when A is shared
          grads[0] = fresh(a.shape());
          dynamic::batched_gemm_on<T>(dev, batch, m, k, n, elements<T>(g), true, false,
                                      elements<T>(b), bb, true, elements<T>(grads[0]), ab || !bb);
        }
        if (needs[1]) {  // dB = A^T dC, summed over the batches when B is shared
          grads[1] = fresh(b.shape());
          dynamic::batched_gemm_on<T>(dev, batch, k, n, m, elements<T>(a), ab, true, elements<T>(g),
                                      true, false, elements<T>(grads[1]), bb || !ab);
        }
      });
      return grads;
    };
  });
  return c;
}

}  // namespace fg

FG_DIAGNOSTICS_END
