// A separate project that found tessera with find_package(tessera CONFIG REQUIRED): one
// training step of a tiny conv net proves the headers, Eigen and OpenMP all came along.
#include <tessera/tessera.hpp>

#include <iostream>

int main() {
  namespace ts = tessera;
  ts::Rng rng(1);
  ts::nn::Sequential<float> net;
  net.add<ts::nn::Conv2D>(1, 4, 3, 1, "same");
  net.add<ts::nn::ReLU>();
  net.add<ts::nn::Flatten>();
  net.add<ts::nn::Dense>(4 * 8 * 8, 1);
  ts::optim::Adam<float> opt(net.parameters(), 1e-3);
  ts::Var<float> loss = ts::nn::mse(net(ts::Var<float>(ts::Tensor<float>::randn({2, 1, 8, 8}, rng))),
                                    ts::Tensor<float>::zeros({2, 1}));
  loss.backward();
  opt.step();
  std::cout << "tessera consumer: loss " << loss.value().item() << ", " << ts::num_threads() << " threads\n";
  return loss.value().item() >= 0 ? 0 : 1;
}
