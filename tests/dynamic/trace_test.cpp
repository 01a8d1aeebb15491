// fg::trace and fg::function: a traced function gives the eager function's values and gradients
// bit for bit, on the inputs it was traced with and on others; what cannot be recorded is
// refused or reported; a new signature traces again.
#include "dynamic_testing.hpp"

#include <fusegrad/dynamic.hpp>
#include <fusegrad/nn.hpp>

#include <array>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

using namespace fg;

namespace {

bool same(const var& a, const var& b) {
  return fg::testing::bitwise_equal(a, b);
}

// A fresh leaf with x's elements, requiring a gradient where it can.
var fresh(const var& x) {
  var c = x.to(host);
  if (c.is_floating_point())
    c.requires_grad(true);
  return c;
}

// Other elements of x's shape (integer tensors, indices, stay as they are).
var other(const var& x) {
  if (!x.is_floating_point())
    return x;
  no_grad off;
  return (x * 1.5 + 0.25).to(host);
}

struct outcome {
  std::vector<var> values, grads;  // grads: the inputs', then the parameters'
};

// f's outputs on fresh copies of x, and the gradients of sum(y^2) over its floating outputs.
template <class Run, std::size_t N>
outcome run_once(Run run, const std::array<var, N>& x, const std::vector<var>& params) {
  for (var p : params)
    p.zero_grad();
  std::array<var, N> in;
  for (std::size_t k = 0; k < N; ++k)
    in[k] = fresh(x[k]);
  outcome o;
  o.values = run(in);
  var loss;
  for (const var& y : o.values)
    if (y.is_floating_point() && y.requires_grad())
      loss = loss.defined() ? loss + sum(square(y)) : sum(square(y));
  if (loss.defined())
    loss.backward();
  for (const var& v : in)
    o.grads.push_back(v.grad());
  for (const var& p : params)
    o.grads.push_back(p.grad());
  return o;
}

template <class R> std::vector<var> as_vector(R r) {
  if constexpr (std::is_same_v<R, var>)
    return {r};
  else
    return r;
}

// f traced on x gives eager's values and gradients bit for bit, on x and on other values of
// x's signature. Returns the graph.
template <class F, std::same_as<var>... V>
graph check_traced(F f, const std::vector<var>& params, const V&... x) {
  constexpr std::size_t N = sizeof...(V);
  const std::array<var, N> first{x...}, second{other(x)...};
  const graph g = trace(f, x...);
  INFO(g);
  CHECK(g.warnings().empty());
  for (const auto* in : {&first, &second}) {
    const outcome eager = run_once(
        [&](const std::array<var, N>& a) {
          return std::apply([&](const auto&... v) { return as_vector(f(v...)); }, a);
        },
        *in, params);
    const outcome traced = run_once(
        [&](const std::array<var, N>& a) { return g.run(std::span<const var>(a)); }, *in, params);
    REQUIRE(eager.values.size() == traced.values.size());
    for (std::size_t k = 0; k < eager.values.size(); ++k) {
      INFO("output " << k);
      CHECK(same(eager.values[k], traced.values[k]));
    }
    for (std::size_t k = 0; k < eager.grads.size(); ++k) {
      INFO("gradient " << k << " (inputs first, then parameters)");
      CHECK(same(eager.grads[k], traced.grads[k]));
    }
  }
  return g;
}

std::string text_of(const graph& g) {
  std::ostringstream s;
  s << g;
  return s.str();
}

}  // namespace

