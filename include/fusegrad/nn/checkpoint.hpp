// fusegrad/nn/checkpoint.hpp — a training checkpoint (model, optimiser, epoch) in one
// safetensors file, written atomically, and the resume that continues the run as if it had not
// stopped
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/io/safetensors.hpp"
#include "fusegrad/nn/module.hpp"
#include "fusegrad/nn/optim.hpp"

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

FG_DIAGNOSTICS_BEGIN

namespace fg::nn {

// Tensors "model.<name>" (the state dict, so a Python reader finds the weights under their
// PyTorch names after the prefix), "optimizer.<name>", "rng.<name>" (the state of each generator
// the model draws from, as two float64 holding its 32-bit halves exactly), and "epoch" (epochs
// completed).
inline void save_checkpoint(const std::string& path, const module& model, const optimizer& opt,
                            long epoch) {
  io::tensor_map all;
  for (const auto& [name, v] : model.state_dict())
    all["model." + name] = v;
  for (const auto& [name, v] : opt.state_dict())
    all["optimizer." + name] = v;
  for (const auto& [name, g] : model.named_generators()) {
    var halves = var::empty({2}, dtype::float64);
    halves.data<double>()[0] = double(g->state() >> 32);
    halves.data<double>()[1] = double(g->state() & 0xffffffffu);
    all["rng." + name] = halves;
  }
  all["epoch"] = var::scalar(double(epoch), dtype::float64);
  io::save_safetensors(path, all, {{"format", "fusegrad-checkpoint"}});
}

namespace detail {
// The value of a checkpoint's 0-d or 1-element entry that must be a whole number in [0, max]:
// anything else (NaN, 1e300, -1, 2.5) is refused before it is converted to an integer.
inline std::uint64_t whole_number(const std::string& path, const std::string& entry, double v,
                                  double max) {
  if (!(v >= 0 && v <= max && v == std::floor(v)))
    throw io::format_error(dynamic::text("fg::nn::load_checkpoint(): '", path, "' holds ", v,
                                         " in '", entry,
                                         "', which must be a whole number from 0 to ", max));
  return std::uint64_t(v);
}
}  // namespace detail

// Restores model, optimiser and the model's generators from `path`; returns the epochs
// completed. Give the data loader that number (DataLoader::set_passes) to resume with the same
// batch orders. All or nothing: everything is read and checked before anything is changed, so a
// checkpoint that does not fit (or is damaged) leaves the model and the optimiser as they were.
// (This one takes the file's tensors already read; `path` names them in errors.)
inline long load_checkpoint(const io::tensor_map& all, const std::string& path, module& model,
                            optimizer& opt) {
  state_dict m, o;
  for (const auto& [name, v] : all) {
    if (name.rfind("model.", 0) == 0)
      m[name.substr(6)] = v;
    else if (name.rfind("optimizer.", 0) == 0)
      o[name.substr(10)] = v;
  }
  auto epoch = all.find("epoch");
  if (epoch == all.end() || epoch->second.size() != 1 || !is_floating(epoch->second.dtype()))
    throw io::format_error(
        dynamic::text("fg::nn::load_checkpoint(): '", path,
                      "' is not a checkpoint (no 'epoch' tensor of one number)"));
  const long epochs =
      long(detail::whole_number(path, "epoch", epoch->second.item(), detail::max_count));
  std::vector<std::pair<std::shared_ptr<generator>, std::uint64_t>> states;
  for (const auto& [name, g] : model.named_generators()) {
    auto it = all.find("rng." + name);
    if (it == all.end() || !(it->second.shape() == extents{2}) ||
        it->second.dtype() != dtype::float64)
      throw io::format_error(dynamic::text("fg::nn::load_checkpoint(): '", path,
                                           "' holds no state for the model's generator '", name,
                                           "' (a float64 tensor 'rng.", name, "' of 2 elements)"));
    const double* h = it->second.data<double>();
    const std::string entry = "rng." + name;
    states.emplace_back(g, detail::whole_number(path, entry, h[0], 4294967295.0) << 32 |
                               detail::whole_number(path, entry, h[1], 4294967295.0));
  }
  model.check_state_dict(m);
  opt.check_state_dict(o);
  model.load_state_dict(m);
  opt.load_state_dict(o);
  for (const auto& [g, state] : states)
    g->set_state(state);
  return epochs;
}
inline long load_checkpoint(const std::string& path, module& model, optimizer& opt) {
  return load_checkpoint(io::load_safetensors(path), path, model, opt);
}

}  // namespace fg::nn

FG_DIAGNOSTICS_END
