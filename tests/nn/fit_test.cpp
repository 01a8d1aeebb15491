// fit(): history, plain progress lines off a terminal, early stopping, checkpoints, and a resumed
// run that ends where the uninterrupted one does.
#include "../testing.hpp"
#include "nn_testing.hpp"

#include <fusegrad/nn.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <vector>

using namespace fg;
using fg::testing::small_mlp;
using problem = fg::testing::two_blobs;

namespace {
// With Dropout: a resumed run must also draw the masks the uninterrupted one draws.
nn::Sequential model_with_dropout(std::uint64_t seed, std::uint64_t mask_seed) {
  generator g(seed);
  return nn::Sequential(nn::Linear(2, 8, g), nn::Tanh(), nn::Dropout(0.25, mask_seed),
                        nn::Linear(8, 2, g));
}
std::string temp_path(const char* name) {
  return (std::filesystem::temp_directory_path() / name).string();
}
}  // namespace

TEST_CASE("fit / trains, reports each epoch as a plain line off a terminal, validates") {
  problem p;
  nn::Sequential m = small_mlp(2);
  nn::Adam opt(m.parameters(), {.lr = 0.05});
  nn::DataLoader train(p.x, p.y, 16, true, 3), val(p.x, p.y, 64, false);
  const std::string log = temp_path("fg_fit.log");
  std::FILE* f = std::fopen(log.c_str(), "w");
  REQUIRE(f);
  const auto h =
      nn::fit(m, train, nn::cross_entropy, opt, {.epochs = 30, .validation = &val, .out = f});
  std::fclose(f);
  REQUIRE(h.size() == 30);
  CHECK(h.back().loss < h.front().loss / 2);
  CHECK(h.back().val_accuracy > 0.9);
  CHECK(h.back().accuracy > 0.9);
  std::ifstream in(log);
  std::string first;
  std::getline(in, first);
  CHECK(first.rfind("epoch 1/30: loss ", 0) == 0);
  CHECK(first.find(", validation accuracy ") != std::string::npos);
  CHECK(first.find('\r') == std::string::npos);  // no bar redrawn in a file
  const int threads = fg::get_num_threads();  // the line says what the run used
  CHECK(first.find(fg::dynamic::text(", ", threads, threads == 1 ? " thread)" : " threads)")) !=
        std::string::npos);
  std::remove(log.c_str());
}

TEST_CASE("fit / early stopping ends a run whose loss stops improving") {
  problem p;
  nn::Sequential m = small_mlp(2);
  nn::SGD still(m.parameters(), {.lr = 0.0});  // the loss never moves
  nn::DataLoader train(p.x, p.y, 64, false);
  nn::EarlyStopping stop(3);
  const auto h = nn::fit(m, train, nn::cross_entropy, still,
                         {.epochs = 50, .callbacks = {&stop}, .out = nullptr});
  CHECK(h.size() == 4);  // the first epoch sets the best, three more without improvement
}

TEST_CASE("fit / a run resumed from its checkpoint ends where the uninterrupted one does") {
  problem p;
  const std::string ckpt = temp_path("fg_fit.ckpt.safetensors");
  nn::Sequential whole = model_with_dropout(7, 11);
  nn::Adam opt_whole(whole.parameters(), {.lr = 0.02});
  nn::DataLoader data_whole(p.x, p.y, 16, true, 5);
  nn::fit(whole, data_whole, nn::cross_entropy, opt_whole, {.epochs = 4, .out = nullptr});

  {
    nn::Sequential first = model_with_dropout(7, 11);
    nn::Adam opt(first.parameters(), {.lr = 0.02});
    nn::DataLoader data(p.x, p.y, 16, true, 5);
    nn::ModelCheckpoint save(ckpt, first, opt);
    nn::fit(first, data, nn::cross_entropy, opt,
            {.epochs = 2, .callbacks = {&save}, .out = nullptr});
  }
  // Other weights and another mask stream until the checkpoint is loaded.
  nn::Sequential resumed = model_with_dropout(99, 12);
  nn::Adam opt(resumed.parameters(), {.lr = 0.5});
  const long done = nn::load_checkpoint(ckpt, resumed, opt);
  CHECK(done == 2);
  CHECK(opt.lr == 0.02);
  CHECK(opt.steps() == 8);
  nn::DataLoader data(p.x, p.y, 16, true, 5);
  nn::fit(resumed, data, nn::cross_entropy, opt,
          {.epochs = 4, .initial_epoch = done, .out = nullptr});
  const auto a = whole.named_parameters(), b = resumed.named_parameters();
  for (std::size_t k = 0; k < a.size(); ++k)
    for (index_t i = 0; i < a[k].second.size(); ++i)
      CHECK(a[k].second.at(i) == b[k].second.at(i));
  CHECK_THROWS_AS(nn::load_checkpoint(ckpt + ".missing", resumed, opt), std::runtime_error);
  // A checkpoint without the generator's state is refused, naming it.
  io::tensor_map file = io::load_safetensors(ckpt);
  CHECK(file.count("rng.2.generator") == 1);
  file.erase("rng.2.generator");
  io::save_safetensors(ckpt, file);
  CHECK_THROWS_WITH_AS(nn::load_checkpoint(ckpt, resumed, opt),
                       doctest::Contains("no state for the model's generator '2.generator'"),
                       io::format_error);
  std::remove(ckpt.c_str());
}

