// Fuzzes the .npy reader: any bytes give a tensor or an Error.
#include <tessera/io/npy.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    tessera::io::npy_detail::decode_npy<float>(data, size, "fuzz input");
  } catch (const tessera::Error&) {
  }
  return 0;
}
