// tests/io/onnx_test.cpp — the protobuf wire format and the ONNX writer's structure and refusals
// (ONNX Runtime runs the exported models: tests/io/onnx_check.py)
#include "io_testing.hpp"

#include <fusegrad/io/onnx.hpp>
#include <fusegrad/nn.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

using fg::var;
namespace io = fg::io;
namespace nn = fg::nn;
namespace pb = fg::io::protobuf;

TEST_CASE("protobuf: what the writer writes, the reader reads") {
  pb::writer inner;
  inner.bytes(1, "nested");
  pb::writer w;
  w.varint(1, 300);
  w.int64(2, -5);
  w.f32(3, 1.5f);
  w.bytes(4, std::string("a\0b", 3));
  w.message(5, inner);
  const std::vector<std::int64_t> ints{0, 1, -1, std::int64_t(1) << 40};
  w.packed_int64(6, ints);
  w.int64(6, 7);  // a repeated field may also come one element at a time
  // The encoding guide's example: field 1 = 150 is 08 96 01.
  pb::writer example;
  example.varint(1, 150);
  CHECK(example.data() == std::string("\x08\x96\x01"));

  pb::reader r(w.data(), "test");
  std::vector<std::int64_t> got;
  int seen = 0;
  while (r.next()) {
    ++seen;
    switch (r.field()) {
      case 1: CHECK(r.varint() == 300); break;
      case 2: CHECK(r.int64() == -5); break;
      case 3: CHECK(r.f32() == 1.5f); break;
      case 4: CHECK(r.bytes() == std::string_view("a\0b", 3)); break;
      case 5: {
        pb::reader n = r.message();
        REQUIRE(n.next());
        CHECK(n.field() == 1);
        CHECK(n.bytes() == "nested");
        CHECK_FALSE(n.next());
        break;
      }
      case 6: r.append_int64s(got); break;
      default: FAIL("an unexpected field");
    }
  }
  CHECK(seen == 7);
  CHECK(got == std::vector<std::int64_t>{0, 1, -1, std::int64_t(1) << 40, 7});
}

TEST_CASE("protobuf: a truncated or malformed message is a format_error naming the file") {
  pb::writer w;
  w.bytes(4, "abcdef");
  const std::string cut = w.data().substr(0, w.data().size() - 2);
  pb::reader r(cut, "model.onnx");
  CHECK_THROWS_WITH_AS(r.next(), doctest::Contains("model.onnx"), io::format_error);
  const std::string ones(11, '\xff');  // (a reader views its message: it must outlive it)
  pb::reader long_varint(ones, "x.onnx");
  CHECK_THROWS_WITH_AS(long_varint.next(), doctest::Contains("varint"), io::format_error);
  pb::reader group("\x0b", "x.onnx");  // field 1, wire type 3 (a group)
  CHECK_THROWS_WITH_AS(group.next(), doctest::Contains("wire type"), io::format_error);
  pb::reader wrong("\x08\x01", "x.onnx");
  REQUIRE(wrong.next());
  CHECK_THROWS_WITH_AS(wrong.bytes(), doctest::Contains("field 1 is not a string"),
                       io::format_error);
}

namespace {
// The model's top-level facts: IR version, opset, and the graph's initializer, input and output
// names, read back with the protobuf reader.
struct model_facts {
  std::int64_t ir = 0, opset = 0;
  std::vector<std::string> initializers, inputs, outputs, op_types;
};
std::string name_of(pb::reader m) {
  while (m.next())
    if (m.field() == 1)
      return std::string(m.bytes());
  return {};
}
model_facts facts(const std::string& bytes) {
  model_facts f;
  pb::reader m(bytes, "model");
  while (m.next()) {
    if (m.field() == 1)
      f.ir = m.int64();
    if (m.field() == 8) {
      pb::reader o = m.message();
      while (o.next())
        if (o.field() == 2)
          f.opset = o.int64();
    }
    if (m.field() != 7)
      continue;
    pb::reader g = m.message();
    while (g.next()) {
      if (g.field() == 5) {
        pb::reader t = g.message();
        while (t.next())
          if (t.field() == 8)
            f.initializers.emplace_back(t.bytes());
      }
      if (g.field() == 11)
        f.inputs.push_back(name_of(g.message()));
      if (g.field() == 12)
        f.outputs.push_back(name_of(g.message()));
      if (g.field() == 1) {
        pb::reader n = g.message();
        while (n.next())
          if (n.field() == 4)
            f.op_types.emplace_back(n.bytes());
      }
    }
  }
  return f;
}
bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}
}  // namespace