TEST_CASE("trace: elementwise chains, numbers, broadcasting and reductions") {
  generator rng(1);
  const var x = var::randn({4, 5}, rng), b = var::randn({5}, rng);
  const graph g = check_traced(
      [](const var& a, const var& c) {
        const var y = tanh(a * 2.0 + c) - sigmoid(a) / (1.0 + square(c));
        return std::vector<var>{
            sum(y), mean(y, {0}), max(y, {1}, true), logsumexp(y, {-1}), prod(exp(y * 0.1), {0}),
            min(y)};
      },
      {}, x, b);
  const std::string t = text_of(g);
  CHECK(t.find("tanh(") != std::string::npos);
  CHECK(t.find("logsumexp(") != std::string::npos);
  CHECK(t.find("axes=[1], keepdim=true") != std::string::npos);
  CHECK(g.inputs().size() == 2);
  CHECK(g.outputs().size() == 6);
}

TEST_CASE("trace: layout and indexing ops") {
  generator rng(2);
  const var x = var::randn({3, 4, 5}, rng);
  const var idx = var::from(std::vector<std::int64_t>{2, 0, 1}, {3});
  const var gidx = var::randint(0, 4, {3, 2, 5}, rng);
  check_traced(
      [&](const var& a, const var& i, const var& gi) {
        const var t = transpose(a, 0, 2);
        const std::vector<var> parts = split(a, std::vector<index_t>{1, 3}, 1);
        return std::vector<var>{
            reshape(t, {20, 3}),
            concat({parts[1], parts[0]}, 1),
            stack({select(a, 0, 1), squeeze(slice(a, 0, 0, 1), 0)}, 0),
            permute(a, {2, 0, 1}),
            unsqueeze(squeeze(slice(a, 1, 2, 3)), 0),
            expand(slice(a, 2, 0, 1), {-1, -1, 3}),
            repeat(slice(a, 0, 0, 1), {2, 1, 1}),
            pad(a, {1, 2}, pad_mode::reflect),
            flip(a, {0, 2}),
            index_select(a, 0, i),
            gather(a, 1, gi),
            scatter_add(a, 1, gi, a * 0.5),
            masked_fill(a, a > 0.5, -1.0),
            where(a > 0, a, a * a),
            clamp(a, -0.5, 0.7),
            cumsum(a, 2),
            cumprod(a * 0.3, 1),
            sort(a, 2).values,
            topk(a, 2, 1).values,
            a.to(dtype::float64) * 3.0,
            slice(a, 2, 1, 5, 2),
        };
      },
      {}, x, idx, gidx);
}

TEST_CASE("trace: integer results follow the inputs (argmax, comparisons, nonzero)") {
  generator rng(3);
  const var x = var::randn({6, 4}, rng);
  check_traced(
      [](const var& a) {
        return std::vector<var>{argmax(a, 1),
                                argmin(a),
                                argsort(a, 0),
                                (a > 0),
                                count_nonzero(a > 0.3, {1}),
                                nonzero(a > 1),
                                masked_select(a, a < 0),
                                sum(a > 0)};
      },
      {}, x);
}

TEST_CASE("trace: the remaining ops (scatter, pools, losses, LSTM cell, chunks, draws)") {
  generator rng(10);
  const var x = var::randn({2, 3, 4, 4}, rng);
  const var idx = var::randint(0, 3, {2, 3, 4, 4}, rng);
  const var logp = nn::log_softmax(var::randn({5, 3}, rng), 1);
  const var t = var::randint(0, 3, {5}, rng);
  const var z = var::randn({2, 8}, rng), c = var::randn({2, 2}, rng);
  check_traced(
      [](const var& a, const var& i, const var& lp, const var& tg, const var& zz, const var& cc) {
        std::vector<var> out{
            scatter(a, 1, i, a * 2.0), scatter(a, 1, i, 0.5), nn::avg_pool2d(a, 2),
            nn::max_pool2d(a, 2, 1),   nn::nll_loss(lp, tg),  nn::lstm_cell(zz, cc),
            narrow(a, 3, 1, 2),        any(a > 1, {1}),       all(a > -3, {2, 3}, true)};
        for (const var& piece : chunk(a, 2, 2))
          out.push_back(piece * 3.0);
        return out;
      },
      {}, x, idx, logp, t, z, c);

  // Each draw of the function is made again by every run, from the same generator.
  generator draws(1);
  auto drawn = [&](const var& w) {
    return std::vector<var>{var::randn({3}, draws), var::randint(0, 9, {4}, draws),
                            var::randperm(5, draws), multinomial(w, 2, false, draws)};
  };
  const var w = var::from({0.1, 0.2, 0.3, 0.4}, {4});
  draws = generator(2);
  const graph g = trace(drawn, w);
  draws = generator(3);
  const std::vector<var> traced = g.run({w});
  draws = generator(3);
  const std::vector<var> eager = drawn(w);
  for (std::size_t k = 0; k < eager.size(); ++k)
    CHECK(same(traced[k], eager[k]));
}

