// fusegrad/nn/module.hpp — fg::nn::module: a layer or model on the dynamic path, with named
// parameters (its state dict), sub-modules and a train/eval mode
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/dynamic/tape.hpp"
#include "fusegrad/dynamic/var.hpp"

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

FG_DIAGNOSTICS_BEGIN

namespace fg::nn {

// The names follow PyTorch's (`0.weight`, `fc.bias`), so a state dict saved here loads there.
using state_dict = std::map<std::string, var>;

class module {
 public:
  virtual ~module() = default;
  // The layer's function of one input; a model with several inputs takes them as members.
  virtual var forward(const var& x) = 0;
  var operator()(const var& x) { return forward(x); }

  // Every parameter, sub-modules' included, as ("name", handle); the handles share the
  // elements, so an optimiser given them updates the model.
  std::vector<std::pair<std::string, var>> named_parameters() const {
    std::vector<std::pair<std::string, var>> out;
    walk("", [&](const std::string& prefix, const module& m) {
      for (const auto& [name, p] : m.params_)
        out.emplace_back(prefix + name, p);
    });
    return out;
  }
  std::vector<var> parameters() const {
    std::vector<var> out;
    for (auto& [name, p] : named_parameters())
      out.push_back(p);
    return out;
  }
  // Parameters and buffers (BatchNorm's running statistics): what a saved model holds.
  nn::state_dict state_dict() const {
    std::vector<std::pair<std::string, var>> all;
    walk("", [&](const std::string& prefix, const module& m) {
      for (const auto* list : {&m.params_, &m.buffers_})
        for (const auto& [name, v] : *list)
          all.emplace_back(prefix + name, v);
    });
    return {all.begin(), all.end()};
  }
  // Copies each tensor of `sd` into the one of that name. Every name must be present on both
  // sides with the same shape and dtype; the message names the first that is not.
  // Copies every tensor of sd into the model's, all or nothing: a state dict that does not fit
  // (check_state_dict throws) leaves the model as it was.
  void load_state_dict(const nn::state_dict& sd) {
    check_state_dict(sd);
    for (const auto& [name, dst] : state_dict())
      var(dst).copy_from(sd.at(name));  // a handle on the model's elements
  }
  // Throws, naming the tensor, unless sd has exactly this model's tensors, shapes and dtypes.
  void check_state_dict(const nn::state_dict& sd) const {
    const nn::state_dict mine = state_dict();
    for (const auto& [name, dst] : mine) {
      auto it = sd.find(name);
      if (it == sd.end())
        throw std::invalid_argument(dynamic::text("fg::nn::module::load_state_dict(): '", name,
                                                  "' is missing from the state dict"));
      const var& src = it->second;
      if (!(src.shape() == dst.shape()) || src.dtype() != dst.dtype())
        throw shape_error(dynamic::text("fg::nn::module::load_state_dict(): '", name, "' is ",
                                        src.shape().str(), " ", dtype_name(src.dtype()),
                                        " in the state dict, ", dst.shape().str(), " ",
                                        dtype_name(dst.dtype()), " in the model"));
    }
    for (const auto& [name, src] : sd)
      if (!mine.count(name))
        throw std::invalid_argument(dynamic::text("fg::nn::module::load_state_dict(): '", name,
                                                  "' is not a tensor of this model"));
  }

  // Training mode (the default) or evaluation mode, for this module and every sub-module:
  // Dropout and BatchNorm behave differently in each.
  void train(bool on = true) {
    training_ = on;
    for (auto& [name, m] : children_)
      m->train(on);
  }
  void eval() { train(false); }
  bool training() const { return training_; }
  // The random generators the model draws from while training (Dropout's masks), sub-modules'
  // included, as ("name", shared handle): checkpoints save their states, so a resumed run draws
  // the masks the uninterrupted one would have.
  std::vector<std::pair<std::string, std::shared_ptr<generator>>> named_generators() const {
    std::vector<std::pair<std::string, std::shared_ptr<generator>>> out;
    walk("", [&](const std::string& prefix, const module& m) {
      for (const auto& [name, g] : m.generators_)
        out.emplace_back(prefix + name, g);
    });
    return out;
  }

  // Drops every parameter's accumulated gradient.
  void zero_grad() {
    for (auto& [name, p] : named_parameters())
      p.zero_grad();
  }

 protected:
  module() = default;
  // Registers a tensor the optimiser updates (it is made a leaf that requires a gradient).
  var register_parameter(std::string name, var v) {
    v.requires_grad(true);
    params_.emplace_back(std::move(name), v);
    return v;
  }
  // Registers state that is saved but not trained.
  var register_buffer(std::string name, var v) {
    buffers_.emplace_back(std::move(name), v);
    return v;
  }
  // Registers a generator the module draws from while training. Shared, so that the module can
  // be moved (into a Sequential) without the registration dangling.
  std::shared_ptr<generator> register_generator(std::string name, std::shared_ptr<generator> g) {
    generators_.emplace_back(std::move(name), g);
    return g;
  }
  template <class M> std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> m) {
    children_.emplace_back(std::move(name), m);
    return m;
  }

 private:
  // f(prefix, module) for this module and every sub-module, depth first, each with the prefix
  // of its registered names ("0.", "encoder.attn.").
  template <class F> void walk(const std::string& prefix, F&& f) const {
    f(prefix, *this);
    for (const auto& [name, m] : children_)
      m->walk(prefix + name + ".", f);
  }
  std::vector<std::pair<std::string, var>> params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<generator>>> generators_;
  std::vector<std::pair<std::string, std::shared_ptr<module>>> children_;
  bool training_ = true;
};

}  // namespace fg::nn

FG_DIAGNOSTICS_END
