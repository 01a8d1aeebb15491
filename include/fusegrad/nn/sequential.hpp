// fusegrad/nn/sequential.hpp — Sequential (layers applied in order, named 0, 1, ... as in
// PyTorch) and Flatten
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/layout.hpp"
#include "fusegrad/nn/module.hpp"

#include <memory>
#include <string>
#include <type_traits>
#include <utility>

FG_DIAGNOSTICS_BEGIN

namespace fg::nn {

// [N, d1, d2, ...] -> [N, d1 d2 ...].
class Flatten : public module {
 public:
  var forward(const var& x) override {
    if (x.rank() < 1)
      throw shape_error("fg::nn::Flatten: the input needs a batch axis, it is 0-d");
    const index_t n = x.shape()[0];
    return reshape(x, {n, n ? x.size() / n : 0});
  }
};

class Sequential : public module {
 public:
  // The layers, by value (each is moved into the model) or as shared pointers.
  template <class... M> explicit Sequential(M&&... layers) { (add(std::forward<M>(layers)), ...); }
  template <class M> void add(M&& layer) {
    if constexpr (requires { typename std::remove_cvref_t<M>::element_type; })
      layers_.push_back(register_module(std::to_string(layers_.size()), std::forward<M>(layer)));
    else
      layers_.push_back(
          register_module(std::to_string(layers_.size()),
                          std::make_shared<std::remove_cvref_t<M>>(std::forward<M>(layer))));
  }
  var forward(const var& x) override {
    var y = x;
    for (auto& m : layers_)
      y = m->forward(y);
    return y;
  }
  std::size_t size() const { return layers_.size(); }
  module& operator[](std::size_t i) { return *layers_.at(i); }

 private:
  std::vector<std::shared_ptr<module>> layers_;
};

}  // namespace fg::nn

FG_DIAGNOSTICS_END
