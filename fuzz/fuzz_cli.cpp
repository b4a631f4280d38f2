// Fuzzes the example programs' command line: NUL-separated arguments, parsed with the shared
// flags and one of each kind of extra flag; any arguments give options or a UsageError.
// Arguments naming --out are skipped: parse creates that directory, and a fuzzer must not.
#include <tessera/train/cli.hpp>

#include <sstream>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> args(1);
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] == 0) args.emplace_back();
    else args.back() += char(data[i]);
  }
  for (const auto& arg : args)
    if (arg.rfind("--o", 0) == 0) return 0;
  tessera::train::Options options;
  options.out = "/tmp/tessera-fuzz-cli-out";
  std::size_t samples = 4096;
  double beta = 1.0;
  bool mse = false;
  std::string classifier;
  int depth = 3;
  tessera::train::Cli cli("fuzz", "Fuzzes the command line.", options);
  cli.add("--samples", samples, "count", tessera::train::Require::positive);
  cli.add("--beta", beta, "weight", tessera::train::Require::non_negative);
  cli.add("--mse", mse, "switch");
  cli.add("--classifier", classifier, "path", "CHECKPOINT");
  cli.add("--depth", depth, "signed");
  std::ostringstream help;
  try {
    cli.parse(args, help);
    if (samples == 0 || beta < 0) __builtin_trap();  // the constraints held
  } catch (const tessera::train::UsageError&) {
  } catch (const tessera::Error&) {
  }
  return 0;
}
