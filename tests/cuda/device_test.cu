// The CUDA backend on a device: values and gradients against the host path, one launch per fused
// pass, streams, reductions, matrix products. Without a device each case that needs one reports
// itself skipped ("no CUDA device"), and the error paths that need none still run.
#include "../ops/op_table.hpp"
#include "device_testing.hpp"

#include <fusegrad/dynamic.hpp>

using namespace fg;
using fg::testing::fill_uniform;

namespace {

const bool no_device = fg::testing::no_cuda_device();

constexpr index_t table_n = 4099;  // several blocks, and a ragged last one
using V = tensor<double, shape<dyn>>;
using DV = device_tensor<double, shape<dyn>>;

V random_vector(index_t n, double lo, double hi) {
  V v(dims_t<1>{n});
  fill_uniform(v, lo, hi);
  return v;
}
template <class X, class Y> void check_close(const X& got, const Y& want, double eps) {
  REQUIRE(got.size() == want.size());
  for (index_t i = 0; i < got.size(); ++i) {
    if (eps == 0)  // Approx with epsilon 0 never matches: it compares with a strict <
      CHECK(got[i] == want[i]);
    else
      CHECK(got[i] == doctest::Approx(want[i]).epsilon(eps));
  }
}

}  // namespace

TEST_CASE("cuda: errors that need no device") {
  MESSAGE("CUDA devices: " << gpu::device_count());
  // Extents are checked before any CUDA call.
  DV empty;
  const V three(dims_t<1>{3});
  CHECK_THROWS_WITH_AS(empty.copy_from(three),
                       "fg::device_tensor::copy_from(): the host tensor is [3], the device "
                       "tensor is [0]",
                       shape_error);
  device_tensor<float, shape<dyn, dyn>> a(uninitialized, {0, 3}), b(uninitialized, {2, 0});
  CHECK_THROWS_WITH_AS(gpu::matmul(a, b),
                       "fg::gpu::matmul(): inner extents differ: A is [0, 3], B is [2, 0]",
                       shape_error);
  if (no_device) {
    // A CUDA failure names the call and CUDA's error.
    CHECK_THROWS_WITH_AS(DV(dims_t<1>{4}), doctest::Contains(" failed: cudaError"), cuda_error);
    CHECK_THROWS_AS(three.to(fg::cuda), cuda_error);
    CHECK_THROWS_AS(var::from({1, 2}, {2}).to(fg::cuda), cuda_error);
  }
}

DEVICE_CASE("cuda: host to device and back") {
  const V h = random_vector(1003, -1, 1);
  const DV d = h.to(fg::cuda);
  CHECK(d.dims() == h.dims());
  check_close(d.to(fg::host), h, 0);
  DV copy = d;  // a device-side copy
  check_close(copy.to(fg::host), h, 0);
}

DEVICE_CASE("cuda: every op's value and gradient matches the host path") {
  fg::testing::for_each_op(ops::unary_ops{}, []<class Op>() {
    SUBCASE(Op::name) {
      const auto dom = op_traits<Op>::domain(0);
      const V x = random_vector(table_n, dom.lo, dom.hi);
      const DV xd = x.to(fg::cuda);
      const DV yd = apply<Op>(xd);
      const V y = apply<Op>(x);
      check_close(yd.to(fg::host), y, 1e-12);
      const auto [v, g] = value_and_grad(sum(apply<Op>(x) * x), x);
      const auto [vd, gd] = gpu::value_and_grad(sum(apply<Op>(xd) * xd), xd);
      CHECK(vd == doctest::Approx(v).epsilon(1e-12));
      check_close(gd.to(fg::host), g, 1e-12);
    }
  });
  fg::testing::for_each_op(ops::binary_ops{}, []<class Op>() {
    SUBCASE(Op::name) {
      const V a = random_vector(table_n, op_traits<Op>::domain(0).lo, op_traits<Op>::domain(0).hi);
      const V b = random_vector(table_n, op_traits<Op>::domain(1).lo, op_traits<Op>::domain(1).hi);
      const tensor<double, shape<>> s{op_traits<Op>::domain(1).lo + 0.3};
      const DV ad = a.to(fg::cuda), bd = b.to(fg::cuda);
      const auto sd = s.to(fg::cuda);
      const auto [v, ga, gb] = value_and_grad(sum(apply<Op>(a, b)), a, b);
      const auto [vd, gad, gbd] = gpu::value_and_grad(sum(apply<Op>(ad, bd)), ad, bd);
      CHECK(vd == doctest::Approx(v).epsilon(1e-12));
      check_close(gad.to(fg::host), ga, 1e-12);
      check_close(gbd.to(fg::host), gb, 1e-12);
      // A 0-d operand broadcast over the vector: its gradient is accumulated by every thread.
      const auto [w, ga2, gs] = value_and_grad(sum(apply<Op>(a, s)), a, s);
      const auto [wd, gad2, gsd] = gpu::value_and_grad(sum(apply<Op>(ad, sd)), ad, sd);
      CHECK(wd == doctest::Approx(w).epsilon(1e-12));
      check_close(gad2.to(fg::host), ga2, 1e-12);
      check_close(gsd.to(fg::host), gs, 1e-10);
    }
  });
}

