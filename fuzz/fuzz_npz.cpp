// Fuzzes the .npz reader (zip directory, stored and deflated members, CRCs, the .npy inside):
// any bytes give arrays or an Error.
#include <tessera/io/npy.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    tessera::io::npy_detail::decode_npz<double>(tessera::io::Bytes(data, data + size), "fuzz input");
  } catch (const tessera::Error&) {
  }
  return 0;
}