TEST_CASE("fit / a damaged checkpoint is refused before the model or the optimiser changes") {
  const std::string ckpt = temp_path("fg_damaged.ckpt.safetensors");
  {
    nn::Sequential saved = model_with_dropout(7, 11);
    nn::Adam opt(saved.parameters(), {.lr = 0.02});
    nn::save_checkpoint(ckpt, saved, opt, 3);
  }
  const io::tensor_map good = io::load_safetensors(ckpt);
  nn::Sequential target = model_with_dropout(99, 12);
  nn::Adam opt(target.parameters(), {.lr = 0.5});
  const nn::state_dict before = target.state_dict();
  std::vector<double> weights;
  for (const auto& [name, v] : before)
    for (index_t i = 0; i < v.size(); ++i)
      weights.push_back(v.at(sindex_t(i)));
  auto refused = [&](const char* what, io::tensor_map file, const char* says) {
    INFO(what);
    io::save_safetensors(ckpt, file);
    CHECK_THROWS_WITH(nn::load_checkpoint(ckpt, target, opt), doctest::Contains(says));
    std::size_t k = 0;  // nothing changed
    for (const auto& [name, v] : target.state_dict())
      for (index_t i = 0; i < v.size(); ++i)
        CHECK(v.at(sindex_t(i)) == weights[k++]);
    CHECK(opt.lr == 0.5);
    CHECK(opt.steps() == 0);
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto with = [&](const char* name, const var& v) {
    io::tensor_map f = good;
    f[name] = v;
    return f;
  };
  refused("epoch NaN", with("epoch", var::scalar(nan, dtype::float64)),
          "holds nan in 'epoch', which must be a whole number from 0 to");
  refused("epoch 1e300", with("epoch", var::scalar(1e300, dtype::float64)), "in 'epoch'");
  refused("steps NaN", with("optimizer.steps", var::scalar(nan, dtype::float64)),
          "'steps' is nan; a step count is a whole number from 0 to 2^53");
  refused("steps -1", with("optimizer.steps", var::scalar(-1, dtype::float64)), "'steps' is -1");
  refused(
      "lr inf",
      with("optimizer.lr", var::scalar(std::numeric_limits<double>::infinity(), dtype::float64)),
      "'lr' is inf");
  refused("rng 1e300", with("rng.2.generator", var::from({1e300, 0}, {2}, dtype::float64)),
          "in 'rng.2.generator'");
  refused("rng 2.5", with("rng.2.generator", var::from({1, 2.5}, {2}, dtype::float64)),
          "in 'rng.2.generator'");
  refused("a weight of another shape", with("model.0.weight", var::zeros({3, 3})),
          "'0.weight' is [3, 3] float32 in the state dict");
  io::tensor_map no_moment = good;
  no_moment.erase("optimizer.state.1.0");
  refused("an optimiser state missing", no_moment, "'state.1.0' is missing");
  // and the good one still loads
  io::save_safetensors(ckpt, good);
  CHECK(nn::load_checkpoint(ckpt, target, opt) == 3);
  CHECK(opt.lr == 0.02);
  std::remove(ckpt.c_str());
}