TEST_CASE("trace: an MLP with its loss, parameters captured by reference") {
  generator rng(4);
  nn::Sequential model(nn::Linear(5, 16, rng), nn::ReLU(), nn::Linear(16, 16, rng), nn::Tanh(),
                       nn::Linear(16, 3, rng));
  const var x = var::randn({8, 5}, rng);
  const var y = var::randint(0, 3, {8}, rng);
  auto step = [&](const var& a, const var& t) { return nn::cross_entropy(model.forward(a), t); };
  const graph g = check_traced(step, model.parameters(), x, y);
  CHECK(g.captures().size() >= 6);
  CHECK(text_of(g).find("= parameter") != std::string::npos);
  // An optimiser's update in place is seen by the graph: the parameters are held, not copied.
  nn::SGD opt(model.parameters(), {.lr = 0.1});
  for (int i = 0; i < 3; ++i) {
    opt.zero_grad();
    g.run({x, y})[0].backward();
    opt.step();
  }
  CHECK(same(g.run({x, y})[0], step(x, y)));
}

TEST_CASE("trace: a CNN, BatchNorm's running statistics updated by every run") {
  generator rng(5);
  nn::Sequential model(nn::Conv2d(2, 4, 3, rng, 1, 1), nn::BatchNorm2d(4), nn::ReLU(),
                       nn::MaxPool2d(2), nn::Conv2d(4, 4, 3, rng), nn::Flatten(),
                       nn::Linear(4, 3, rng));
  auto& bn = static_cast<nn::BatchNorm2d&>(model[1]);
  const var x = var::randn({4, 2, 6, 6}, rng);
  const var mean0 = bn.running_mean.to(host);
  auto forward = [&](const var& a) { return model.forward(a); };
  const graph g = trace(forward, x);
  CHECK(text_of(g).find("running_update(") != std::string::npos);
  // Tracing ran the model once, and each run updates the statistics as an eager call would.
  const var after_trace = bn.running_mean.to(host);
  CHECK(!same(after_trace, mean0));
  g.run({x});
  const var after_run = bn.running_mean.to(host);
  bn.running_mean.copy_from(after_trace);
  forward(x);
  CHECK(same(bn.running_mean, after_run));
  model.train(false);  // evaluation: a graph of its own, checked against eager
  check_traced(forward, model.parameters(), x);
}

TEST_CASE("function: the first call of a signature has its effects once, as an eager call") {
  generator rng(13);
  nn::Sequential model(nn::Conv2d(1, 2, 3, rng), nn::BatchNorm2d(2));
  auto& bn = static_cast<nn::BatchNorm2d&>(model[1]);
  generator drop(4), twin(4);
  const var x = var::randn({2, 1, 5, 5}, rng);
  fg::function f([&](const var& a) { return nn::dropout(model.forward(a), 0.5, drop); });
  const var before = bn.running_mean.to(host);
  const var first = f(x);
  const var after = bn.running_mean.to(host);
  bn.running_mean.copy_from(before);
  const var eager = nn::dropout(model.forward(x), 0.5, twin);  // one update, one mask
  CHECK(same(bn.running_mean, after));
  CHECK(same(first, eager));
  CHECK(same(f(x), nn::dropout(model.forward(x), 0.5, twin)));  // and the same after
}

