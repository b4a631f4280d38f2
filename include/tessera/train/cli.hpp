// tessera/train/cli.hpp — the command line of the example programs: the flags they share
// (Options) and their own, parsed strictly, with a usage text that shows every default.
//
//   int train(int argc, char** argv) {
//     ts::train::Options opt;                 // per-example defaults, then parsing
//     opt.epochs = 5; opt.image_size = 32; opt.lr = 2e-4;
//     double beta = 1.0;
//     ts::train::Cli cli("vae", "Trains a convolutional VAE on textures.", opt);
//     cli.add("--beta", beta, "weight of the KL term", ts::train::Require::non_negative);
//     cli.parse(argc, argv);                  // --help: prints usage, sets opt.help
//     if (opt.help) return 0;
//     ...
//   }
//   int main(int argc, char** argv) { return ts::train::run_example(argc, argv, train); }
#pragma once

#include <algorithm>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <iostream>
#include <new>
#include <sstream>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

#include "../core/error.hpp"
#include "../core/parallel.hpp"
#include "../io/checkpoint.hpp"
#include "output_folder.hpp"

namespace tessera::train {

/// A bad command line: unknown flag, missing or malformed value. The message is one line
/// naming the flag and the value, e.g. "--epochs: expected a non-negative integer, got '3x'".
class UsageError : public Error {
 public:
  using Error::Error;
};

/// The flags every example understands. Set per-example defaults before parsing.
struct Options {
  std::string data;              // --data: image folder, one subfolder per class; empty: procedural textures
  std::size_t image_size = 32;   // --image-size: side of the square images, in pixels
  std::size_t channels = 0;      // --channels: 1 (gray) or 3 (RGB); 0: the data's own
  std::size_t epochs = 10;       // --epochs
  std::size_t batch = 64;        // --batch: images per step
  double lr = 1e-3;              // --lr: learning rate
  std::uint64_t seed = 0;        // --seed: for initialisation, data order and sampling
  int threads = 0;               // --threads: OpenMP threads; 0 leaves OpenMP's default
  std::string out;               // --out: output directory, created by parse; empty: out/<program>
  std::string resume;            // --resume: checkpoint to continue from; empty: start afresh
  bool overwrite = false;        // --overwrite: start afresh in an --out that holds a checkpoint
  bool help = false;             // set by --help (usage was printed; the program should exit)

  // Set by Cli::parse:
  std::string program;                   // the program's name
  std::vector<std::string> given;        // the flags given on the command line
  /// Every flag that describes the run (not --resume, --out, --threads, --overwrite) with its
  /// value, exactly: what a checkpoint records, and a resumed run takes where it is not given.
  std::vector<std::pair<std::string, std::string>> run_flags;
  /// Whether the checkpoint of --resume recorded its run's flags.
  bool resumed_with_flags = false;

