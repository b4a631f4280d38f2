// Fuzzes image decoding (every format stb_image reads): any bytes give an image or an Error.
#include <tessera/io/image.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  for (int channels : {0, 3}) {
    try {
      const tessera::Tensor<float> img = tessera::io::decode_image(data, size, channels, "fuzz input");
      for (float v : img)
        if (!(v >= 0.0f && v <= 1.0f)) __builtin_trap();  // decoded values must lie in [0, 1]
    } catch (const tessera::Error&) {
    }
  }
  return 0;
}
