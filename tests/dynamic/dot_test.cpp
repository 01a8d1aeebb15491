// Graph pictures and anomaly mode.
#include "dynamic_testing.hpp"

using namespace fg;

TEST_CASE("to_dot / a dynamic result's tape: op names, shapes and edges") {
  var x = var::from({1, 2, 3, 4, 5, 6}, {2, 3}).requires_grad(true);
  var w = var::ones({3, 2}).requires_grad(true);
  var y = sum(tanh(matmul(x, w)));
  const std::string dot = to_dot(y);
  CHECK(dot.rfind("digraph fusegrad {", 0) == 0);
  CHECK(dot.find("sum\\n[]") != std::string::npos);
  CHECK(dot.find("tanh\\n[2, 2]") != std::string::npos);
  CHECK(dot.find("matmul\\n[2, 2]") != std::string::npos);
  CHECK(dot.find("leaf\\n[3, 2]") != std::string::npos);
  CHECK(dot.find("n3 -> n2") != std::string::npos);  // a leaf feeds matmul
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
