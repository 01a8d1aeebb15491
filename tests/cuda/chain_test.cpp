// A dynamic chain in the form a CUDA thread runs it (fusegrad/cuda/chain.hpp), run here on the
// host one element after another: values and gradients against the host's fused pass, for every
// op a chain can hold, on any machine, GPU or not.
#include "../dynamic/dynamic_testing.hpp"
#include "../ops/op_table.hpp"

#include <fusegrad/cuda/chain.hpp>

#include <vector>

using namespace fg;
using fg::testing::leaf;

namespace {

// What the device's sweep does, one thread after another: the chain's values, and its leaves'
// gradients for the result's gradient g, against the host's; `y` is the pending result.
void check_chain(const var& y, const var& g) {
  REQUIRE(y.get().pending());
  dynamic::var_list inputs;
  const dynamic::fused_program p = dynamic::plan_fused(y.get(), inputs);
  const dynamic::var_list expected = dynamic::fused_sweep(p, &g, nullptr, nullptr);
  // The device writes each wanted leaf's gradient; a broadcast one is summed.
  std::vector<std::vector<double>> grads(p.leaves.size());
  std::vector<void*> where(p.leaves.size(), nullptr);
  for (std::size_t k = 0; k < p.leaves.size(); ++k)
    if (p.leaves[k].wants) {
      grads[k].assign(p.leaves[k].shape.size(), 0.0);
      where[k] = grads[k].data();
    }
  const auto c = gpu::chain::make<double>(p, where.data());
  std::vector<double> vals(c.steps), adj(c.steps), ladj(c.leaves), value(p.n);
  for (index_t i = 0; i < p.n; ++i) {
    value[i] = gpu::chain::forward_element(c, i, vals.data());
    gpu::chain::backward_element(c, i, vals.data(), g.at(i), adj.data(), ladj.data());
    for (unsigned k = 0; k < c.leaves; ++k)
      if (double* d = c.l[k].grad)
        d[c.l[k].broadcast ? 0 : i] += ladj[k];
  }
  for (index_t i = 0; i < p.n; ++i)  // (reading y computes it on the host)
    CHECK(value[i] == doctest::Approx(y.at(i)).epsilon(1e-13));
  REQUIRE(expected.size() == grads.size());
  for (std::size_t k = 0; k < grads.size(); ++k) {
    CHECK(expected[k].defined() == p.leaves[k].wants);
    for (std::size_t i = 0; i < grads[k].size(); ++i) {
      INFO("leaf " << k << ", element " << i);
      CHECK(grads[k][i] == doctest::Approx(expected[k].at(index_t(i))).epsilon(1e-12));
    }
  }
}

}  // namespace

TEST_CASE("cuda chain / every op a chain holds, as a device thread runs it") {
  const index_t n = 37;
  var g = leaf({n}, -1, 1).detach();
  fg::testing::for_each_op(ops::unary_ops{}, [&]<class Op>() {
    CAPTURE(Op::name);
    const auto dom = op_traits<Op>::domain(0);
    var x = leaf({n}, dom.lo, dom.hi);
    check_chain(apply<Op>(x), g);
  });
  // (apply_computed: apply() converts a comparison's result to bool, which no chain holds;
  // the chain's form of the op is what a device thread runs.)
  auto binary = [&]<class Op>() {
    CAPTURE(Op::name);
    const auto da = op_traits<Op>::domain(0), db = op_traits<Op>::domain(1);
    var a = leaf({n}, da.lo, da.hi), b = leaf({n}, db.lo, db.hi);
    check_chain(dynamic::apply_computed<Op>(a, b), g);
    var s = leaf({1}, db.lo + 0.1, db.lo + 0.2);  // a one-element operand: its gradient is summed
    check_chain(dynamic::apply_computed<Op>(a, s), g);
  };
  fg::testing::for_each_op(ops::binary_ops{}, binary);
  fg::testing::for_each_op(ops::comparison_ops{}, binary);
  var c = var::from({1, 0}, {2}, dtype::float64), x = leaf({2}, -1, 1), z = leaf({2}, -1, 1);
  check_chain(where(c, x * 2.0, z), leaf({2}, -1, 1).detach());
}

TEST_CASE("cuda chain / a chain with shared steps, numbers and an operand used twice") {
  var a = leaf({300}, 0.5, 2), b = leaf({300}, -1, 1), s = leaf({1}, 0.5, 1.5);
  var t = sin(b) * a;  // used twice
  var y = t * t + exp(-b) / a - pow(a, 2.5) * s + t + 3.0;
  check_chain(y, leaf({300}, -1, 1).detach());
  var k = var::from({0.5}, {1}, dtype::float64);  // a constant: no gradient wanted
  check_chain(tanh(a * k) + b, leaf({300}, -1, 1).detach());
}

TEST_CASE("cuda chain / on a device, host operands travel by value, even for one element") {
  // A one-element result: its host number is not a broadcast leaf, and must still not be read
  // through a host address on the device.
  var z = leaf({1}, -1, 1), k = leaf({2, 3}, -1, 1);
  const dynamic::device_backend elsewhere{};  // never called: only its address matters
  for (var y : {exp(z) * 2.0, (k + 1.0) * 3.0}) {
    dynamic::var_list inputs;
    dynamic::fused_program p = dynamic::plan_fused(y.get(), inputs);
    p.device = &elsewhere;  // as if the vars were on a device: every leaf here is a number
    const auto c = gpu::chain::make<double>(p, nullptr);
    for (unsigned j = 0; j < c.leaves; ++j) {
      CHECK(c.l[j].ptr == nullptr);
      CHECK(c.l[j].value == static_cast<const double*>(p.leaves[j].data->bytes)[0]);
    }
  }
}

TEST_CASE("cuda chain / steps made under no_grad pass no gradient") {
  var a = leaf({5}, -1, 1), b = leaf({5}, -1, 1);
  var d;
  {
    no_grad off;
    d = exp(a) * 2.0;
  }
  check_chain(d * b + a, leaf({5}, -1, 1).detach());
}
