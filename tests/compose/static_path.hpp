// tests/compose/static_path.hpp — what the generated translation units call: leaf tensors of a
// tree's extents (static or fg::dyn), and each static entry point run over an expression
// SPDX-License-Identifier: MIT
#pragma once

#include "paths.hpp"

#include <array>
#include <tuple>
#include <utility>

namespace compose {

template <fg::index_t> inline constexpr fg::index_t dyn_extent = fg::dyn;

// A leaf tensor of extents E..., static or all fg::dyn, holding `a`'s values.
template <class T, bool Dyn, fg::index_t... E> auto leaf(const array& a) {
  if constexpr (Dyn && sizeof...(E) > 0) {
    fg::tensor<T, fg::shape<dyn_extent<E>...>> x(fg::dims_t<sizeof...(E)>{E...});
    fill(x, a);
    return x;
  } else {
    fg::tensor<T, fg::shape<E...>> x;
    fill(x, a);
    return x;
  }
}

template <class G> std::vector<std::vector<double>> grads_of(const G& g) {
  if constexpr (fg::is_tensor_v<G>)
    return {to_vector(g)};
  else
    return std::apply(
        [](const auto&... x) { return std::vector<std::vector<double>>{to_vector(x)...}; }, g);
}

// The value and gradients of f() with respect to xs, by entry point `how`: 0 fg::value_and_grad;
// 1 fg::value_and_grad_into with the first gradient written over the first tensor itself; 2
// fg::eval of fg::gradient(f(), x) per tensor; 3 fg::vjp with a seed of one.
template <class F, class... X> result differentiate(int how, F f, X&... xs) {
  using T = typename std::remove_cvref_t<decltype(f())>::value_type;
  result r;
  switch (how) {
    case 0: {
      auto vg = fg::value_and_grad(f(), xs...);
      r.value = double(std::get<0>(vg));
      std::apply([&](auto, const auto&... g) { r.grads = {to_vector(g)...}; }, vg);
      break;
    }
    case 1: {
      std::tuple<X...> grads;  // the first is not used: xs' first tensor takes its place
      auto& first = std::get<0>(std::tie(xs...));
      auto targets =
          std::apply([&](auto&, auto&... rest) { return std::tie(first, rest...); }, grads);
      r.value = double(fg::value_and_grad_into(f(), targets, xs...));
      r.grads = std::apply(
          [](const auto&... g) { return std::vector<std::vector<double>>{to_vector(g)...}; },
          targets);
      break;
    }
    case 2:
      r.value = double(fg::eval(f()));
      r.grads = {to_vector(fg::eval(fg::gradient(f(), xs)))...};
      break;
    case 3: {
      fg::tensor<T, fg::shape<>> one;
      one[0] = T(1);
      r.value = double(fg::eval(f()));
      r.grads = grads_of(fg::vjp(f(), one, xs...));
      break;
    }
  }
  return r;
}

// A kernel-form tree through fg::kernel: its leaves as flat vars of `type`.
template <class K, std::size_t N>
result run_kernel(const K& k, fg::dtype type, const std::vector<array>& in,
                  const std::array<int, N>& leaves) {
  std::array<fg::var, N> v;
  for (std::size_t i = 0; i < N; ++i)
    v[i] = to_var(in[std::size_t(leaves[i])], type);
  fg::var y = std::apply([&](const auto&... x) { return k(x...); }, v);
  result r;
  r.value = y.item();
  y.backward();
  for (const auto& x : v) {
    std::vector<double> g(std::size_t(x.size()), 0.0);
    if (x.grad().defined())
      for (std::size_t i = 0; i < g.size(); ++i)
        g[i] = x.grad().at(fg::index_t(i));
    r.grads.push_back(std::move(g));
  }
  return r;
}

}  // namespace compose
