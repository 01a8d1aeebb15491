// libFuzzer target: arbitrary bytes as a checkpoint of a small model with Dropout (a generator)
// and Adam (step counts, moments). Besides the contract of safetensors_fuzz.cpp: a refused
// checkpoint must leave the model and the optimiser exactly as they were.
#include "fuzz_target.hpp"

#include <fusegrad/nn.hpp>

#include <bit>
#include <cstdint>
#include <cstdlib>
#include <vector>

namespace {
// Every weight, optimiser state and generator state, as bits (a NaN loaded by an earlier input
// must compare equal to itself).
std::vector<std::uint64_t> snapshot(const fg::nn::module& m, const fg::nn::optimizer& opt) {
  std::vector<std::uint64_t> out;
  auto add = [&](const fg::var& v) {
    for (fg::index_t i = 0; i < v.size(); ++i)
      out.push_back(std::bit_cast<std::uint64_t>(v.at(fg::sindex_t(i))));
  };
  for (const auto& [name, v] : m.state_dict())
    add(v);
  for (const auto& [name, v] : opt.state_dict())
    add(v);
  for (const auto& [name, g] : m.named_generators())
    out.push_back(g->state());
  return out;
}

struct target {
  fg::generator g{1};
  fg::nn::Sequential model{fg::nn::Linear(2, 3, g), fg::nn::Dropout(0.25, 5),
                           fg::nn::Linear(3, 2, g)};
  fg::nn::Adam opt{model.parameters(), {.lr = 0.01}};
};
}  // namespace

// One model for every input (inputs that load change it, which is as good a start as any).
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static target t;
  fg::nn::Sequential& model = t.model;
  fg::nn::Adam& opt = t.opt;
  const std::vector<std::uint64_t> before = snapshot(model, opt);
  const double lr = opt.lr;
  const long steps = opt.steps();
  bool loaded = false;
  fg::fuzz::loaded_or_refused([&] {
    const fg::io::tensor_map all = fg::io::parse_safetensors(fg::fuzz::bytes(data, size), "fuzz");
    fg::nn::load_checkpoint(all, "fuzz", model, opt);
    loaded = true;
  });
  if (!loaded && (snapshot(model, opt) != before || opt.lr != lr || opt.steps() != steps))
    std::abort();  // a refused checkpoint changed the model or the optimiser
  return 0;
}