TEST_CASE("onnx: opset 17, parameters under the model's names, inputs and outputs named") {
  fg::generator g(3);
  nn::Sequential model(nn::Linear(4, 3, g), nn::ReLU(), nn::Linear(3, 2, g));
  const fg::graph gr = fg::trace([&](const var& x) { return model.forward(x); },
                                 var::randn({5, 4}, g));
  const model_facts plain = facts(io::to_onnx(gr));
  CHECK(plain.ir == 8);
  CHECK(plain.opset == 17);
  CHECK(plain.inputs == std::vector<std::string>{"input_0"});
  CHECK(plain.outputs == std::vector<std::string>{"output_0"});
  CHECK(has(plain.initializers, "capture_1"));
  CHECK(plain.op_types == std::vector<std::string>{"Gemm", "Relu", "Gemm", "Identity"});

  const model_facts named = facts(io::to_onnx(
      gr, {.names = model.named_parameters(), .input_names = {"x"}, .output_names = {"logits"}}));
  for (const auto& [name, p] : model.named_parameters())
    CHECK_MESSAGE(has(named.initializers, name), name);
  CHECK(named.inputs == std::vector<std::string>{"x"});
  CHECK(named.outputs == std::vector<std::string>{"logits"});
  CHECK_THROWS_WITH_AS(io::to_onnx(gr, {.input_names = {"a", "b"}}),
                       "fg::io::save_onnx(): 2 input names for a graph of 1 inputs",
                       std::invalid_argument);

  const std::string path = fg::testing::temp_path("fg_onnx_test.onnx");
  io::save_onnx(path, gr);
  CHECK(fg::testing::slurp(path) == io::to_onnx(gr));
}

TEST_CASE("onnx: a graph that a deployed model should not hold is refused, naming the op") {
  fg::generator g(4);
  const var x = var::randn({4, 2, 3, 3}, g);
  nn::Sequential drop(nn::Dropout(0.5));
  const fg::graph training_dropout =
      fg::trace([&](const var& v) { return drop.forward(v); }, x);
  CHECK_THROWS_WITH_AS(io::to_onnx(training_dropout),
                       doctest::Contains("'dropout' is a dropout in training mode"),
                       std::invalid_argument);
  nn::BatchNorm2d bn(2);
  const fg::graph training_bn = fg::trace([&](const var& v) { return bn.forward(v); }, x);
  CHECK_THROWS_WITH_AS(io::to_onnx(training_bn),
                       doctest::Contains("'running_update' updates a BatchNorm"),
                       std::invalid_argument);
  bn.train(false);
  const fg::graph evaluation = fg::trace([&](const var& v) { return bn.forward(v); }, x);
  CHECK_NOTHROW(io::to_onnx(evaluation));
  const fg::graph scan = fg::trace([](const var& v) { return fg::cumprod(v, 1); }, x);
  CHECK_THROWS_WITH_AS(io::to_onnx(scan),
                       "fg::io::save_onnx(): the graph's op 'cumprod' has no ONNX counterpart "
                       "that fusegrad exports",
                       std::invalid_argument);
}

TEST_CASE("onnx: a graph exported and loaded back computes and differentiates as the model") {
  fg::generator g(5);
  nn::Sequential model(nn::Linear(4, 6, g), nn::GELU(), nn::LayerNorm(6), nn::Linear(6, 2, g));
  const var x = var::randn({3, 4}, g);
  const fg::graph gr = fg::trace([&](const var& v) { return model.forward(v); }, x);
  io::onnx_model m = io::from_onnx(io::to_onnx(gr, {.names = model.named_parameters()}));
  CHECK(m.input_names == std::vector<std::string>{"input_0"});
  CHECK(m.output_names == std::vector<std::string>{"output_0"});
  REQUIRE(m.named_parameters.size() == model.named_parameters().size());
  for (std::size_t k = 0; k < m.named_parameters.size(); ++k) {
    CHECK(m.named_parameters[k].first == model.named_parameters()[k].first);
    CHECK(m.named_parameters[k].second.requires_grad());
  }
  fg::sum(model.forward(x)).backward();
  var loaded = m.graph.run({x})[0];
  CHECK(fg::max(fg::abs(loaded - model.forward(x))).item() < 1e-6);
  fg::sum(loaded).backward();
  for (std::size_t k = 0; k < m.named_parameters.size(); ++k)
    CHECK_MESSAGE(fg::max(fg::abs(m.named_parameters[k].second.grad() -
                                  model.named_parameters()[k].second.grad()))
                          .item() < 1e-5,
                  m.named_parameters[k].first);
  CHECK(m.graph.parameters().size() == m.named_parameters.size());
}

namespace {
// A model of one node `op`(x) -> y with attributes `attrs`, x float32 of `dims` (-1: a symbolic
// axis).
std::string one_node_model(const std::string& op, const std::vector<std::int64_t>& dims,
                           const std::vector<fg::io::detail::onnx::attribute>& attrs = {}) {
  namespace on = fg::io::detail::onnx;
  pb::writer shape, tensor, type, input, node, graph, opset, model;
  for (std::int64_t d : dims) {
    pb::writer dim;
    if (d < 0)
      dim.bytes(on::field::dim_param, "batch");
    else
      dim.int64(on::field::dim_value, d);
    shape.message(on::field::shape_dim, dim);
  }
  tensor.int64(on::field::type_tensor_elem_type, 1);
  tensor.message(on::field::type_tensor_shape, shape);
  type.message(on::field::type_tensor, tensor);
  input.bytes(on::field::value_info_name, "x");
  input.message(on::field::value_info_type, type);
  node.bytes(on::field::node_input, "x");
  node.bytes(on::field::node_output, "y");
  node.bytes(on::field::node_name, "the_node");
  node.bytes(on::field::node_op_type, op);
  for (const auto& a : attrs)
    node.message(on::field::node_attribute, on::attribute_message(a));
  graph.message(on::field::graph_node, node);
  graph.message(on::field::graph_input, input);
  pb::writer output;
  output.bytes(on::field::value_info_name, "y");
  output.message(on::field::value_info_type, type);
  graph.message(on::field::graph_output, output);
  opset.int64(on::field::opset_version, 17);
  model.int64(on::field::model_ir_version, 8);
  model.message(on::field::model_opset_import, opset);
  model.message(on::field::model_graph, graph);
  return model.data();
}
}  // namespace

