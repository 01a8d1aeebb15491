// tests/io/onnx_import.cpp — loads ONNX models (tests/io/onnx_import.py exports them from
// PyTorch; tests/io/onnx_export.cpp from fusegrad) and checks what they compute: outputs, the
// gradients of sum(y * w) with respect to the input and the parameters, and fine-tuning.
//
//   fusegrad_onnx_import <torch dir> [fusegrad export dir]
#include <fusegrad/io/npy.hpp>
#include <fusegrad/io/onnx.hpp>
#include <fusegrad/nn.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
namespace io = fg::io;
namespace nn = fg::nn;

namespace {

int failures = 0;

// Integers and bools equal; floats within 1e-5 of the reference's largest magnitude (the
// normwise relative error, as tests/io/onnx_check.py).
void compare(const std::string& what, const fg::var& got, const fg::var& want) {
  if (got.shape() != want.shape() || got.dtype() != want.dtype()) {
    std::printf("%s: FAILED: %s%s, expected %s%s\n", what.c_str(), fg::dtype_name(got.dtype()),
                got.shape().str().c_str(), fg::dtype_name(want.dtype()),
                want.shape().str().c_str());
    ++failures;
    return;
  }
  const fg::var g = got.to(fg::float64), w = want.to(fg::float64);
  const double scale = want.size() ? fg::max(fg::abs(w)).item() : 1.0;
  const double err =
      want.size() ? fg::max(fg::abs(g - w)).item() / (scale > 0 ? scale : 1.0) : 0.0;
  const bool exact = !fg::is_floating(want.dtype());
  const bool ok = exact ? err == 0 : err <= 1e-5;
  std::printf("%s %s%s: %s %.2e%s\n", what.c_str(), fg::dtype_name(want.dtype()),
              want.shape().str().c_str(), exact ? "difference" : "relative error", err,
              ok ? "" : "  FAILED");
  failures += !ok;
}

// A PyTorch model: forward, the input's and the parameters' gradients.
void torch_case(const std::string& dir, const std::string& name) {
  const std::string base = dir + "/" + name;
  io::onnx_model m = io::load_onnx(base + ".onnx");
  fg::var x = io::load_npy(base + ".x.npy");
  if (fg::is_floating(x.dtype()))
    x.requires_grad(true);
  const fg::var y = m.graph.run({x})[0];
  compare(name + " output", y, io::load_npy(base + ".y.npy"));
  fg::sum(y * io::load_npy(base + ".w.npy")).backward();
  if (fs::exists(base + ".grad.x.npy"))
    compare(name + " input gradient", x.grad(), io::load_npy(base + ".grad.x.npy"));
  int named = 0;
  for (const auto& [pname, p] : m.named_parameters) {
    const std::string ref = base + ".grad." + pname + ".npy";
    if (!fs::exists(ref))
      continue;  // a tensor the exporter made (folded, transposed) rather than a parameter
    compare(name + " gradient of " + pname, p.grad(), io::load_npy(ref));
    ++named;
  }
  std::printf("%s: %zu parameters, %d of them PyTorch's by name\n", name.c_str(),
              m.named_parameters.size(), named);
}

// The imported CNN fine-tuned in C++: Adam on its initializers fits four labelled images.
void fine_tune(const std::string& dir) {
  io::onnx_model m = io::load_onnx(dir + "/torch_cnn.onnx");
  const fg::var x = io::load_npy(dir + "/torch_cnn.x.npy");
  const fg::var labels = fg::var::from(std::vector<std::int64_t>{3, 1, 4, 1}, {4});
  nn::Adam opt(m.graph.parameters(), {.lr = 1e-2});
  double first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    opt.zero_grad();
    fg::var loss = nn::cross_entropy(m.graph.run({x})[0], labels);
    loss.backward();
    opt.step();
    (step == 0 ? first : last) = loss.item();
  }
  const bool ok = last < 0.1 * first;
  std::printf("fine-tuning the imported CNN: loss %.4f -> %.4f%s\n", first, last,
              ok ? "" : "  FAILED");
  failures += !ok;
}

// fusegrad's own exports, loaded back: the same outputs.
void round_trip(const std::string& dir) {
  int models = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".onnx")
      continue;
    const std::string base = (entry.path().parent_path() / entry.path().stem()).string();
    const std::string name = entry.path().stem().string();
    const io::onnx_model m = io::load_onnx(entry.path().string());
    std::vector<fg::var> in;
    for (std::size_t k = 0; k < m.input_names.size(); ++k)
      in.push_back(io::load_npy(base + ".in" + std::to_string(k) + ".npy"));
    const std::vector<fg::var> out = m.graph.run(in);
    for (std::size_t k = 0; k < out.size(); ++k)
      compare(name + " (round trip) output " + std::to_string(k), out[k],
              io::load_npy(base + ".out" + std::to_string(k) + ".npy"));
    ++models;
  }
  std::printf("round trip: %d fusegrad models loaded back\n", models);
  failures += models == 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) {
    std::fprintf(stderr, "usage: fusegrad_onnx_import <torch dir> [fusegrad export dir]\n");
    return 2;
  }
  std::ifstream list(std::string(argv[1]) + "/cases.txt");
  std::string name;
  int cases = 0;
  while (std::getline(list, name))
    if (!name.empty()) {
      torch_case(argv[1], name);
      ++cases;
    }
  if (cases == 0) {
    std::printf("no PyTorch cases in %s\n", argv[1]);
    return 1;
  }
  fine_tune(argv[1]);
  if (argc == 3)
    round_trip(argv[2]);
  std::printf("%s\n", failures ? "onnx_import: FAILED" : "onnx_import: all agree");
  return failures ? 1 : 0;
}