TEST_CASE("trace: attention, layer norm, embedding, GELU and dropout") {
  generator rng(6);
  nn::Embedding emb(11, 8, rng);
  nn::MultiheadAttention att(8, 2, rng);
  nn::LayerNorm norm(8);
  nn::Linear ff(8, 8, rng);
  generator drop(42);
  auto block = [&](const var& tokens) {
    const var e = emb.forward(tokens);
    const var h = norm.forward(e + att.attend(e, e, e, nn::causal_mask(5)));
    return nn::gelu(ff.forward(h)) + nn::softmax(h, -1);
  };
  std::vector<var> params = emb.parameters();
  for (const auto& m : {att.parameters(), norm.parameters(), ff.parameters()})
    params.insert(params.end(), m.begin(), m.end());
  const var tokens = var::randint(0, 11, {3, 5}, rng);
  check_traced(block, params, tokens);

  // Dropout draws a new mask on every run, from the generator it was given.
  auto dropped = [&](const var& a) { return nn::dropout(a, 0.5, drop); };
  const var x = var::randn({64}, rng);
  drop = generator(7);
  const graph g = trace(dropped, x);
  drop = generator(8);
  const var first = g.run({x})[0], second = g.run({x})[0];
  CHECK(!same(first, second));
  drop = generator(8);
  CHECK(same(first, dropped(x)));
  CHECK(same(second, dropped(x)));
}

TEST_CASE("trace: LSTM and GRU") {
  generator rng(7);
  nn::LSTM lstm(3, 4, rng);
  nn::GRU gru(3, 4, rng);
  const var x = var::randn({5, 2, 3}, rng);
  std::vector<var> params = lstm.parameters();
  const auto gp = gru.parameters();
  params.insert(params.end(), gp.begin(), gp.end());
  check_traced(
      [&](const var& a) {
        const auto r = lstm.run(a, {5, 3});
        return std::vector<var>{r.output, r.h, r.c, gru.forward(a)};
      },
      params, x);
}

TEST_CASE("trace: what the function's own code decides is frozen, and reported") {
  const var pos = var::full({3}, 2.0), neg = var::full({3}, -2.0);
  auto branchy = [](const var& a) { return sum(a).item() > 0 ? a * 2.0 : a * 3.0; };
  const graph g = trace(branchy, pos);
  REQUIRE(g.warnings().size() == 1);
  CHECK(g.warnings()[0].find("frozen") != std::string::npos);
  CHECK(same(g.run({neg})[0], neg * 2.0));  // the branch taken when traced, as documented
  CHECK(!same(g.run({neg})[0], branchy(neg)));
  // fg::where keeps the choice in the graph.
  auto kept = [](const var& a) { return where(sum(a) > 0, a * 2.0, a * 3.0); };
  const graph w = trace(kept, pos);
  CHECK(w.warnings().empty());
  CHECK(same(w.run({neg})[0], kept(neg)));
}

TEST_CASE("trace: a value computed from the inputs by an op it cannot record is refused") {
  const var x = var::randn({4});
  auto f = kernel("user_op", [](auto a) { return a * a + a; });
  auto uses_kernel = [&](const var& a) { return sum(f(exp(a))); };
  CHECK_THROWS_WITH_AS(trace(uses_kernel, x),
                       doctest::Contains("computed by 'user_op' from the traced function's inputs"),
                       autograd_error);
  // A tensor computed before the trace from other tensors is a constant of the graph.
  const var w = var::randn({4}).requires_grad(true);
  const var before = exp(w);
  const graph g = trace([&](const var& a) { return a * before; }, x);
  CHECK(g.captures().size() == 1);
  CHECK(same(g.run({x})[0], x * before));
}

