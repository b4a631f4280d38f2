#include <tessera/tessera.hpp>

#include <iostream>

int main() {
    auto t = tessera::Tensor<float>::zeros({2, 3});
    std::cout << "tessera consumer: shape " << t.shape() << '\n';
    return t.size() == 6 ? 0 : 1;
}
