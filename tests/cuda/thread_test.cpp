// The per-element functions a CUDA thread runs (fusegrad/cuda/thread.hpp), run here on the host
// over every element in turn: the device planner and index arithmetic checked against the host
// path, on any machine, GPU or not.
#include "../testing.hpp"

#include <fusegrad/cuda/thread.hpp>

#include <vector>

using namespace fg;
using fg::testing::fill_uniform;

namespace {

template <class T, class S> expr::device_view<T, S> device_leaf(const tensor<T, S>& t) {
  return {{}, t.data(), extents_holder<S>(t.dims())};
}

// What assign_kernel does, one thread after another.
template <class E> auto emulate_assign(const E& e) {
  using T = typename E::value_type;
  constexpr std::size_t R = E::shape_type::rank;
  const auto d = e.dims();
  exec::evaluator<E, R, exec::device_forward_mode> ev(e, d);
  std::vector<T> out(size_of(d));
  auto k = ev.kernel();
  if (ev.dense()) {
    k.row(dims_t<R>{}, true);
    for (index_t i = 0; i < out.size(); ++i)
      exec::assign_element<T, R, true>(k, d, out.data(), i);
  } else {
    for (index_t i = 0; i < out.size(); ++i)
      exec::assign_element<T, R, false>(k, d, out.data(), i);
  }
  return std::pair{out, ev.dense()};
}

// What value_and_grad_into plans and gradient_kernel does, one thread after another.
template <class F, class T> T emulate_gradient(const F& f, std::vector<exec::target<T>>& items) {
  using root = fg::detail::gradient_root<F>;
  constexpr std::size_t R = root::rank;
  const auto d = root::dims(f);
  exec::evaluator<typename root::node, R, exec::device_gradient_mode> ev(root::of(f), d);
  exec::targets<T> tg{items.data(), items.size(), 0};
  fg::detail::plan_phase(ev, tg, 0);
  fg::detail::own_buffers<T, fg::detail::host_memory<T>> own(items.data(), items.size());
  own.take();
  fg::detail::plan_phase(ev, tg, 1);
  for (auto& t : items)
    if (fg::detail::needs_zero(t))
      std::fill(t.grad, t.grad + t.size, T(0));
  const T scale = root::template scale<T>(f);
  exec::constant_seed<T> seed{scale};
  T total(0);
  const bool flat = ev.dense();
  for (index_t i = 0; i < size_of(d); ++i) {
    auto k = ev.kernel();  // each thread has its own copy
    auto s = seed.kernel();
    if (flat) {
      k.row(dims_t<R>{}, true);
      total += exec::gradient_element<T, R, true>(k, s, d, i);
    } else {
      total += exec::gradient_element<T, R, false>(k, s, d, i);
    }
  }
  own.finish();
  return scale * total;
}

}  // namespace

TEST_CASE("cuda thread bodies: a flat pass gives fg::eval's values") {
  tensor<double, shape<dyn>> a(dims_t<1>{1000}), b(dims_t<1>{1000});
  fill_uniform(a, -2, 2);
  fill_uniform(b, 0.5, 2);
  auto [out, flat] =
      emulate_assign(device_leaf(a) * device_leaf(b) + sin(device_leaf(a)) * exp(-device_leaf(b)));
  CHECK(flat);
  tensor<double, shape<dyn>> want = a * b + sin(a) * exp(-b);
  for (index_t i = 0; i < want.size(); ++i)
    CHECK(out[i] == doctest::Approx(want[i]).epsilon(1e-14));
}

TEST_CASE("cuda thread bodies: broadcast operands index rows as the host pass does") {
  tensor<double, shape<dyn, dyn, dyn>> a(dims_t<3>{3, 5, 7});
  tensor<double, shape<dyn, dyn>> row(dims_t<2>{1, 7}), col(dims_t<2>{5, 1});
  tensor<double, shape<>> s{0.25};
  fill_uniform(a, -1, 1);
  fill_uniform(row, -1, 1);
  fill_uniform(col, -1, 1);
  auto [out, flat] =
      emulate_assign(device_leaf(a) * device_leaf(row) + tanh(device_leaf(col)) - device_leaf(s));
  CHECK_FALSE(flat);
  tensor<double, shape<dyn, dyn, dyn>> want = a * row + tanh(col) - s;
  REQUIRE(out.size() == want.size());
  for (index_t i = 0; i < want.size(); ++i)
    CHECK(out[i] == doctest::Approx(want[i]).epsilon(1e-14));
}