  bool was_given(const std::string& flag) const { return std::find(given.begin(), given.end(), flag) != given.end(); }
};

/// run_flags as one text ("--lr=0.0002\n--seed=0\n..."), as a checkpoint's metadata keeps them.
inline std::string flags_text(const std::vector<std::pair<std::string, std::string>>& flags) {
  std::string text;
  for (const auto& [name, value] : flags) text += name + "=" + value + "\n";
  return text;
}

/// A constraint on a numeric flag's value, checked as it is parsed.
enum class Require { any, non_negative, positive };

namespace detail {

/// "a positive integer", "a number", ...: what a flag of type T expects, for messages.
template <class T>
std::string expected_kind(Require require) {
  if constexpr (std::is_same_v<T, bool>) {
    return "true or false";
  } else {
    const bool unsigned_type = std::is_unsigned_v<T>;
    const std::string sign = require == Require::positive                             ? "a positive "
                             : require == Require::non_negative || unsigned_type ? "a non-negative "
                                                                                      : "";
    const std::string kind = std::is_integral_v<T> ? "integer" : "number";
    return sign.empty() ? (std::is_integral_v<T> ? "an " : "a ") + kind : sign + kind;
  }
}

[[noreturn]] inline void bad_value(const std::string& flag, const std::string& expected, const std::string& text) {
  throw UsageError(flag + ": expected " + expected + ", got '" + text + "'");
}

/// `text` as a T, all of it (no sign for unsigned types, no spaces, no trailing characters),
/// finite, and within `require`; a UsageError naming `flag` otherwise.
template <class T>
T parse_value(const std::string& flag, const std::string& text, Require require = Require::any) {
  if constexpr (std::is_same_v<T, std::string>) {
    return text;
  } else if constexpr (std::is_same_v<T, bool>) {
    if (text == "true" || text == "1" || text == "yes" || text == "on") return true;
    if (text == "false" || text == "0" || text == "no" || text == "off") return false;
    bad_value(flag, expected_kind<T>(require), text);
  } else {
    static_assert(std::is_arithmetic_v<T>, "Cli::add: flags are bool, integers, floating point or std::string");
    T value{};
    const char* first = text.data();
    const char* last = first + text.size();
    const auto [end, error] = std::from_chars(first, last, value);
    if (error == std::errc::result_out_of_range) throw UsageError(flag + ": '" + text + "' is out of range");
    if (error != std::errc() || end != last || text.empty()) bad_value(flag, expected_kind<T>(require), text);
    if constexpr (std::is_floating_point_v<T>)
      if (!std::isfinite(value)) bad_value(flag, expected_kind<T>(require), text);
    if (require == Require::positive && !(value > T(0))) bad_value(flag, expected_kind<T>(require), text);
    if constexpr (std::is_signed_v<T>)
      if (require == Require::non_negative && value < T(0)) bad_value(flag, expected_kind<T>(require), text);
    return value;
  }
}

/// How a default is shown in the usage text: numbers as printed by <<, bools as true/false.
template <class T>
std::string show(const T& value) {
  std::ostringstream os;
  os << std::boolalpha << value;
  return os.str();
}
/// The exact text of a value, which parse_value reads back to the same value: what a
/// checkpoint records of a flag.
template <class T>
std::string exact(const T& value) {
  if constexpr (std::is_floating_point_v<T>)
    return exact_number_text(double(value));
  else
    return show(value);
}

/// Levenshtein distance, to suggest the flag that was probably meant.
inline std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t substitute = diagonal + (a[i - 1] != b[j - 1]);
      diagonal = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, substitute});
    }
  }
  return row[b.size()];
}

inline bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace detail

/// Parses the common flags into an Options and each example's own flags into its variables.
/// Flags take `--flag value` or `--flag=value`; a bool flag alone means true.
class Cli {
 public:
  /// Registers the common flags, bound to `options` (which must outlive the Cli). An empty
  /// options.out becomes "out/<program>".
  Cli(std::string program, std::string description, Options& options)
      : program_(std::move(program)), description_(std::move(description)), options_(options) {
    if (options_.out.empty()) options_.out = "out/" + program_;
    Options& o = options_;
    add_flag("--data", "DIR", "image folder with one subfolder per class",
             [&o] { return o.data.empty() ? std::string("built-in procedural textures") : o.data; },
             [&o](const std::string& v) { o.data = v; }, [&o] { return o.data; });
    add("--image-size", o.image_size, "side of the square training images, in pixels", Require::positive);
    add("--channels", o.channels, "1 (gray) or 3 (RGB); 0: the data's own (gray if every image is gray)");
    add("--epochs", o.epochs, "epochs to train");
    add("--batch", o.batch, "images per training step", Require::positive);
    add("--lr", o.lr, "learning rate", Require::positive);
    add("--seed", o.seed, "random seed for initialisation, data order and sampling");
    add("--threads", o.threads, "OpenMP threads; 0 leaves OpenMP's default (OMP_NUM_THREADS, or all cores)", Require::non_negative);
    add("--out", o.out, "output directory, created if missing", "DIR");
    add("--resume", o.resume, "checkpoint to continue training from", "CHECKPOINT");
    add("--overwrite", o.overwrite, "start afresh in an --out that holds a checkpoint (its files are replaced as they are written)");
    may_change_on_resume({"--data", "--epochs", "--lr"});
    for (const char* flag : {"--threads", "--out", "--resume", "--overwrite"}) find_mutable(flag).kind = Kind::run_local;
  }

