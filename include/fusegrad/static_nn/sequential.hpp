// fusegrad/static_nn/sequential.hpp — layers applied in order; their parameters, concatenated
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/static_nn/init.hpp"

#include <tuple>
#include <utility>

FG_DIAGNOSTICS_BEGIN

namespace fg::static_nn {

// sequential<dense<float, 64, 32>, relu, dense<float, 32, 10>>: calling it builds one static
// expression of the whole network, so a training step differentiates it at compile time.
template <class... Layers> struct sequential {
  static_assert(sizeof...(Layers) > 0, "fg::static_nn::sequential: give at least one layer");
  std::tuple<Layers...> layers;

  template <std::size_t I> auto& layer() { return std::get<I>(layers); }
  template <std::size_t I> const auto& layer() const { return std::get<I>(layers); }

  // Initialises every layer that has an init(generator&), in order, from one stream.
  void init(generator& g) {
    std::apply([&](auto&... l) { (init_one(l, g), ...); }, layers);
  }
  template <class X> auto operator()(X&& x) const { return forward<0>(std::forward<X>(x)); }
  auto parameters() {
    return std::apply([](auto&... l) { return std::tuple_cat(l.parameters()...); }, layers);
  }
  auto parameters() const {
    return std::apply([](const auto&... l) { return std::tuple_cat(l.parameters()...); }, layers);
  }

 private:
  template <class L> static void init_one(L& l, generator& g) {
    if constexpr (requires { l.init(g); })
      l.init(g);
  }
  template <std::size_t I, class X> auto forward(X&& x) const {
    if constexpr (I + 1 == sizeof...(Layers))
      return std::get<I>(layers)(std::forward<X>(x));
    else
      return forward<I + 1>(std::get<I>(layers)(std::forward<X>(x)));
  }
};

}  // namespace fg::static_nn

FG_DIAGNOSTICS_END