TEST_CASE("trace: no_grad inside the function stays no_grad, detach, copies and draws replay") {
  generator rng(9);
  const var x = var::randn({5}, rng);
  generator noise(3);
  auto f = [&](const var& a) {
    var scale;
    {
      no_grad off;
      scale = a * 2.0;
    }
    return a * scale + a.detach() * var::rand({5}, noise) + a.to(fg::host);
  };
  const graph g = trace(f, x);
  const std::string t = text_of(g);
  CHECK(t.find("# no_grad") != std::string::npos);
  CHECK(t.find("detach(") != std::string::npos);
  CHECK(t.find("to_host(%0)") != std::string::npos);  // a copy between devices is a step
  CHECK(t.find("rand(shape=[5]") != std::string::npos);
  noise = generator(5);
  const var a = fresh(x);
  g.run({a})[0].backward(var::ones({5}));
  noise = generator(5);
  const var b = fresh(x);
  f(b).backward(var::ones({5}));
  CHECK(same(a.grad(), b.grad()));
}

TEST_CASE("graph: run() names the signature it was traced for") {
  const graph g = trace([](const var& a) { return a + 1.0; }, var::zeros({2, 3}));
  CHECK_THROWS_WITH_AS(g.run({var::zeros({3, 2})}),
                       doctest::Contains("traced for inputs float32[2, 3], and is given "
                                         "float32[3, 2]"),
                       shape_error);
  CHECK_THROWS_AS(g.run({var::zeros({2, 3}, dtype::float64)}), shape_error);
  CHECK_THROWS_AS(g.run({}), shape_error);
}

TEST_CASE("graph: DOT has a box per step and the edges between them") {
  const var w = var::ones({3}).requires_grad(true);
  const graph g = trace([&](const var& a) { return sum(exp(a) * w); }, var::zeros({3}));
  const std::string dot = to_dot(g);
  CHECK(dot.find("digraph fusegrad {") == 0);
  CHECK(dot.find("s0 [label=\"exp\\nfloat32[3]\"]") != std::string::npos);
  CHECK(dot.find("v0 -> s0;") != std::string::npos);
  CHECK(dot.find("parameter\\nfloat32[3]") != std::string::npos);
  CHECK(dot.find("s2 -> out0;") != std::string::npos);
}

TEST_CASE("function: traces once per signature, then runs the graph, eager past the limit") {
  int calls = 0;
  var w = var::randn({4}).requires_grad(true);
  fg::function f(
      [&](const var& a) {
        ++calls;
        return sum(a * w, {-1});
      },
      2);
  const var a = var::randn({3, 4}), b = var::randn({3, 4}), c = var::randn({5, 4});
  CHECK(same(f(a), sum(a * w, {-1})));
  CHECK(same(f(b), sum(b * w, {-1})));
  CHECK(calls == 1);  // b has a's signature
  CHECK(same(f(c), sum(c * w, {-1})));
  CHECK(calls == 2);
  CHECK(f.graphs().size() == 2);
  CHECK(same(f(a.to(dtype::float64)), sum(a.to(dtype::float64) * w, {-1})));
  CHECK(calls == 3);  // the third signature runs eagerly
  CHECK(f.eager_calls() == 1);
  CHECK(f.graphs().size() == 2);
  // Gradients reach the captured parameter through the graph.
  w.zero_grad();
  f(a).backward(var::ones({3}));
  const var traced = w.grad().to(host);
  w.zero_grad();
  sum(a * w, {-1}).backward(var::ones({3}));
  CHECK(same(traced, w.grad()));
}

// The plan: which steps each chain runs (as their ops' names).
std::vector<std::vector<std::string>> chain_ops(const graph& g) {
  std::vector<std::vector<std::string>> out;
  for (const auto& c : g.fused_chains()) {
    out.emplace_back();
    for (std::size_t k : c)
      out.back().push_back(g.steps()[k].op);
  }
  return out;
}
using names = std::vector<std::vector<std::string>>;

