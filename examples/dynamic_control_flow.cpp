// examples/dynamic_control_flow.cpp — define-by-run: a small recurrent net over sequences of
// different lengths, trained with plain C++ control flow (the loop's trip count and a branch
// depend on the data), then its graph drawn with Graphviz.
//
// The task: read a sequence of numbers and say whether their running sum ever went above 1.
// Each step's graph differs from the last; the tape records whatever ran.
#include <fusegrad/dynamic.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <vector>

using fg::var;

namespace {

struct sample {
  std::vector<var> steps;  // each [1, 1]
  double label;            // 1 if the running sum went above 1
};

sample make_sample(fg::generator& g) {
  sample s;
  const int len = 2 + int(g.below(9));  // 2 to 10 steps
  double run = 0, peak = -1e9;
  for (int t = 0; t < len; ++t) {
    const double v = g.uniform(-0.6, 0.8);
    run += v;
    peak = run > peak ? run : peak;
    s.steps.push_back(var::full({1, 1}, v, fg::dtype::float64));
  }
  s.label = peak > 1.0 ? 1.0 : 0.0;
  return s;
}

struct rnn {
  var w_in, w_h, b, w_out;
  explicit rnn(fg::generator& g) {
    w_in = (var::randn({1, 8}, g, fg::dtype::float64) * 0.5).detach().requires_grad(true);
    w_h = (var::randn({8, 8}, g, fg::dtype::float64) * 0.3).detach().requires_grad(true);
    b = var::zeros({1, 8}, fg::dtype::float64).requires_grad(true);
    w_out = (var::randn({8, 1}, g, fg::dtype::float64) * 0.5).detach().requires_grad(true);
  }
  // The logit for one sequence: as many steps as the sequence has.
  var operator()(const std::vector<var>& steps) const {
    var h = var::zeros({1, 8}, fg::dtype::float64);
    for (const var& x : steps)
      h = fg::tanh(fg::matmul(x, w_in) + fg::matmul(h, w_h) + b);
    return fg::sum(fg::matmul(h, w_out));
  }
  std::vector<var*> parameters() { return {&w_in, &w_h, &b, &w_out}; }
};

// Binary cross-entropy with logits, written with a branch on the value for stability.
var bce(const var& z, double label) {
  if (z.item() >= 0)  // log(1 + e^-|z|) + max(z, 0) - z y
    return fg::log1p(fg::exp(-z)) + z * (1.0 - label);
  return fg::log1p(fg::exp(z)) - z * label;
}

}  // namespace

int main() {
  fg::generator g(42);
  rnn net(g);
  std::vector<sample> train, test;
  for (int i = 0; i < 400; ++i)
    train.push_back(make_sample(g));
  for (int i = 0; i < 200; ++i)
    test.push_back(make_sample(g));

  const double lr = 0.1;
  for (int epoch = 1; epoch <= 12; ++epoch) {
    double total = 0;
    for (const sample& s : train) {
      var loss = bce(net(s.steps), s.label);
      total += loss.item();
      for (var* p : net.parameters())
        p->zero_grad();
      loss.backward();
      fg::no_grad off;  // the update is not part of any graph
      // Recurrent nets' gradients can explode on long sequences: clip their norm to 1.
      double norm2 = 0;
      for (var* p : net.parameters())
        norm2 += fg::sum(fg::square(p->grad())).item();
      const double scale = norm2 > 1.0 ? lr / std::sqrt(norm2) : lr;
      for (var* p : net.parameters()) {
        var step = *p - p->grad() * scale;
        *p = step.detach().requires_grad(true);
      }
    }
    if (epoch % 3 == 0)
      std::printf("epoch %2d  mean loss %.4f\n", epoch, total / double(train.size()));
  }

  int correct = 0;
  {
    fg::no_grad off;
    for (const sample& s : test)
      correct += (net(s.steps).item() > 0) == (s.label > 0.5);
  }
  std::printf("test accuracy %d/%zu\n", correct, test.size());

  // The graph of one prediction, for Graphviz: `dot -Tpng rnn_graph.dot -o rnn_graph.png`.
  var one = bce(net(test[0].steps), test[0].label);
  std::ofstream("rnn_graph.dot") << fg::to_dot(one);
  std::cout << "wrote rnn_graph.dot (" << test[0].steps.size() << " steps)";
  if (std::system("command -v dot > /dev/null 2>&1") == 0 &&
      std::system("dot -Tpng rnn_graph.dot -o rnn_graph.png") == 0)
    std::cout << " and rnn_graph.png";
  std::cout << "\n";
  return correct > int(test.size()) * 3 / 4 ? 0 : 1;
}