  /// Flags whose value a resumed run may change (each change is printed in one line). The
  /// others keep the value the checkpoint's run was made with: a resumed run takes it where
  /// the flag is not given, and refuses another (the architecture, the seed, the batch size).
  void may_change_on_resume(std::initializer_list<const char*> flags) {
    for (const char* flag : flags) find_mutable(flag).kind = Kind::may_change;
  }

  /// Registers an example's own flag, bound to `value`, whose current value is the default
  /// shown by usage(). T: bool (a switch), an integer, float, double or std::string.
  template <class T>
  void add(const std::string& flag, T& value, const std::string& help, Require require = Require::any) {
    add(flag, value, help, default_value_name<T>(), require);
  }
  template <class T>
  void add(const std::string& flag, T& value, const std::string& help, const std::string& value_name,
           Require require = Require::any) {
    add_flag(flag, std::is_same_v<T, bool> ? "" : value_name, help, [&value] { return detail::show(value); },
             [&value, flag, require](const std::string& text) { value = detail::parse_value<T>(flag, text, require); },
             [&value] { return detail::exact(value); },
             [flag](const std::string& text) { return detail::show(detail::parse_value<T>(flag, text)); },
             [&value, flag](const std::string& text) { value = detail::parse_value<T>(flag, text); });
  }

  /// Replaces a flag's help text (an example's own meaning of a common flag).
  void describe(const std::string& flag, const std::string& help) { find_mutable(flag).help = help;
  }

  /// Parses argv[1..argc). On --help (or -h) anywhere, prints usage() to `help_out`, sets
  /// options.help and changes nothing else. Otherwise sets every flag given, then creates the
  /// --out directory and applies --threads. Throws UsageError on a bad command line.
  void parse(int argc, const char* const* argv, std::ostream& help_out = std::cout) {
    parse(std::vector<std::string>(argv + std::min(argc, 1), argv + std::max(argc, 0)), help_out);
  }
  void parse(int argc, char** argv, std::ostream& help_out = std::cout) {
    parse(argc, const_cast<const char* const*>(argv), help_out);
  }
  /// The arguments without the program name.
  void parse(const std::vector<std::string>& args, std::ostream& help_out = std::cout) {
    if (std::find_if(args.begin(), args.end(), [](const std::string& a) { return a == "--help" || a == "-h"; }) != args.end()) {
      help_out << usage();
      options_.help = true;
      return;
    }
    for (std::size_t i = 0; i < args.size(); ++i) {
      const std::string& arg = args[i];
      if (!detail::starts_with(arg, "--")) throw UsageError("unexpected argument '" + arg + "' (flags start with --; see --help)");
      const auto equals = arg.find('=');
      const std::string name = arg.substr(0, equals);
      const Flag& flag = find(name);
      if (equals != std::string::npos)
        flag.set(arg.substr(equals + 1));
      else if (flag.value_name.empty())  // a switch
        flag.set("true");
      else if (i + 1 < args.size() && !detail::starts_with(args[i + 1], "--"))
        flag.set(args[++i]);
      else
        throw UsageError(name + ": missing value");
      if (!options_.was_given(name)) options_.given.push_back(name);
    }
    options_.program = program_;
    if (!options_.resume.empty()) continue_run();
    apply();
    options_.run_flags.clear();
    for (const Flag& f : flags_)
      if (f.kind != Kind::run_local) options_.run_flags.emplace_back(f.name, f.exact());
  }