TEST_CASE("graph: elementwise steps and the sum after them run as one planned pass") {
  generator rng(4);
  // W5 and W1: one chain each, the sum inside it; values and gradients as eager's.
  const graph w5 =
      check_traced([](const var& x) { return sum(log(1.0 + exp(x))); }, {}, var::randn({10}, rng));
  CHECK(chain_ops(w5) == names{{"exp", "add", "log", "sum"}});
  CHECK(text_of(w5).find("# one pass: %1 %3 %4 %5") != std::string::npos);
  const var a = var::randn({300}, rng), b = var::randn({300}, rng), c = var::randn({300}, rng),
            d = var::randn({300}, rng);
  const graph w1 = check_traced([](const var& p, const var& q, const var& r,
                                   const var& s) { return sum(p * q + sin(r) * exp(-s)); },
                                {}, a, b, c, d);
  CHECK(chain_ops(w1) == names{{"mul", "sin", "neg", "exp", "mul", "add", "sum"}});
  // A mean keeping its axes, in float64, with a parameter broadcast as one element.
  const var w = var::full({1}, 0.5, dtype::float64).requires_grad(true);
  const graph m = check_traced([&](const var& x) { return mean(tanh(x * w), {}, true); }, {w},
                               var::randn({7, 3}, rng, dtype::float64));
  CHECK(chain_ops(m) == names{{"mul", "tanh", "mean"}});
}

TEST_CASE("graph: a chain is computed where eager would compute it, and only there") {
  generator rng(5);
  const var x = var::randn({6, 4}, rng), v = var::randn({4, 3}, rng);
  const var w = var::randn({4}, rng).requires_grad(true);
  const graph g = check_traced(
      [&](const var& a, const var& b) {
        const var h = tanh(a * w + 1.0);  // a * w broadcasts [4]: a step; h is stored for matmul
        const var y = matmul(h, b);       // not elementwise: a step by itself
        const var z = sigmoid(y) * 2.0;   // read by two reductions and returned
        const var row = sum(z, {1});      // over an axis: a step, z stored first
        return std::vector<var>{sum(exp(z)), row, z};  // exp(z) and its sum: one pass
      },
      {w}, x, v);
  CHECK(chain_ops(g) == names{{"add", "tanh"}, {"sigmoid", "mul"}, {"exp", "sum"}});
  // A value two chains read is computed in each (eager recomputes it too), and a chain returned
  // is computed at the end.
  const graph twice = check_traced(
      [](const var& a) {
        const var e = exp(a);
        return std::vector<var>{sum(e * 2.0), sum(e * 3.0), square(e)};
      },
      {}, x);
  CHECK(chain_ops(twice) == names{{"exp", "mul", "sum"}, {"exp", "mul", "sum"}, {"exp", "square"}});
}

TEST_CASE("graph: a chain longer than the fusion limit is cut as eager cuts it") {
  generator rng(6);
  auto deep = [](const var& a) {
    var y = a;
    for (int k = 0; k < 45; ++k)
      y = sin(y) * 0.9 + 0.1;  // 3 ops a round: 135 in all
    return sum(y);
  };
  const graph g = check_traced(deep, {}, var::randn({40}, rng));
  const names chains = chain_ops(g);
  REQUIRE(chains.size() >= 5);
  for (const auto& c : chains)
    CHECK(c.size() <= dynamic::fusion_limit + 1);  // (+1: the sum)
  CHECK(chains.back().back() == "sum");
}

