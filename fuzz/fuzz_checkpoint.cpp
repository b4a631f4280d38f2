// Fuzzes the checkpoint reader: any bytes restore a model completely or throw an Error and
// change nothing.
#include <tessera/io/checkpoint.hpp>
#include <tessera/nn/batchnorm.hpp>
#include <tessera/nn/dense.hpp>
#include <tessera/nn/sequential.hpp>
#include <tessera/optim/adam.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace ts = tessera;
  static ts::nn::Sequential<float>& model = *[] {
    auto* m = new ts::nn::Sequential<float>;  // lives for the whole fuzzing run
    m->add<ts::nn::Dense>(3, 2);
    m->add<ts::nn::BatchNorm>(2);
    return m;
  }();
  static ts::optim::Adam<float> optimizer(model.parameters());
  static ts::Rng rng(1);
  ts::io::Checkpoint<float> ckpt;
  ckpt.add("model", model).add("optimizer", optimizer).add("rng", rng);
  ts::io::Bytes bytes(data, data + size);
  // Half the inputs get a correct payload size and CRC, so mutations reach the record parser
  // instead of stopping at the checksum.
  constexpr std::size_t header = 28;
  if (size > header && (data[size - 1] & 1)) {
    const std::uint64_t payload = size - header;
    for (int i = 0; i < 8; ++i) bytes[16 + i] = std::uint8_t(payload >> (8 * i));
    const std::uint32_t crc = ts::io::crc32(bytes.data() + header, payload);
    for (int i = 0; i < 4; ++i) bytes[24 + i] = std::uint8_t(crc >> (8 * i));
  }
  try {
    ckpt.load_bytes(bytes, "fuzz input");
  } catch (const ts::Error&) {
  }
  return 0;
}