  /// Every flag with its value name, help and current value (before parse: the default).
  std::string usage() const {
    std::size_t width = 0;
    for (const Flag& f : flags_) width = std::max(width, label(f).size());
    std::ostringstream os;
    os << "usage: " << program_ << " [options]\n\n" << description_ << "\n\noptions:\n";
    for (const Flag& f : flags_) {
      const std::string shown = f.show_default();
      os << "  " << label(f) << std::string(width + 2 - label(f).size(), ' ') << f.help;
      if (!shown.empty()) os << " (default: " << shown << ")";
      os << '\n';
    }
    os << "  " << "--help" << std::string(width + 2 - 6, ' ') << "print this help and exit\n";
    return os.str();
  }

  const std::string& program() const { return program_; }

 private:
  /// What a flag is to a resumed run: part of the run that it keeps, part it may change, or of
  /// this process only (not recorded).
  enum class Kind { kept, may_change, run_local };
  struct Flag {
    std::string name, value_name, help;          // value_name empty: a switch (bool)
    std::function<std::string()> show_default;  // the current value, as usage() shows it
    std::function<void(const std::string&)> set;
    std::function<std::string()> exact;          // the current value, exactly (what a checkpoint records)
    std::function<std::string(const std::string&)> shown;  // an exact text as usage() would show it
    std::function<void(const std::string&)> restore;       // sets a recorded value (a default may lie outside `require`)
    Kind kind = Kind::kept;
  };

  template <class T>
  static std::string default_value_name() {
    if constexpr (std::is_same_v<T, bool>) return "";
    else if constexpr (std::is_same_v<T, std::string>) return "TEXT";
    else if constexpr (std::is_integral_v<T>) return "N";
    else return "X";
  }

  static std::string label(const Flag& f) { return f.value_name.empty() ? f.name : f.name + " " + f.value_name; }

  void add_flag(const std::string& name, const std::string& value_name, const std::string& help,
                std::function<std::string()> show_default, std::function<void(const std::string&)> set,
                std::function<std::string()> exact = {}, std::function<std::string(const std::string&)> shown = {},
                std::function<void(const std::string&)> restore = {}) {
    TESSERA_CHECK(detail::starts_with(name, "--") && name.size() > 2 && name.find('=') == std::string::npos,
                  "Cli::add: flag '" << name << "' must look like --name");
    TESSERA_CHECK(name != "--help" && std::none_of(flags_.begin(), flags_.end(), [&](const Flag& f) { return f.name == name; }),
                  "Cli::add: flag " << name << " is already defined");
    if (!exact) exact = show_default;
    if (!shown) shown = [](const std::string& text) { return text; };
    if (!restore) restore = set;
    flags_.push_back({name, value_name, help, std::move(show_default), std::move(set), std::move(exact), std::move(shown),
                      std::move(restore)});
  }

  Flag& find_mutable(const std::string& name) {
    for (Flag& f : flags_)
      if (f.name == name) return f;
    TESSERA_FAIL("Cli: no flag " << name);
  }

  /// --resume: the checkpoint's run's flags apply where this command line gives none; a flag
  /// given with another value is a change, printed where the flag may change and refused where
  /// the run keeps it.
  void continue_run() {
    std::error_code error;
    if (!std::filesystem::is_regular_file(options_.resume, error))
      throw UsageError("--resume: no such file '" + options_.resume + "'" +
                       (error && error != std::errc::no_such_file_or_directory ? ": " + error.message() : std::string()));
    const io::TrainingState state = io::read_checkpoint_state(options_.resume);
    const auto recorded = state.metadata.find("flags");
    options_.resumed_with_flags = recorded != state.metadata.end();
    if (!options_.resumed_with_flags) return;  // an older checkpoint: the flags as given
    std::istringstream lines(recorded->second);
    for (std::string line; std::getline(lines, line);) {
      const auto equals = line.find('=');
      if (equals == std::string::npos) continue;
      const std::string name = line.substr(0, equals), value = line.substr(equals + 1);
      const auto f = std::find_if(flags_.begin(), flags_.end(), [&](const Flag& flag) { return flag.name == name; });
      if (f == flags_.end() || f->kind == Kind::run_local) continue;  // a flag this program no longer has
      if (!options_.was_given(name)) {
        f->restore(value);
        continue;
      }
      if (f->exact() == value) continue;
      const std::string before = f->shown(value);
      if (f->kind == Kind::may_change) {
        std::cout << "resume: " << name << " " << f->show_default() << " (the checkpoint's run used " << before << ")\n";
        continue;
      }
      throw UsageError(name + " " + f->show_default() + ": the checkpoint's run used " + before +
                       ", which a resumed run keeps; start a new run (another --out, or --overwrite) to change it");
    }
  }

