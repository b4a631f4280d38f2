// quickstart.cpp — tessera in one page: tensors, a DCGAN generator and discriminator for
// 32x32 RGB images, one generator training step, state-dict names, and autograd in double.
#include <tessera/tessera.hpp>
#include <iostream>
namespace ts = tessera;

int main() {
  ts::Rng rng(42);                                              // same seed -> same numbers
  ts::Tensor<float> z = ts::Tensor<float>::randn({64, 100}, rng);
  const ts::Shape& s = z.shape();                               // s.size() == 2, s[0] == 64
  float* p = z.data(); std::size_t n = z.size();                // contiguous, row-major
  std::cout << "z " << s << ", " << n << " values, first " << p[0] << '\n';

  ts::nn::Sequential<float> G;                                  // DCGAN generator, 32x32 RGB
  G.add<ts::nn::Dense>(100, 128 * 8 * 8);
  G.add<ts::nn::Reshape>(ts::Shape{128, 8, 8});
  G.add<ts::nn::BatchNorm>(128);
  G.add<ts::nn::LeakyReLU>(0.2f);
  G.add<ts::nn::Conv2DTranspose>(128, 64, 4, 2, 1);             // in, out, kernel, stride, padding: 8 -> 16
  G.add<ts::nn::BatchNorm>(64);
  G.add<ts::nn::LeakyReLU>(0.2f);
  G.add<ts::nn::Conv2DTranspose>(64, 3, 4, 2, 1);               // 16 -> 32
  G.add<ts::nn::Tanh>();

  ts::nn::Sequential<float> D;
  D.add<ts::nn::Conv2D>(3, 64, 4, 2, 1);                        // 32 -> 16
  D.add<ts::nn::LeakyReLU>(0.2f);
  D.add<ts::nn::Flatten>();
  D.add<ts::nn::Dropout>(0.5f);
  D.add<ts::nn::Dense>(64 * 16 * 16, 1);

  ts::optim::Adam<float> optG(G.parameters(), 2e-4, 0.5, 0.999); // lr, beta1, beta2
  ts::Var<float> fake = G(ts::Var<float>(z));                   // (64, 3, 32, 32)
  ts::Var<float> lossG = ts::nn::bce_with_logits(D(fake), ts::Tensor<float>::ones({64, 1}));
  optG.zero_grad();
  lossG.backward();
  optG.step();

  for (auto& [name, param] : G.named_parameters())              // "0.weight", "0.bias", "2.weight", ...
    std::cout << name << ' ' << param.value().shape() << ' ' << param.grad().size() << '\n';
  for (auto& [name, buffer] : G.named_buffers())                // "2.running_mean", "2.running_var", ...
    std::cout << name << ' ' << buffer.shape() << '\n';
  G.train(false);                                               // BatchNorm: running stats; Dropout: identity

  ts::Var<double> a(ts::Tensor<double>::randn({3, 4}, rng), /*requires_grad=*/true);
  ts::Var<double> loss = ts::mean(a * a);
  loss.backward();                                              // a.grad() == a.value() * 2 / 12
  std::cout << lossG.value().data()[0] << ' ' << loss.value().data()[0] << '\n';
}
