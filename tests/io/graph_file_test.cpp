// fg::io::save_graph / load_graph: a traced graph and its tensors in one safetensors file; the
// loaded graph predicts and differentiates as the traced one did, bit for bit, and trains
// further; a damaged or foreign file is refused with a sentence naming the fault.
#include "../dynamic/dynamic_testing.hpp"
#include "io_testing.hpp"

#include <fusegrad/io/graph_file.hpp>
#include <fusegrad/nn.hpp>

#include <cstring>
#include <filesystem>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace fg;
using fg::testing::temp_path;

namespace {

bool same(const var& a, const var& b) {
  return fg::testing::bitwise_equal(a, b);
}

std::string text_of(const graph& g) {
  std::ostringstream s;
  s << g;
  return s.str();
}

// A small CNN classifier and its loss, traced in evaluation mode.
struct cnn {
  generator rng{11};
  nn::Sequential model{nn::Conv2d(1, 4, 3, rng, 1, 1),
                       nn::BatchNorm2d(4),
                       nn::ReLU(),
                       nn::MaxPool2d(2),
                       nn::Flatten(),
                       nn::Linear(36, 5, rng),
                       nn::GELU()};
  var x = var::randn({3, 1, 6, 6}, rng);
  var y = var::randint(0, 5, {3}, rng);
  cnn() { model.train(false); }
  var loss(const var& a, const var& t) { return nn::cross_entropy(model.forward(a), t); }
};

// The graph file's JSON, rewritten by `edit`, saved back under the same tensors.
template <class Edit> void tamper(const std::string& path, Edit edit) {
  std::map<std::string, std::string> meta;
  const io::tensor_map t = io::load_safetensors(path, &meta);
  nlohmann::json j = nlohmann::json::parse(meta.at("fusegrad.graph"));
  edit(j);
  io::save_safetensors(path, t, {{"fusegrad.graph", j.dump()}});
}

}  // namespace

TEST_CASE("graph file: a CNN saved and loaded predicts and differentiates bit for bit") {
  cnn c;
  const graph g = trace([&](const var& a, const var& t) { return c.loss(a, t); }, c.x, c.y);
  const std::string path = temp_path("fg_cnn.graph.safetensors");
  io::save_graph(path, g);
  const graph h = io::load_graph(path);
  CHECK(text_of(h) == text_of(g));
  CHECK(h.parameters().size() == c.model.parameters().size());

  var xa = c.x.to(host).requires_grad(true), xb = c.x.to(host).requires_grad(true);
  c.model.zero_grad();
  var la = g.run({xa, c.y})[0];
  la.backward();
  var lb = h.run({xb, c.y})[0];
  lb.backward();
  CHECK(same(la, lb));
  CHECK(same(xa.grad(), xb.grad()));
  // (In the order the trace met them: C++ evaluates operands in an order of its choosing.)
  const std::vector<var> p = g.parameters(), q = h.parameters();
  for (std::size_t k = 0; k < p.size(); ++k) {
    INFO("parameter " << k);
    CHECK(same(p[k].grad(), q[k].grad()));
  }
  // The file is a safetensors file: its tensors are the captured ones.
  CHECK(io::load_safetensors(path).size() == g.captures().size());
}

TEST_CASE("graph file: a loaded graph trains further, apart from the model it came from") {
  cnn c;
  const graph g = trace([&](const var& a, const var& t) { return c.loss(a, t); }, c.x, c.y);
  const std::string path = temp_path("fg_cnn_train.graph.safetensors");
  io::save_graph(path, g);
  const graph h = io::load_graph(path);
  const var before = h.run({c.x, c.y})[0].detach().to(host);
  const var original = c.model.parameters()[0].to(host);
  nn::Adam opt(h.parameters(), {.lr = 0.01});
  for (int step = 0; step < 20; ++step) {
    opt.zero_grad();
    h.run({c.x, c.y})[0].backward();
    opt.step();
  }
  const double after = h.run({c.x, c.y})[0].item();
  CHECK(after < 0.5 * before.item());
  CHECK(same(c.model.parameters()[0], original));  // the traced model is untouched
  // Saved again, the trained graph loads with its trained weights.
  io::save_graph(path, h);
  CHECK(io::load_graph(path).run({c.x, c.y})[0].item() == after);
}

TEST_CASE("graph file: LSTM, attention and integer ops round trip") {
  generator rng(12);
  nn::Embedding emb(9, 8, rng);
  nn::MultiheadAttention att(8, 2, rng);
  nn::LSTM lstm(8, 6, rng);
  auto f = [&](const var& tokens) {
    const var e = emb.forward(tokens);
    const var h = att.attend(e, e, e, nn::causal_mask(4));
    const auto r = lstm.run(transpose(h, 0, 1));
    return std::vector<var>{r.output, argmax(r.h, 1), sort(r.c, 1).values};
  };
  const var tokens = var::randint(0, 9, {2, 4}, rng);
  const graph g = trace(f, tokens);
  const std::string path = temp_path("fg_seq.graph.safetensors");
  io::save_graph(path, g);
  const graph h = io::load_graph(path);
  const var other = var::randint(0, 9, {2, 4}, rng);
  const std::vector<var> a = g.run({other}), b = h.run({other});
  REQUIRE(a.size() == b.size());
  for (std::size_t k = 0; k < a.size(); ++k)
    CHECK(same(a[k], b[k]));
}

