// Graph pictures and anomaly mode.
#include "dynamic_testing.hpp"

using namespace fg;

TEST_CASE("to_dot / a dynamic result's tape: op names, shapes and edges") {
  var x = var::from({1, 2, 3, 4, 5, 6}, {2, 3}).requires_grad(true);
  var w = var::ones({3, 2}).requires_grad(true);
  var y = sum(tanh(matmul(x, w)));
  const std::string dot = to_dot(y);
  CHECK(dot.rfind("digraph fusegrad {", 0) == 0);
  CHECK(dot.find("sum\\n[]\\nfused: tanh\"") != std::string::npos);  // tanh runs in sum's pass
  CHECK(dot.find("matmul\\n[2, 2]") != std::string::npos);
  CHECK(dot.find("leaf\\n[3, 2]") != std::string::npos);
  CHECK(dot.find("n2 -> n1") != std::string::npos);  // a leaf feeds matmul
  {
    no_fusion eager;  // every op its own node
    const std::string each = to_dot(sum(tanh(matmul(x, w))));
    CHECK(each.find("sum\\n[]\"") != std::string::npos);
    CHECK(each.find("tanh\\n[2, 2]\"") != std::string::npos);
    CHECK(each.find("n3 -> n2") != std::string::npos);
  }
  var chain = exp(x) * x;  // a computed chain shows its ops
  CHECK(to_dot(chain).find("mul\\n[2, 3]\\nfused: exp mul\"") != std::string::npos);
}

TEST_CASE("to_dot / a static expression's type") {
  tensor<float, shape<4, 3>> a;
  tensor<float, shape<3>> b;
  const std::string dot = to_dot(sum(exp(a * b), axes<1>{}) + 1.0f);
  CHECK(dot.find("add\\n[4]") != std::string::npos);
  CHECK(dot.find("sum\\n[4]") != std::string::npos);
  CHECK(dot.find("mul\\n[4, 3]") != std::string::npos);
  CHECK(dot.find("tensor\\n[3]") != std::string::npos);
  CHECK(dot.find("1\\n[]") != std::string::npos);
}

TEST_CASE("detect_anomaly / names the first op whose forward or backward is not finite") {
  var x = var::from({1, 0}, {2}, dtype::float64).requires_grad(true);
  {
    detect_anomaly on;
    CHECK_THROWS_WITH_AS(log(x - 1.0),
                         "fg::detect_anomaly: 'log' produced NaN or Inf in its forward (inputs "
                         "[2], output [2])",
                         fg::autograd_error);
    var y = sum(sqrt(x));  // finite forward: sqrt(0) = 0; its derivative at 0 is inf
    CHECK_THROWS_WITH_AS(y.backward(),
                         "fg::detect_anomaly: 'sqrt' produced NaN or Inf in its backward, for "
                         "its input 0 of shape [2] (output [2])",
                         fg::autograd_error);
  }
  CHECK_NOTHROW(log(x - 1.0));  // off again outside the scope
}

TEST_CASE("anomaly / a backward stopped by an anomaly leaves every gradient as it was") {
  var x = var::from({0, 1}, {2}, dtype::float64).requires_grad(true);
  var w = var::from({2, 3}, {2}, dtype::float64).requires_grad(true);
  detect_anomaly on;
  // In one order or the other, w's gradient is computed before sqrt's infinity is met.
  for (var y : {sum(w * 2.0) + sum(sqrt(x)), sum(sqrt(x)) + sum(w * 2.0)}) {
    CHECK_THROWS_AS(y.backward(), fg::autograd_error);
    CHECK(!w.grad().defined());
    CHECK(!x.grad().defined());
  }
}

TEST_CASE("to_dot / a graph a hundred thousand ops deep") {
  var x = var::from({1}, {1}, dtype::float64).requires_grad(true);
  no_fusion eager;
  var s = x;
  for (int i = 0; i < 100000; ++i)
    s = s * 1.0;
  const std::string dot = to_dot(s);
  CHECK(dot.find("n100000 -> n99999;") != std::string::npos);  // the leaf, at the bottom
}
