// fg::var on the device: chains and matrix products and their gradients against the host path,
// one launch for a chain's sum with its gradients, accumulation, seeds, and the errors that say
// what is not there.
// Without a device each case reports itself skipped ("no CUDA device").
#include "../dynamic/dynamic_testing.hpp"
#include "../ops/op_table.hpp"
#include "device_testing.hpp"

#include <functional>
#include <vector>

using namespace fg;
using fg::testing::leaf;

namespace {

using loss_fn = std::function<var(const std::vector<var>&)>;

// f of the host leaves xs, and of their copies on the device: the values and every gradient
// agree to rounding, and the device's gradients stay on the device.
void check_device_matches_host(const loss_fn& f, const std::vector<var>& xs, dtype t) {
  std::vector<var> host, dev;
  for (const var& x : xs) {
    var h = var::empty(x.shape(), t);
    for (index_t i = 0; i < x.size(); ++i)
      h.set(i, x.at(i));
    host.push_back(h.requires_grad(true));
    dev.push_back(h.to(fg::cuda).requires_grad(true));
  }
  var yh = f(host), yd = f(dev);
  CHECK(yd.on_device());
  yh.backward();
  yd.backward();
  const double eps = t == dtype::float32 ? 2e-5 : 1e-12;
  CHECK(yd.item() == doctest::Approx(yh.item()).epsilon(eps));
  for (std::size_t k = 0; k < xs.size(); ++k) {
    REQUIRE(dev[k].grad().defined());
    CHECK(dev[k].grad().on_device());
    const var g = dev[k].grad().to(fg::host);
    for (index_t i = 0; i < g.size(); ++i) {
      INFO("input " << k << ", element " << i);
      CHECK(g.at(i) == doctest::Approx(host[k].grad().at(i)).epsilon(eps));
    }
  }
}

}  // namespace

DEVICE_CASE("cuda var: every op of a chain, value and gradient, as on the host") {
  const index_t n = 4099;  // several blocks, and a ragged last one
  for (dtype t : {dtype::float32, dtype::float64}) {
    CAPTURE(dtype_name(t));
    fg::testing::for_each_op(ops::unary_ops{}, [&]<class Op>() {
      CAPTURE(Op::name);
      const auto dom = op_traits<Op>::domain(0);
      check_device_matches_host([](const auto& v) { return sum(apply<Op>(v[0]) * v[0]); },
                                {leaf({n}, dom.lo, dom.hi)}, t);
    });
    fg::testing::for_each_op(ops::binary_ops{}, [&]<class Op>() {
      CAPTURE(Op::name);
      const auto da = op_traits<Op>::domain(0), db = op_traits<Op>::domain(1);
      // And a one-element operand, whose gradient is summed over the elements.
      check_device_matches_host(
          [](const auto& v) { return mean(apply<Op>(v[0], v[1]) + apply<Op>(v[0], v[2])); },
          {leaf({n}, da.lo, da.hi), leaf({n}, db.lo, db.hi), leaf({1}, db.lo + 0.1, db.lo + 0.2)},
          t);
    });
  }
}

DEVICE_CASE("cuda var: matmul and its gradients, 2-D and batched, on both GEMM paths") {
  for (auto path : {gpu::detail::matmul_path::cublas, gpu::detail::matmul_path::tiled}) {
    if (path == gpu::detail::matmul_path::cublas && !FG_HAS_CUBLAS)
      continue;
    gpu::detail::default_matmul_path() = path;
    for (dtype t : {dtype::float32, dtype::float64}) {
      CAPTURE(dtype_name(t));
      check_device_matches_host([](const auto& v) { return sum(tanh(matmul(v[0], v[1])) * 2.0); },
                                {leaf({37, 19}, -1, 1), leaf({19, 23}, -1, 1)}, t);
      // A batch against a shared matrix (whose gradient is summed), either way round, and two
      // batches.
      auto loss = [](const auto& v) { return mean(sigmoid(matmul(v[0], v[1]))); };
      check_device_matches_host(loss, {leaf({3, 17, 9}, -1, 1), leaf({9, 5}, -1, 1)}, t);
      check_device_matches_host(loss, {leaf({17, 9}, -1, 1), leaf({3, 9, 5}, -1, 1)}, t);
      check_device_matches_host(loss, {leaf({3, 17, 9}, -1, 1), leaf({3, 9, 5}, -1, 1)}, t);
    }
  }
  gpu::detail::default_matmul_path() =
      FG_HAS_CUBLAS ? gpu::detail::matmul_path::cublas : gpu::detail::matmul_path::tiled;
}

DEVICE_CASE("cuda var: a chain's sum and all its gradients are one launch") {
  var x = leaf({1 << 20}, -2, 2).to(fg::cuda).requires_grad(true);
  var s = var::from({0.5}, {1}, dtype::float64).to(fg::cuda).requires_grad(true);
  const auto before = gpu::launches();
  var y = sum(log(1.0 + exp(x)) * s + x * x);
  y.backward();  // the gradients came with the value: nothing more runs
  CHECK(gpu::launches() - before == 1);
  CHECK(x.grad().on_device());
}