TEST_CASE("onnx: what load_onnx cannot read or run, it says, naming the node or the file") {
  const io::onnx_model relu = io::from_onnx(one_node_model("Relu", {2, 3}));
  CHECK(fg::sum(relu.graph.run({var::full({2, 3}, -1.0)})[0]).item() == 0);
  CHECK_THROWS_WITH_AS(io::from_onnx(one_node_model("Mystery", {2}), "m.onnx"),
                       "fg::io::load_onnx(): m.onnx: node 'the_node' (Mystery) is an op that "
                       "fusegrad does not import",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(io::from_onnx(one_node_model("Relu", {-1, 3}), "m.onnx"),
                       doctest::Contains("input 'x' has a symbolic axis 0; give its extents in "
                                         "onnx_import_options::input_shapes"),
                       std::invalid_argument);
  const io::onnx_model shaped = io::from_onnx(one_node_model("Relu", {-1, 3}), "m.onnx",
                                              {.input_shapes = {{"x", fg::extents{5, 3}}}});
  CHECK(shaped.graph.run({var::ones({5, 3})})[0].shape() == fg::extents{5, 3});
  const std::string bytes = one_node_model("Relu", {2});
  CHECK_THROWS_AS(io::from_onnx(bytes.substr(0, bytes.size() - 3), "m.onnx"), io::format_error);
  CHECK_THROWS_WITH_AS(io::from_onnx(std::string("\x08\x08", 2), "m.onnx"),
                       "m.onnx: not an ONNX model (no graph)", io::format_error);
  // ONNX's meanings, and hostile attributes refused before they index anything.
  const io::onnx_model flat =
      io::from_onnx(one_node_model("Flatten", {2, 3, 4}, {{"axis", std::int64_t(-1)}}));
  CHECK(flat.graph.run({var::ones({2, 3, 4})})[0].shape() == fg::extents{6, 4});
  CHECK_THROWS_WITH_AS(
      io::from_onnx(one_node_model("Unsqueeze", {2}, {{"axes", std::vector<std::int64_t>{0, 0}}})),
      doctest::Contains("(Unsqueeze) names an axis twice"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      io::from_onnx(one_node_model("MaxPool", {1, 1, 4, 4},
                                   {{"kernel_shape", std::vector<std::int64_t>{2, 2}},
                                    {"strides", std::vector<std::int64_t>{}}})),
      doctest::Contains("(MaxPool) has strides, pads or dilations that are not"),
      std::invalid_argument);
  CHECK_THROWS_WITH_AS(io::from_onnx(one_node_model("Relu", {std::int64_t(1) << 40, 1 << 20})),
                       doctest::Contains("input 'x' has extents no tensor has"), io::format_error);
  CHECK_THROWS_WITH_AS(io::load_onnx("/nonexistent/model.onnx"),
                       doctest::Contains("/nonexistent/model.onnx"), std::runtime_error);
}

TEST_CASE("onnx: every op a graph records is exported, or refused for a stated reason") {
  // Decided not to export: no ONNX op computes them (cumprod), or their result's extents
  // depend on the data in a way ONNX Runtime's Compress would express poorly (masked_select).
  const std::set<std::string> unexported{"cumprod", "masked_select"};
  const std::string generic = io::detail::onnx::why_not("?");
  for (const std::string& n : fg::testing::recorded_op_names()) {
    INFO("op " << n);
    const bool ruled = io::detail::onnx::rules().count(n) != 0;
    const bool refused = io::detail::onnx::why_not(n) != generic;
    CHECK(int(ruled) + int(refused) + int(unexported.count(n)) == 1);
  }
}

TEST_CASE("onnx_proto: every dtype has its ONNX element type, and back") {
  namespace on = fg::io::detail::onnx;
  for (int t = 0; t <= int(fg::dtype::bool_); ++t) {
    const auto d = fg::dtype(t);
    CAPTURE(fg::dtype_name(d));
    CHECK(on::elem_type(d) != 0);
    CHECK(on::dtype_of_elem(on::elem_type(d)) == d);
  }
  CHECK(on::elem_type(fg::dtype::float32) == 1);  // onnx.proto's TensorProto.FLOAT
  CHECK_FALSE(on::dtype_of_elem(8).has_value());  // STRING: fusegrad has none
}
