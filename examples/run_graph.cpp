// examples/run_graph.cpp — run a graph saved by fg::io::save_graph without the code that made it:
// the file holds the ops and the weights. Optionally check its outputs and fine-tune it.
//
//   run_graph <graph file> <input.npy>... [--expect <output.npy>] [--finetune <labels.npy>]
//             [--print]
//
// Writes output0.npy (and output1.npy, ...). --expect exits 1 unless output 0 equals the file bit
// for bit; --finetune trains the graph's parameters with cross-entropy against int64 labels
// (20 Adam steps), exits 1 unless the loss falls, and saves the result as finetuned.graph.safetensors.
#include <fusegrad/io/graph_file.hpp>
#include <fusegrad/io/npy.hpp>
#include <fusegrad/nn/optim.hpp>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: run_graph <graph file> <input.npy>... [--expect <output.npy>] "
                         "[--finetune <labels.npy>] [--print]\n");
    return 2;
  }
  std::vector<fg::var> inputs;
  std::string expect, labels;
  bool print = false;
  for (int k = 2; k < argc; ++k) {
    if (!std::strcmp(argv[k], "--expect") && k + 1 < argc)
      expect = argv[++k];
    else if (!std::strcmp(argv[k], "--finetune") && k + 1 < argc)
      labels = argv[++k];
    else if (!std::strcmp(argv[k], "--print"))
      print = true;
    else
      inputs.push_back(fg::io::load_npy(argv[k]));
  }
  const fg::graph g = fg::io::load_graph(argv[1]);
  if (print)
    std::cout << g;
  const std::vector<fg::var> out = [&] {
    const fg::no_grad off;
    return g.run(inputs);
  }();
  for (std::size_t k = 0; k < out.size(); ++k)
    fg::io::save_npy("output" + std::to_string(k) + ".npy", out[k]);
  std::printf("ran %zu steps: output 0 is %s\n", g.steps().size(), out[0].shape().str().c_str());
  if (!expect.empty()) {
    const fg::var want = fg::io::load_npy(expect);
    const bool same = want.shape() == out[0].shape() && want.dtype() == out[0].dtype() &&
                      std::memcmp(want.ready().first_byte(), out[0].ready().first_byte(),
                                  want.size() * fg::dynamic::element_size(want.dtype())) == 0;
    std::printf("output 0 %s %s\n", same ? "equals" : "DIFFERS FROM", expect.c_str());
    if (!same)
      return 1;
  }
  if (!labels.empty()) {  // the shipped model trained further, still without its source
    const fg::var y = fg::io::load_npy(labels);
    fg::nn::Adam opt(g.parameters(), {.lr = 0.01});
    auto loss = [&] { return fg::nn::cross_entropy(g.run(inputs)[0], y); };
    const double before = loss().item();
    for (int step = 0; step < 20; ++step) {
      opt.zero_grad();
      loss().backward();
      opt.step();
    }
    const double after = loss().item();
    std::printf("fine-tuned: loss %.4f -> %.4f\n", before, after);
    fg::io::save_graph("finetuned.graph.safetensors", g);
    if (!(after < before))
      return 1;
  }
  return 0;
}