DEVICE_CASE("cuda var: a computed chain, a seed, accumulation and a retained graph") {
  var xh = leaf({1000}, -1, 1), sh = leaf({1000}, -1, 1).detach();
  var x = xh.to(fg::cuda).requires_grad(true), seed = sh.to(fg::cuda);
  var y = tanh(x) * 3.0;  // computed when backward() needs it
  y.backward(seed, true);
  y.backward(seed);  // a second time: the gradients add up
  var yh = tanh(xh) * 3.0;
  yh.backward(sh);
  const var gd = x.grad().to(fg::host), yd = y.to(fg::host);
  for (index_t i = 0; i < 1000; ++i) {
    CHECK(yd.at(i) == doctest::Approx(yh.at(i)).epsilon(1e-12));
    CHECK(gd.at(i) == doctest::Approx(2 * xh.grad().at(i)).epsilon(1e-12));
  }
  var z = sum(exp(x));  // and a sum's gradient reused with another upstream gradient
  var w = z * 2.0;
  w.backward();
  var check = exp(xh.detach());
  for (index_t i = 0; i < 10; ++i)
    CHECK(x.grad().at(i) == doctest::Approx(gd.at(i) + 2 * check.at(i)).epsilon(1e-12));
}

DEVICE_CASE("cuda var: numbers from the host, with and without gradients") {
  var xh = leaf({777}, -1, 1);
  var x = xh.to(fg::cuda).requires_grad(true);
  var b = var::scalar(0.5, dtype::float64).requires_grad(true);  // a host parameter
  var loss = mean(exp(x) * b) * 3.0;  // a device scalar times a host number: read by value
  loss.backward();
  double want = 0;
  for (index_t i = 0; i < 777; ++i)
    want += std::exp(xh.at(i));
  want /= 777;
  CHECK(loss.item() == doctest::Approx(1.5 * want).epsilon(1e-12));
  REQUIRE(b.grad().defined());
  CHECK(!b.grad().on_device());  // its gradient comes back to the host
  CHECK(b.grad().item() == doctest::Approx(3 * want).epsilon(1e-12));
  CHECK(x.grad().at(5) == doctest::Approx(1.5 * std::exp(xh.at(5)) / 777).epsilon(1e-12));
}

DEVICE_CASE("cuda var: broadcasting and sums over axes, value and gradient, as on the host") {
  for (dtype t : {dtype::float32, dtype::float64}) {
    CAPTURE(dtype_name(t));
    // A layer with a bias row, times a column: both spread, their gradients summed back.
    check_device_matches_host(
        [](const auto& v) { return sum(tanh(matmul(v[0], v[1]) + v[2]) * v[3]); },
        {leaf({300, 5}, -1, 1), leaf({5, 3}, -1, 1), leaf({3}, -1, 1), leaf({300, 1}, -1, 1)}, t);
    check_device_matches_host(
        [](const auto& v) {
          return mean(broadcast_to(v[0], {4, 2, 3}) * v[1]);
        },
        {leaf({2, 1}, -1, 1), leaf({4, 2, 3}, -1, 1)}, t);
    // Sums and means over axes, kept or not, read by further ops.
    check_device_matches_host(
        [](const auto& v) {
          return sum(exp(sum(v[0], {0, 2}))) + sum(mean(v[0], {1}, true) * v[0]) +
                 mean(sum(v[0], {-1}) * 2.0) + mean(v[0], {0, 1, 2}) + sum(v[0], {2, 0, 1}, true);
        },
        {leaf({30, 41, 5}, -1, 1)}, t);
    // A pending chain summed over an axis; a spread operand beside a host number.
    check_device_matches_host(
        [](const auto& v) { return sum(sin(sum(exp(v[0]) * 0.5, {1})) * (v[1] + 2.0)); },
        {leaf({700, 3}, -1, 1), leaf({700, 1}, -1, 1)}, t);
  }
  // Nothing to sum: every result element is still written (as 0).
  var empty = var::zeros({0, 4}).to(fg::cuda);
  const var s = sum(empty, {0}).to(fg::host);
  REQUIRE(s.shape() == extents{4});
  for (index_t i = 0; i < 4; ++i)
    CHECK(s.at(i) == 0.0);
}

DEVICE_CASE("cuda var: what does not run on the device says so") {
  var d = var::from({1, 2, 3, 4}, {2, 2}).to(fg::cuda);
  CHECK_THROWS_WITH_AS(max(d, {0}), doctest::Contains("is on the CUDA device"), autograd_error);
  CHECK_THROWS_WITH_AS(matmul(d, var::from({1, 2, 3, 4}, {2, 2})),
                       doctest::Contains("one is on the host, the other on a device"), shape_error);
  CHECK_THROWS_WITH_AS(d + var::from({1, 2, 3, 4}, {2, 2}),
                       doctest::Contains("operands [2, 2] [2, 2] (host)"), shape_error);
  CHECK_THROWS_WITH_AS(d + var::from({1, 2}, {2}),
                       doctest::Contains("an operand in host memory must be one element"),
                       shape_error);
  // Refused before the device operand is spread: nothing runs, and the shapes are the user's.
  const auto before = gpu::launches();
  CHECK_THROWS_WITH_AS(var::from({1, 2, 3}, {3}).to(fg::cuda) + var::zeros({5, 3}),
                       doctest::Contains("(operands [3] [5, 3] (host))"), shape_error);
  CHECK(gpu::launches() == before);
  CHECK((d * 2.0).to(fg::host).at(3) == 8.0);  // a number is fine
  CHECK(sum(d).item() == 10.0);
}
