// examples/export_graph.cpp — train a small CNN eagerly, trace its forward pass into a graph,
// and ship the graph with its weights in one file that a program without this code can run
// (examples/run_graph.cpp) and fine-tune.
//
//   export_graph [out dir]   writes cnn.graph.safetensors, images.npy, labels.npy, logits.npy
//
// The task: 8x8 images holding a bright horizontal or vertical bar (class 0 or 1) on noise.
#include <fusegrad/io/graph_file.hpp>
#include <fusegrad/io/npy.hpp>
#include <fusegrad/nn.hpp>

#include <cstdio>
#include <string>

namespace nn = fg::nn;

// n images [n, 1, 8, 8] and their classes [n] (int64).
void make_bars(fg::generator& g, fg::index_t n, fg::var& images, fg::var& labels) {
  images = fg::var::randn({n, 1, 8, 8}, g) * 0.3;
  labels = fg::var::randint(0, 2, {n}, g);
  for (fg::index_t i = 0; i < n; ++i) {
    const bool vertical = labels.at<std::int64_t>(fg::sindex_t(i)) == 1;
    const fg::index_t at = 1 + g.below(6);
    for (fg::index_t k = 0; k < 8; ++k) {
      const fg::index_t r = vertical ? k : at, c = vertical ? at : k;
      images.set({fg::sindex_t(i), 0, fg::sindex_t(r), fg::sindex_t(c)}, 1.5);
    }
  }
}

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? std::string(argv[1]) + "/" : "";
  fg::generator g(1);
  nn::Sequential model(nn::Conv2d(1, 4, 3, g, 1, 1), nn::BatchNorm2d(4), nn::ReLU(),
                       nn::MaxPool2d(2), nn::Flatten(), nn::Linear(64, 2, g));
  nn::Adam opt(model.parameters(), {.lr = 0.01});
  fg::var images, labels;
  for (int step = 0; step < 60; ++step) {  // eager training: plain C++
    make_bars(g, 32, images, labels);
    opt.zero_grad();
    nn::cross_entropy(model.forward(images), labels).backward();
    opt.step();
  }
  model.train(false);  // inference: BatchNorm uses its running statistics
  make_bars(g, 64, images, labels);
  const fg::graph forward = fg::trace([&](const fg::var& x) { return model.forward(x); }, images);
  fg::io::save_graph(dir + "cnn.graph.safetensors", forward);
  const fg::var logits = model.forward(images);
  fg::io::save_npy(dir + "images.npy", images);
  fg::io::save_npy(dir + "labels.npy", labels);
  fg::io::save_npy(dir + "logits.npy", logits);
  const double accuracy = fg::mean((fg::argmax(logits, 1) == labels).to(fg::float32)).item();
  std::printf("trained: accuracy %.3f; graph of %zu steps and %zu parameters saved\n", accuracy,
              forward.steps().size(), forward.parameters().size());
  return accuracy >= 0.9 ? 0 : 1;
}
