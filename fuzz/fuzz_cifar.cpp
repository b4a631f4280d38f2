// Fuzzes the CIFAR-10 binary reader: any bytes give a dataset or an Error.
#include <tessera/data/cifar.hpp>

#include "scratch_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = write_scratch_file("cifar.bin", data, size);
  try {
    tessera::data::Cifar10Dataset dataset({path});
    const auto last = dataset.get(dataset.size() - 1);
    if (last.label < 0 || last.label > 9) __builtin_trap();
  } catch (const tessera::Error&) {
  }
  return 0;
}