  const Flag& find(const std::string& name) const {
    for (const Flag& f : flags_)
      if (f.name == name) return f;
    const Flag* closest = nullptr;
    std::size_t best = 3;  // suggest only flags within two edits
    for (const Flag& f : flags_)
      if (const std::size_t d = detail::edit_distance(name, f.name); d < best) best = d, closest = &f;
    throw UsageError("unknown flag " + name + (closest ? " (did you mean " + closest->name + "?)" : " (see --help)"));
  }

  /// What the common flags do beyond setting a variable.
  void apply() {
    // the error_code overloads: a name the system refuses (too long, say) is a usage error too
    std::error_code error;
    auto reason = [&error] {  // beyond "it is not there"
      return error && error != std::errc::no_such_file_or_directory ? ": " + error.message() : std::string();
    };
    if (!options_.data.empty() && !std::filesystem::is_directory(options_.data, error))
      throw UsageError("--data: '" + options_.data + "' is not a directory" + reason());
    if (options_.channels != 0 && options_.channels != 1 && options_.channels != 3)
      throw UsageError("--channels: expected 0, 1 or 3, got " + std::to_string(options_.channels));
    if (options_.threads > 1024)  // OpenMP would try to start them all, and abort
      throw UsageError("--threads: at most 1024, got " + std::to_string(options_.threads));
    if (options_.out.empty()) throw UsageError("--out: expected a directory, got ''");
    std::filesystem::create_directories(options_.out, error);
    if (error || !std::filesystem::is_directory(options_.out, error))
      throw UsageError("--out: cannot create directory '" + options_.out + "': " +
                       (error ? error.message() : std::string("a file is in the way")));
    folder_ = OutputFolder::lock<UsageError>(options_.out);
    const std::string checkpoint = options_.out + "/checkpoint.tsr";
    if (options_.resume.empty() && !options_.overwrite && std::filesystem::exists(checkpoint, error))
      throw UsageError("--out: " + options_.out + " already holds a run (checkpoint.tsr); continue it with --resume " +
                       checkpoint + ", or start afresh with --overwrite");
    if (options_.threads > 0) set_num_threads(options_.threads);
  }

  std::string program_, description_;
  Options& options_;
  std::vector<Flag> flags_;
  OutputFolder folder_;  // --out, locked for as long as the Cli lives (the run)
};

/// Runs an example's body, turning what it throws into one line on `err` prefixed with the
/// program's name ("dcgan: --epochs: expected a non-negative integer, got '3x'") and an exit
/// code: 2 for a tessera::Error (a UsageError included: bad flags, bad data, bad files, the
/// memory budget) and for running out of memory, 1 for any other exception.
inline int run_example(int argc, char** argv, const std::function<int(int, char**)>& body, std::ostream& err = std::cerr) {
  const std::string name = argc > 0 && argv[0] ? std::filesystem::path(argv[0]).filename().string() : "example";
  try {
    return body(argc, argv);
  } catch (const Error& e) {
    err << name << ": " << e.what() << std::endl;
    return 2;
  } catch (const std::bad_alloc&) {
    err << name << ": out of memory (the system refused an allocation); use smaller batches or images, or set "
        << "TESSERA_MEMORY_LIMIT to be told before the system runs out" << std::endl;
    return 2;
  } catch (const std::exception& e) {
    err << name << ": " << e.what() << std::endl;
    return 1;
  } catch (...) {
    err << name << ": unknown exception" << std::endl;
    return 1;
  }
}

}  // namespace tessera::train