TEST_CASE(
    "graph: without fusion, in anomaly mode and under no_grad the plan gives eager's values") {
  generator rng(7);
  const var x = var::randn({9}, rng);
  var w = var::randn({9}, rng).requires_grad(true);
  auto f = [&](const var& a) { return sum(exp(a * w) - clamp(a, -0.5, 0.5) * w); };
  const graph g = trace(f, x);
  for (int mode = 0; mode < 3; ++mode) {
    INFO("mode " << mode);
    auto both = [&](auto&& run) {
      w.zero_grad();
      const var a = fresh(x);
      var y = run(a);
      y.backward();
      return std::array<var, 3>{y, a.grad(), w.grad()};
    };
    auto under = [&](auto&& run) {
      if (mode == 0) {
        no_fusion off;
        return both(run);
      }
      if (mode == 1) {
        detect_anomaly on;
        return both(run);
      }
      return both(run);
    };
    const auto eager = under([&](const var& a) { return f(a); });
    const auto traced = under([&](const var& a) { return g.run({a})[0]; });
    for (std::size_t k = 0; k < 3; ++k)
      CHECK(same(eager[k], traced[k]));
  }
  no_grad off;
  const var y = g.run({x})[0];
  CHECK(!y.requires_grad());
  CHECK(same(y, f(x)));
}

TEST_CASE("graph: a chain over a value whose extents follow the data runs as eager") {
  // masked_select's length is the data's: a run with more (or no) selected elements than the
  // trace had must not read its operand at the recorded extents.
  auto f = [](const var& a) { return sum(exp(masked_select(a, a > 0)) * 2.0); };
  const var x = var::from({1, -1, 2, -2, 3}, {5});
  const graph g = trace(f, x);
  CHECK(chain_ops(g) == names{{"exp", "mul", "sum"}});
  for (const var& other : {var::from({1, 2, 3, 4, -5}, {5}), var::from({-1, -2, -3, -4, -5}, {5}),
                           var::from({0.5, -1, 0.25, -2, 3}, {5})}) {
    const var a = fresh(other), b = fresh(other);
    var yg = g.run({a})[0], ye = f(b);
    CHECK(same(yg, ye));
    yg.backward();
    ye.backward();
    CHECK(same(a.grad(), b.grad()));
  }
}

TEST_CASE("graph: an output chain is given back pending, as eager's, so a sum after it fuses") {
  generator rng(8);
  const var x = var::randn({1000}, rng);
  auto f = [](const var& a) { return tanh(a) * 3.0 + 1.0; };
  const graph g = trace(f, x);
  const var y = g.run({x})[0];
  CHECK(y.get().pending());
  CHECK(same(mean(y), mean(f(x))));  // (a stored value would be summed another way)
}

TEST_CASE("graph: an update in place is a barrier, as eager computes pending values first") {
  generator rng(9);
  nn::BatchNorm2d eager_bn(3), traced_bn(3);
  const var x = var::randn({4, 3, 2, 2}, rng);
  auto with = [&](nn::BatchNorm2d& bn) {
    return [&bn](const var& a) {
      const var before = bn.running_mean * 1.0;  // read before the update: pending until then
      const var y = bn(a);
      return std::vector<var>{y, before, bn.running_mean * 1.0};
    };
  };
  const graph g = trace(with(traced_bn), x);  // (its run updates traced_bn once)
  with(eager_bn)(x);
  const std::vector<var> traced = g.run({x}), eager = with(eager_bn)(x);
  for (std::size_t k = 0; k < eager.size(); ++k) {
    INFO("output " << k);
    CHECK(same(traced[k], eager[k]));
  }
  CHECK(eager[1].at(0) != eager[2].at(0));  // the statistics before this batch, and after
}

TEST_CASE("graph: a graph that makes a value twice or reads one before it is made is not planned") {
  // What io/graph_file.hpp's checks let through (ids in range) may still break the recorded
  // form; such a graph runs step by step.
  const graph traced = trace([](const var& a) { return exp(a) * 2.0; }, var::zeros({3}));
  REQUIRE(traced.steps().size() == 2);
  std::vector<graph::step> steps = traced.steps();
  steps[0].out = {0};  // exp writes the input it reads
  const graph bad = graph::from_parts(traced.values(), steps, traced.captures(), traced.inputs(),
                                      traced.outputs(), {});
  CHECK(bad.fused_chains().empty());
  CHECK_THROWS_AS(bad.run({var::zeros({3})}), std::exception);  // (exp's value is never made)
}