DEVICE_CASE("cuda: a deep element-wise expression is one kernel launch, and so is its gradient") {
  const V a = random_vector(1 << 20, -1, 1), b = random_vector(1 << 20, -1, 1);
  const DV ad = a.to(fg::cuda), bd = b.to(fg::cuda);
  auto deep = [](const auto& x, const auto& y) {
    return tanh(x * y + sin(x) * exp(-y)) / (1.0 + x * x) + sqrt(y * y + 1.0) - log1p(x * x);
  };
  DV out(uninitialized, ad.dims());
  const auto before = gpu::launches();
  out = deep(ad, bd);
  CHECK(gpu::launches() - before == 1);
  check_close(out.to(fg::host), V(deep(a, b)), 1e-12);

  DV ga, gb;
  const auto before_grad = gpu::launches();
  const double v = gpu::value_and_grad_into(sum(deep(ad, bd)), std::tie(ga, gb), ad, bd);
  CHECK(gpu::launches() - before_grad == 1);
  const auto [hv, hga, hgb] = value_and_grad(sum(deep(a, b)), a, b);
  CHECK(v == doctest::Approx(hv).epsilon(1e-11));
  check_close(ga.to(fg::host), hga, 1e-12);
  check_close(gb.to(fg::host), hgb, 1e-12);
}

DEVICE_CASE("cuda: a gradient written over a tensor the pass reads") {
  const V a = random_vector(5000, -1, 1), b = random_vector(5000, -1, 1);
  const auto [hv, hga, hgb] = value_and_grad(sum(a * a * b + exp(a)), a, b);
  DV ad = a.to(fg::cuda), gb;
  const DV bd = b.to(fg::cuda);
  const double v = gpu::value_and_grad_into(sum(ad * ad * bd + exp(ad)), std::tie(ad, gb), ad, bd);
  CHECK(v == doctest::Approx(hv).epsilon(1e-11));
  check_close(ad.to(fg::host), hga, 1e-12);  // a's gradient now in a's memory
  check_close(gb.to(fg::host), hgb, 1e-12);
}

DEVICE_CASE("cuda: broadcasting over rows and columns, values and gradients") {
  using M = tensor<double, shape<dyn, dyn>>;
  using DM = device_tensor<double, shape<dyn, dyn>>;
  M x(dims_t<2>{300, 257}), row(dims_t<2>{1, 257}), col(dims_t<2>{300, 1});
  fill_uniform(x, -1, 1);
  fill_uniform(row, -1, 1);
  fill_uniform(col, -1, 1);
  const DM xd = x.to(fg::cuda), rd = row.to(fg::cuda), cd = col.to(fg::cuda);
  const DM yd = xd * rd + sin(cd);
  check_close(yd.to(fg::host), M(x * row + sin(col)), 1e-12);
  const auto [v, gx, gr, gc] = value_and_grad(mean(x * row + sin(col) * x), x, row, col);
  const auto [vd, gxd, grd, gcd] = gpu::value_and_grad(mean(xd * rd + sin(cd) * xd), xd, rd, cd);
  CHECK(vd == doctest::Approx(v).epsilon(1e-12));
  check_close(gxd.to(fg::host), gx, 1e-12);
  check_close(grd.to(fg::host), gr, 1e-10);
  check_close(gcd.to(fg::host), gc, 1e-10);
}

DEVICE_CASE("cuda: reductions over fused expressions") {
  const V x = random_vector(100003, -2, 2);
  const DV xd = x.to(fg::cuda);
  CHECK(gpu::sum(xd * xd + 1.0) == doctest::Approx(double(eval(sum(x * x + 1.0)))).epsilon(1e-12));
  CHECK(gpu::mean(sin(xd)) == doctest::Approx(double(eval(mean(sin(x))))).epsilon(1e-12));
  CHECK(gpu::max(xd) == double(eval(max(x))));
  CHECK(gpu::min(-xd) == double(eval(min(-x))));
}

DEVICE_CASE("cuda: matmul, through cuBLAS and through the tiled kernel") {
  using M = tensor<double, shape<dyn, dyn>>;
  M a(dims_t<2>{70, 45}), b(dims_t<2>{45, 33});
  fill_uniform(a, -1, 1);
  fill_uniform(b, -1, 1);
  const M want = matmul(a, b);
  const auto ad = a.to(fg::cuda), bd = b.to(fg::cuda);
  for (auto path : {gpu::detail::matmul_path::cublas, gpu::detail::matmul_path::tiled}) {
    if (path == gpu::detail::matmul_path::cublas && !FG_HAS_CUBLAS)
      continue;
    gpu::detail::default_matmul_path() = path;
    check_close(gpu::matmul(ad, bd).to(fg::host), want, 1e-12);
  }
  gpu::detail::default_matmul_path() =
      FG_HAS_CUBLAS ? gpu::detail::matmul_path::cublas : gpu::detail::matmul_path::tiled;
}

DEVICE_CASE("cuda: evaluation goes on the user's stream") {
  cudaStream_t s = nullptr;
  gpu::check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
  {
    gpu::stream_guard on(s);
    CHECK(gpu::current_stream() == s);
    const V x = random_vector(1 << 16, -1, 1);
    const DV xd = x.to(fg::cuda);
    CHECK(xd.stream() == s);
    const DV y = exp(xd) * 2.0;
    const auto [v, g] = gpu::value_and_grad(sum(exp(xd) * xd), xd);
    check_close(y.to(fg::host), V(exp(x) * 2.0), 1e-12);
    const auto [hv, hg] = value_and_grad(sum(exp(x) * x), x);
    CHECK(v == doctest::Approx(hv).epsilon(1e-12));
    check_close(g.to(fg::host), hg, 1e-12);
  }
  CHECK(gpu::current_stream() == nullptr);
  gpu::check(cudaStreamDestroy(s), "cudaStreamDestroy");
}