TEST_CASE("graph file: infinite numbers and max beside maximum round trip") {
  auto f = [](const var& a) {
    return std::vector<var>{masked_fill(a, a > 0, -INFINITY), clamp(a, -0.5, INFINITY),
                            maximum(a, a * 2.0), max(a, {0})};
  };
  const var x = var::randn({3, 4});
  const std::string path = temp_path("fg_inf.graph.safetensors");
  io::save_graph(path, trace(f, x));
  const std::vector<var> a = io::load_graph(path).run({x}), b = f(x);
  for (std::size_t k = 0; k < a.size(); ++k)
    CHECK(same(a[k], b[k]));
}

TEST_CASE("graph file: what cannot be saved, and damaged files, are refused by name") {
  generator own(3);
  auto dropped = [&](const var& a) { return nn::dropout(a, 0.5, own); };
  CHECK_THROWS_WITH_AS(
      io::save_graph(temp_path("fg_drop.graph.safetensors"), trace(dropped, var::ones({4}))),
      doctest::Contains("a generator of its own"), std::invalid_argument);

  const std::string path = temp_path("fg_bad.graph.safetensors");
  auto fresh = [&] {
    const var w = var::ones({3}).requires_grad(true);
    io::save_graph(path, trace([&](const var& a) { return sum(exp(a) * w); }, var::ones({3})));
  };
  auto refused = [&](auto edit, const char* why) {
    fresh();
    tamper(path, edit);
    CHECK_THROWS_WITH_AS(io::load_graph(path), doctest::Contains(why), io::format_error);
  };
  refused([](nlohmann::json& j) { j["steps"][0]["op"] = "frobnicate"; },
          "the op 'frobnicate' is not one fusegrad knows");
  refused([](nlohmann::json& j) { j["steps"][0]["in"][0] = 99; },
          "'in' names a value that is not one of the");
  refused([](nlohmann::json& j) { j["outputs"][0] = "x"; },
          "'outputs' names a value that is not one of the");
  refused([](nlohmann::json& j) { j["outputs"] = "x"; }, "the graph has no 'outputs' list");
  refused([](nlohmann::json& j) { j.erase("steps"); }, "the graph has no 'steps' list");
  refused([](nlohmann::json& j) { j["format"] = 2; }, "format is not 1");
  refused([](nlohmann::json& j) { j["values"][0]["dtype"] = "float7"; }, "unknown dtype 'float7'");
  refused(
      [](nlohmann::json& j) {
        j["steps"][2]["attrs"][0] = {{"name", "axes"}, {"int", "x"}};
      },
      "attribute 'axes' has an unknown kind 'int' or a value of the wrong type");
  refused([](nlohmann::json& j) { j["captures"][0]["id"] = 0; },
          "the tensor 'capture.0' is missing");
  refused([](nlohmann::json& j) { j["values"][j["captures"][0]["id"].get<int>()]["shape"] = {4}; },
          "is float32[3], the graph says float32[4]");

  // What only the op knows (the kind of each attribute it reads) is checked when it runs.
  fresh();
  tamper(path, [](nlohmann::json& j) {
    j["steps"][2]["attrs"][0] = {{"name", "axes"}, {"int", 0}};
  });
  const graph odd = io::load_graph(path);
  CHECK_THROWS_WITH_AS(odd.run({var::ones({3})}),
                       doctest::Contains("reads attribute 0 ('axes') as a list of integers"),
                       std::invalid_argument);
  fresh();
  tamper(path, [](nlohmann::json& j) { j["steps"][2]["attrs"].erase(1); });
  CHECK_THROWS_WITH_AS(io::load_graph(path).run({var::ones({3})}),
                       doctest::Contains("reads attribute 1 and the step has 1"),
                       std::invalid_argument);

  fresh();
  std::map<std::string, std::string> meta;
  const io::tensor_map t = io::load_safetensors(path, &meta);
  io::save_safetensors(path, t, {{"fusegrad.graph", "{not json"}});
  CHECK_THROWS_WITH_AS(io::load_graph(path), doctest::Contains("the graph is not JSON"),
                       io::format_error);
  io::save_safetensors(path, t);
  CHECK_THROWS_WITH_AS(io::load_graph(path), doctest::Contains("not a saved graph"),
                       io::format_error);
}

TEST_CASE("graph file: every op that records itself is known to a program that loads graphs") {
  io::register_graph_ops();
  const std::set<std::string> names = fg::testing::recorded_op_names();
  CHECK(names.size() > 40);  // (47 when written: the regex finds them)
  CHECK(names.count("maximum") == 1);  // (not "max": that is the reduction)
  for (const std::string& n : names) {
    INFO("op " << n);
    CHECK(bool(dynamic::op_registry::instance().find(n)));
  }
}
