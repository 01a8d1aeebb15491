// examples/fashion_mnist.cpp — the main job: train the W4 CNN on Fashion-MNIST to at least 90%
// test accuracy, save it as safetensors, reload it into a fresh model and check that it scores
// the same; then, if asked, deploy it.
//
//   fashion_mnist [epochs = 4] [data dir = /usr/share/datasets/fashion-mnist] [out =
//   model.safetensors] [--graph model.graph.safetensors] [--export model.onnx]
//   [--freeze model.hpp]
//
//   --graph   the trained forward pass (batch 1) as a graph file with its weights, for a C++
//             program without this code (fg::io::load_graph; examples/run_graph.cpp)
//   --export  the same as an ONNX model (opset 17; ONNX Runtime runs this CNN's export in the
//             tests: tests/io/onnx_check.py)
//   --freeze  the same as a firmware header (fg::freeze: an fg::static_nn model)
//
// The data is Debian's `dataset-fashion-mnist` package (IDX files, gzip). Exit status 1 when the
// reloaded model is below 90% or differs from the trained one.
#include <fusegrad/io/freeze.hpp>
#include <fusegrad/io/graph_file.hpp>
#include <fusegrad/io/idx.hpp>
#include <fusegrad/io/onnx_export.hpp>
#include <fusegrad/io/safetensors.hpp>
#include <fusegrad/nn.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace nn = fg::nn;

// conv 1->32 3x3, ReLU, maxpool 2; conv 32->64 3x3, ReLU, maxpool 2; linear 1600->10.
nn::Sequential make_model(fg::generator& g) {
  return nn::Sequential(nn::Conv2d(1, 32, 3, g), nn::ReLU(), nn::MaxPool2d(2),
                        nn::Conv2d(32, 64, 3, g), nn::ReLU(), nn::MaxPool2d(2), nn::Flatten(),
                        nn::Linear(1600, 10, g));
}

// Images as [N, 1, 28, 28], standardised with the training set's mean and deviation of the
// pixel values (0.2860 and 0.3530); labels as [N] int64.
nn::batch load(const std::string& dir, const char* part) {
  fg::var x = fg::io::read_idx(dir + "/" + part + "-images-idx3-ubyte.gz");
  fg::var y = fg::io::read_idx(dir + "/" + part + "-labels-idx1-ubyte.gz", fg::int64);
  const fg::index_t n = x.shape()[0];
  return {fg::reshape((x * (1.0 / 255.0) - 0.2860) * (1.0 / 0.3530), {n, 1, 28, 28}), y};
}

// The trained model deployed: its forward pass for one image traced, then saved as a graph
// file, exported as ONNX and/or frozen, as asked. (Loading the ONNX file back here would double
// this program's compile time: the importer knows every op.)
void deploy(nn::Sequential& model, const fg::var& images, const std::string& graph_path,
            const std::string& onnx_path, const std::string& header_path) {
  model.train(false);
  const fg::graph forward = fg::trace([&](const fg::var& x) { return model.forward(x); },
                                      fg::slice(images, 0, 0, 1));
  if (!graph_path.empty()) {
    fg::io::save_graph(graph_path, forward);
    std::printf("saved the traced model with its weights to %s\n", graph_path.c_str());
  }
  if (!onnx_path.empty()) {
    fg::io::save_onnx(onnx_path, forward,
                      {.names = model.named_parameters(), .input_names = {"image"},
                       .output_names = {"logits"}});
    std::printf("exported the model to %s (ONNX opset 17, batch 1)\n", onnx_path.c_str());
  }
  if (!header_path.empty()) {
    fg::freeze(forward, header_path);
    std::printf("froze the model into %s (fg::static_nn, batch 1, namespace frozen_model)\n",
                header_path.c_str());
  }
}

int main(int argc, char** argv) {
  std::vector<std::string> args;
  std::string graph_path, onnx_path, header_path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--graph" && i + 1 < argc)
      graph_path = argv[++i];
    else if (a == "--export" && i + 1 < argc)
      onnx_path = argv[++i];
    else if (a == "--freeze" && i + 1 < argc)
      header_path = argv[++i];
    else
      args.push_back(a);
  }
  const int epochs = args.size() > 0 ? std::atoi(args[0].c_str()) : 4;
  const std::string dir = args.size() > 1 ? args[1] : "/usr/share/datasets/fashion-mnist";
  const std::string out = args.size() > 2 ? args[2] : "model.safetensors";
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(clock::now() - t0).count(); };

  const nn::batch train = load(dir, "train"), test = load(dir, "t10k");  // the test set validates
  std::printf("Fashion-MNIST: %lld training and %lld test images\n",
              (long long)train.inputs.shape()[0], (long long)test.inputs.shape()[0]);

  fg::generator g(42);
  nn::Sequential model = make_model(g);
  nn::Adam opt(model.parameters(), {.lr = 2e-3});
  nn::DataLoader train_batches(train.inputs, train.targets, 64, true, 7);
  nn::DataLoader test_batches(test.inputs, test.targets, 1000, false);
  nn::CosineLR cosine(opt, epochs * train_batches.batches());  // to 0 over the run
  nn::ScheduleCallback per_batch(cosine, true);
  nn::fit(model, train_batches, nn::cross_entropy, opt,
          {.epochs = epochs, .validation = &test_batches, .callbacks = {&per_batch}});

  const double trained = nn::evaluate(model, test_batches, nn::cross_entropy).second;
  fg::io::save_safetensors(out, model.state_dict());
  fg::generator other(1);
  nn::Sequential reloaded = make_model(other);  // different weights until loaded
  reloaded.load_state_dict(fg::io::load_safetensors(out));
  const double again = nn::evaluate(reloaded, test_batches, nn::cross_entropy).second;
  std::printf("saved to %s; reloaded: test accuracy %.2f%% (trained: %.2f%%), %.0f s in all\n",
              out.c_str(), 100 * again, 100 * trained, seconds());
  if (!graph_path.empty() || !onnx_path.empty() || !header_path.empty())
    deploy(model, test.inputs, graph_path, onnx_path, header_path);
  return again >= 0.90 && again == trained ? 0 : 1;
}