TEST_CASE("cuda thread bodies: value and gradient match fg::value_and_grad") {
  using M = tensor<double, shape<dyn, dyn>>;
  M a(dims_t<2>{6, 9}), b(dims_t<2>{6, 9}), c(dims_t<2>{1, 9}), d(dims_t<2>{6, 1});
  fill_uniform(a, -1, 1);
  fill_uniform(b, -1, 1);
  fill_uniform(c, -1, 1);
  fill_uniform(d, -1, 1);
  const auto [v, ga, gb, gc, gd] =
      value_and_grad(mean(a * b + sin(c) * exp(-d) + a * a), a, b, c, d);

  const auto A = device_leaf(a), B = device_leaf(b), C = device_leaf(c), D = device_leaf(d);
  M ea(a.dims()), eb(b.dims()), ec(c.dims()), ed(d.dims());
  // Seed the outputs with garbage: the plan must store or zero every element.
  for (M* g : {&ea, &eb, &ec, &ed})
    g->fill(7.0);
  std::vector<exec::target<double>> items{{a.data(), ea.data(), a.size()},
                                          {b.data(), eb.data(), b.size()},
                                          {c.data(), ec.data(), c.size()},
                                          {d.data(), ed.data(), d.size()}};
  const double ev = emulate_gradient(mean(A * B + sin(C) * exp(-D) + A * A), items);
  CHECK(ev == doctest::Approx(v).epsilon(1e-13));
  // c and d are broadcast: their gradients accumulate (atomically on a device).
  CHECK(items[2].accumulates);
  CHECK(items[3].accumulates);
  CHECK_FALSE(items[0].accumulates);
  auto same = [](const M& x, const M& y) {
    for (index_t i = 0; i < x.size(); ++i)
      CHECK(x[i] == doctest::Approx(y[i]).epsilon(1e-13));
  };
  same(ea, ga);
  same(eb, gb);
  same(ec, gc);
  same(ed, gd);
}

TEST_CASE("cuda planning: a one-element operand is a broadcast leaf, not a uniform subtree") {
  // The host computes a one-element subtree once per pass; thousands of device threads cannot
  // share that, so the device plan reads it per element and accumulates its gradient.
  tensor<float, shape<>> s{2.0f};
  tensor<float, shape<dyn>> x(dims_t<1>{100});
  fill_uniform(x, -1, 1);
  const auto e = sum(device_leaf(x) * exp(device_leaf(s)));
  using one = decltype(exp(device_leaf(s)));
  static_assert(exec::uniform_v<one>);
  static_assert(std::is_same_v<exec::operand_evaluator<one, 1, exec::device_gradient_mode>,
                               exec::evaluator<one, 1, exec::device_gradient_mode>>);
  tensor<float, shape<>> gs;
  tensor<float, shape<dyn>> gx(x.dims());
  std::vector<exec::target<float>> items{{s.data(), gs.data(), 1}, {x.data(), gx.data(), 100}};
  const float v = emulate_gradient(e, items);
  const auto [hv, hs, hx] = value_and_grad(sum(x * exp(s)), s, x);
  CHECK(v == doctest::Approx(hv).epsilon(1e-5));
  CHECK(gs[0] == doctest::Approx(hs[0]).epsilon(1e-5));
  for (index_t i = 0; i < 100; ++i)
    CHECK(gx[i] == doctest::Approx(hx[i]).epsilon(1e-6));
}

TEST_CASE("cuda: what fuses into one kernel is known at compile time") {
  tensor<float, shape<dyn>> x(dims_t<1>{4});
  const auto X = device_leaf(x);
  static_assert(exec::device_fusable_v<decltype(X * 2.0f + sin(X))>);
  static_assert(!exec::device_fusable_v<decltype(X * sum(X))>);  // a reduction inside
  static_assert(!exec::device_fusable_v<decltype(x * 2.0f)>);    // a host tensor
  dims_t<3> idx{};
  CHECK(exec::split_index(dims_t<3>{2, 3, 4}, 17, idx) == 1);
  CHECK(idx[0] == 1);
  CHECK(idx[1] == 1);
}
