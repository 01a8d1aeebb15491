// fusegrad/static_nn/trainer.hpp — one training step, its gradient derived at compile time, in
// memory whose size is a compile-time constant
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/grad/reverse.hpp"

#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

FG_DIAGNOSTICS_BEGIN

namespace fg::static_nn {

namespace detail {
template <class Tuple> struct parameter_types;
template <class... P> struct parameter_types<std::tuple<P&...>> {
  using tensors = std::tuple<std::remove_const_t<P>...>;
  template <class Opt>
  using slots = std::tuple<typename Opt::template slot<std::remove_const_t<P>>...>;
  static constexpr std::size_t bytes = (sizeof(std::remove_const_t<P>) + ... + 0);
};
}  // namespace detail

// What a training step of Model on (Input, Target) batches needs, in bytes, all known at compile
// time. The model owns its parameters; a trainer owns the rest.
struct step_memory {
  std::size_t parameters;       // the model's weights
  std::size_t gradients;        // one tensor per parameter
  std::size_t optimizer_state;  // momenta, Adam's moments
  std::size_t workspace;        // every intermediate value of the step and its adjoint
  constexpr std::size_t total() const {
    return parameters + gradients + optimizer_state + workspace;
  }
};

// trainer<Model, Loss, Optimizer, Input, Target>: `step(x, y)` computes the loss and the
// gradient of every parameter in fused passes planned at compile time, then updates the
// parameters. It allocates nothing: put it (and the model) in static storage, or a linker
// section, and size that from `memory`.
template <class Model, class Loss, class Optimizer, class Input, class Target> class trainer {
  using params = detail::parameter_types<decltype(std::declval<Model&>().parameters())>;
  using step_expression = decltype(std::declval<const Loss&>()(
      std::declval<const Model&>()(std::declval<const Input&>()), std::declval<const Target&>()));
  static_assert(Input::shape_type::is_static && Target::shape_type::is_static,
                "fg::static_nn::trainer: the batch shapes must be static (fg::dyn extents would "
                "put the step's memory on the heap)");
  static_assert(std::remove_cvref_t<step_expression>::shape_type::rank == 0,
                "fg::static_nn::trainer: the loss must reduce to a scalar (0-d) expression");
  using gradients_t = typename params::tensors;
  using slots_t = typename params::template slots<Optimizer>;

 public:
  using value_type = typename std::remove_cvref_t<step_expression>::value_type;
  static constexpr step_memory memory{params::bytes, sizeof(gradients_t), sizeof(slots_t),
                                      gradient_workspace<step_expression>::bytes};

  explicit trainer(Model& model, Optimizer optimizer = {}, Loss loss = {})
      : model_(&model), optimizer_(optimizer), loss_(loss) {}

  // One step: forward, backward, update. Returns the loss before the update.
  value_type step(const Input& x, const Target& y) {
    const value_type value = std::apply(
        [&](auto&... p) {
          return std::apply(
              [&](auto&... g) {
                return value_and_grad_into(workspace_, loss_((*model_)(x), y), std::tie(g...),
                                           p...);
              },
              gradients_);
        },
        model_->parameters());
    optimizer_.begin_step();
    update(std::make_index_sequence<std::tuple_size_v<gradients_t>>{});
    return value;
  }
  // The loss alone, without a gradient or an update.
  value_type loss(const Input& x, const Target& y) const { return eval(loss_((*model_)(x), y)); }
  const gradients_t& gradients() const { return gradients_; }
  Optimizer& optimizer() { return optimizer_; }

 private:
  template <std::size_t... I> void update(std::index_sequence<I...>) {
    auto p = model_->parameters();
    (optimizer_.update(std::get<I>(p), std::get<I>(gradients_), std::get<I>(slots_)), ...);
  }

  Model* model_;
  Optimizer optimizer_;
  Loss loss_;
  gradients_t gradients_{};
  slots_t slots_{};
  gradient_workspace<step_expression> workspace_;
};

}  // namespace fg::static_nn

FG_DIAGNOSTICS_END
