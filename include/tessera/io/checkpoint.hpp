// tessera/io/checkpoint.hpp — one file holding everything needed to resume training exactly:
// modules' parameters and buffers, optimizers' state, random generators, step, epoch and user
// metadata. Written atomically; read all-or-nothing (a bad file changes nothing).
//
// Format (little-endian; also in docs/file-formats.md):
//   magic "TSRACKPT" | u32 version (1) | u32 flags (0) | u64 payload size | u32 CRC-32 of payload
//   payload: u8 scalar bytes (4 float, 8 double) | u64 step | u64 epoch
//            u32 metadata count, then (string key, string value)...
//            u32 record count, then records: u8 kind | string name | body
//              kind 1 tensor:  u32 rank | u64 dims[rank] | u64 byte count | raw values
//              kind 2 u64s:    u64 count | u64 values[count]
//              kind 3 f64s:    u64 count | f64 values[count]
//   string = u32 length | bytes. Record names are "<component>/<key>", e.g. "G/0.weight",
//   "opt_g/0.exp_avg", "opt_g/step_counts", "rng/state".
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "../core/memory_budget.hpp"
#include "../core/rng.hpp"
#include "../core/tensor.hpp"
#include "../nn/module.hpp"
#include "../optim/optimizer.hpp"
#include "../optim/weight_average.hpp"
#include "file.hpp"
#include "state_mismatch.hpp"

namespace tessera::io {

/// Step, epoch and free-form string metadata saved beside the tensors.
struct TrainingState {
  std::uint64_t step = 0, epoch = 0;
  std::map<std::string, std::string> metadata;
};

namespace detail {

inline constexpr char checkpoint_magic[8] = {'T', 'S', 'R', 'A', 'C', 'K', 'P', 'T'};
inline constexpr std::uint32_t checkpoint_version = 1;
inline constexpr std::size_t checkpoint_header_size = 8 + 4 + 4 + 8 + 4;
enum class RecordKind : std::uint8_t { tensor = 1, u64s = 2, f64s = 3 };

/// One named piece of state as read from a file, not yet applied.
struct Record {
  RecordKind kind{};
  Shape shape;                      // tensors
  const std::uint8_t* data = nullptr;  // tensors: raw little-endian values
  std::vector<std::uint64_t> u64s;
  std::vector<double> f64s;
};

inline const char* kind_name(RecordKind k) {
  return k == RecordKind::tensor ? "tensor" : k == RecordKind::u64s ? "integer list" : "number list";
}

inline std::uint64_t bits_of(double v) {
  std::uint64_t u;
  std::memcpy(&u, &v, 8);
  return u;
}
inline double double_of(std::uint64_t u) {
  double v;
  std::memcpy(&v, &u, 8);
  return v;
}


/// A checkpoint header's fields, and the check of its magic and version.
struct CheckpointHeader {
  std::uint64_t payload_size = 0;
  std::uint32_t crc = 0;
};
inline CheckpointHeader read_checkpoint_header(ByteReader& header, const std::string& path) {
  const std::uint8_t* magic = header.get_bytes(8);
  TESSERA_CHECK(std::memcmp(magic, checkpoint_magic, 8) == 0, "load checkpoint " << path << ": not a tessera checkpoint (bad magic)");
  const auto version = header.get<std::uint32_t>();
  TESSERA_CHECK(version == checkpoint_version,
                "load checkpoint " << path << ": format version " << version << ", this tessera reads version " << checkpoint_version);
  header.get<std::uint32_t>();  // flags, reserved
  CheckpointHeader h;
  h.payload_size = header.get<std::uint64_t>();
  h.crc = header.get<std::uint32_t>();
  return h;
}

/// A checkpoint file's bytes, its header checked against the file before the payload is read:
/// magic, version, and a declared payload of exactly the rest of the file, which must fit in
/// the memory budget.
inline Bytes read_checkpoint_file(const std::string& path) {
  const InputFile file(path);
  const Bytes head = file.prefix(checkpoint_header_size);
  ByteReader header(head.data(), head.size(), "load checkpoint " + path);
  const CheckpointHeader h = read_checkpoint_header(header, path);
  const std::uint64_t present = file.size() - checkpoint_header_size;
  TESSERA_CHECK(h.payload_size == present, "load checkpoint " << path << ": truncated or padded (payload of " << h.payload_size
                                                              << " bytes declared, " << present << " present)");
  const std::size_t budget = memory_budget().limit();
  TESSERA_CHECK(budget == 0 || present <= budget, "load checkpoint " << path << ": " << tessera::detail::memory_text(double(present))
                                                                     << " of payload, more than the memory budget ("
                                                                     << tessera::detail::memory_text(double(budget)) << ")");
  return file.read_all();
}

/// The payload of a checkpoint's bytes, after its header and CRC are checked.
inline ByteReader checked_payload(const Bytes& bytes, const std::string& path) {
  ByteReader header(bytes.data(), bytes.size(), "load checkpoint " + path);
  const CheckpointHeader h = read_checkpoint_header(header, path);
  TESSERA_CHECK(h.payload_size == header.remaining(), "load checkpoint " << path << ": truncated or padded (payload of " << h.payload_size
                                                                         << " bytes declared, " << header.remaining() << " present)");
  const std::uint8_t* body = bytes.data() + checkpoint_header_size;
  TESSERA_CHECK(crc32(body, std::size_t(h.payload_size)) == h.crc, "load checkpoint " << path << ": CRC mismatch (file is corrupt)");
  return ByteReader(body, std::size_t(h.payload_size), "load checkpoint " + path);
}

/// Step, epoch and metadata, read after the payload's scalar byte.
inline TrainingState read_training_state(ByteReader& r) {
  TrainingState state;
  state.step = r.get<std::uint64_t>();
  state.epoch = r.get<std::uint64_t>();
  for (auto n = r.get<std::uint32_t>(); n > 0; --n) {
    std::string key = r.get_string();
    state.metadata[key] = r.get_string();
  }
  return state;
}

}  // namespace detail

/// The step, epoch and metadata of the checkpoint at `path` (checked as Checkpoint::load checks
/// it), without restoring anything: what a program reads first to learn how the run was made.
inline TrainingState read_checkpoint_state(const std::string& path) {
  const Bytes bytes = detail::read_checkpoint_file(path);
  ByteReader r = detail::checked_payload(bytes, path);
  r.get<std::uint8_t>();  // the scalar size
  return detail::read_training_state(r);
}

/// A set of named components to save and restore together:
///   io::Checkpoint<float> ckpt;
///   ckpt.add("G", G).add("D", D).add("opt_g", optG).add("opt_d", optD).add("rng", rng);
///   ckpt.state.step = step;  ckpt.save("run.ckpt");  ...  ckpt.load("run.ckpt");
template <class T>
class Checkpoint {
 public:
  TrainingState state;

  Checkpoint& add(const std::string& name, nn::Module<T>& module) {
    check_component(name);
    for (auto& [key, p] : module.named_parameters()) tensors_.push_back({name + "/" + key, &p.value()});
    for (auto& [key, b] : module.named_buffers()) tensors_.push_back({name + "/" + key, &b});
    return *this;
  }

  Checkpoint& add(const std::string& name, optim::Optimizer<T>& optimizer) {
    check_component(name);
    for (auto& [key, t] : optimizer.named_state()) tensors_.push_back({name + "/" + key, t});
    u64s_.push_back({name + "/step_counts", [&optimizer] { return optimizer.step_counts(); },
                     [&optimizer](const std::vector<std::uint64_t>& v) { optimizer.step_counts() = v; },
                     optimizer.step_counts().size()});
    f64s_.push_back({name + "/lr", [&optimizer] { return std::vector<double>{optimizer.lr()}; },
                     [&optimizer](const std::vector<double>& v) { optimizer.set_lr(v[0]); }, 1, /*learning_rate=*/true});
    return *this;
  }

  Checkpoint& add(const std::string& name, optim::WeightAverage<T>& average) {
    check_component(name);
    for (auto& [key, t] : average.named_state()) tensors_.push_back({name + "/" + key, t});
    u64s_.push_back({name + "/updates", [&average] { return std::vector<std::uint64_t>{average.updates()}; },
                     [&average](const std::vector<std::uint64_t>& v) { average.updates() = v[0]; }, 1});
    return *this;
  }

  /// A generator's exact position (e.g. the data order's, or default_rng() for dropout).
  Checkpoint& add(const std::string& name, Rng& rng) {
    check_component(name);
    u64s_.push_back({name + "/state",
                     [&rng] {
                       const RngState& s = rng.state();
                       return std::vector<std::uint64_t>{s.s[0], s.s[1], s.s[2], s.s[3],
                                                         detail::bits_of(s.spare_normal), s.has_spare ? 1u : 0u};
                     },
                     [&rng](const std::vector<std::uint64_t>& v) {
                       RngState s;
                       for (int i = 0; i < 4; ++i) s.s[i] = v[i];
                       s.spare_normal = detail::double_of(v[4]);
                       s.has_spare = v[5] != 0;
                       rng.set_state(s);
                     },
                     6});
    return *this;
  }

  /// Writes every component, atomically (see write_file_atomically).
  void save(const std::string& path) const {
    ByteWriter payload;
    payload.put<std::uint8_t>(sizeof(T));
    payload.put<std::uint64_t>(state.step);
    payload.put<std::uint64_t>(state.epoch);
    payload.put<std::uint32_t>(std::uint32_t(state.metadata.size()));
    for (const auto& [key, value] : state.metadata) {
      payload.put_string(key);
      payload.put_string(value);
    }
    payload.put<std::uint32_t>(std::uint32_t(tensors_.size() + u64s_.size() + f64s_.size()));
    for (const auto& [name, tensor] : tensors_) {
      payload.put<std::uint8_t>(std::uint8_t(detail::RecordKind::tensor));
      payload.put_string(name);
      payload.put<std::uint32_t>(std::uint32_t(tensor->dim()));
      for (std::size_t d : tensor->shape()) payload.put<std::uint64_t>(d);
      payload.put<std::uint64_t>(tensor->size() * sizeof(T));
      for (T v : *tensor) {  // explicit little-endian, whatever the host
        typename std::conditional<sizeof(T) == 4, std::uint32_t, std::uint64_t>::type bits;
        std::memcpy(&bits, &v, sizeof(T));
        payload.put(bits);
      }
    }
    for (const auto& entry : u64s_) {
      payload.put<std::uint8_t>(std::uint8_t(detail::RecordKind::u64s));
      payload.put_string(entry.name);
      const auto values = entry.get();
      payload.put<std::uint64_t>(values.size());
      for (auto v : values) payload.put<std::uint64_t>(v);
    }
    for (const auto& entry : f64s_) {
      payload.put<std::uint8_t>(std::uint8_t(detail::RecordKind::f64s));
      payload.put_string(entry.name);
      const auto values = entry.get();
      payload.put<std::uint64_t>(values.size());
      for (double v : values) payload.put<std::uint64_t>(detail::bits_of(v));
    }
    const Bytes& body = payload.bytes();
    ByteWriter file;
    file.put_bytes(detail::checkpoint_magic, 8);
    file.put<std::uint32_t>(detail::checkpoint_version);
    file.put<std::uint32_t>(0);
    file.put<std::uint64_t>(body.size());
    file.put<std::uint32_t>(crc32(body.data(), body.size()));
    file.put_bytes(body.data(), body.size());
    write_file_atomically(path, file.bytes());
  }

  /// Restores every component from `path`. The file is checked first: its header against the
  /// file's size before the rest is read (a wrong file of any size is refused after 28 bytes),
  /// then the magic, version, CRC, every record present with the right kind and shape, none
  /// unexpected; on any problem an Error says what, and nothing has been changed.
  void load(const std::string& path) { load_bytes(detail::read_checkpoint_file(path), path); }

  /// The same from a file's bytes in memory; `path` names them in errors.
  void load_bytes(const Bytes& bytes, const std::string& path) {
    ByteReader r = detail::checked_payload(bytes, path);
    const auto scalar = r.get<std::uint8_t>();
    TESSERA_CHECK(scalar == sizeof(T), "load checkpoint " << path << ": holds " << int(scalar) * 8
                                                          << "-bit values, the model uses " << sizeof(T) * 8 << "-bit");
    TrainingState loaded = detail::read_training_state(r);
    std::map<std::string, detail::Record> records;
    for (auto n = r.get<std::uint32_t>(); n > 0; --n) {
      detail::Record rec;
      rec.kind = detail::RecordKind(r.get<std::uint8_t>());
      std::string name = r.get_string();
      TESSERA_CHECK(!records.count(name), "load checkpoint " << path << ": record \"" << name << "\" appears twice");
      read_record_body(r, rec, name);
      records.emplace(std::move(name), std::move(rec));
    }
    TESSERA_CHECK(r.remaining() == 0, "load checkpoint " << path << ": " << r.remaining() << " stray bytes after the records");
    validate(records, path);

    // Everything checked: now apply.
    for (const auto& [name, tensor] : tensors_) {
      const detail::Record& rec = records.at(name);
      for (std::size_t i = 0; i < tensor->size(); ++i) {
        typename std::conditional<sizeof(T) == 4, std::uint32_t, std::uint64_t>::type bits = 0;
        for (std::size_t b = 0; b < sizeof(T); ++b) bits |= decltype(bits)(rec.data[i * sizeof(T) + b]) << (8 * b);
        std::memcpy(tensor->data() + i, &bits, sizeof(T));
      }
    }
    for (const auto& entry : u64s_) entry.set(records.at(entry.name).u64s);
    for (const auto& entry : f64s_)
      if (restore_learning_rates || !entry.learning_rate) entry.set(records.at(entry.name).f64s);
    state = std::move(loaded);
  }

  /// Whether load() gives the optimizers the learning rates the file holds (true), or leaves
  /// them as they are (a program whose flags set them: a resumed run with another --lr).
  bool restore_learning_rates = true;

  /// The first record whose values are not all finite, as "opt_g/0.exp_avg_sq holds Inf", or
  /// "" when every one is: what must not be saved over a good checkpoint.
  std::string first_non_finite() const {
    for (const auto& [name, tensor] : tensors_)
      for (std::size_t i = 0; i < tensor->size(); ++i)
        if (!std::isfinite((*tensor)[i])) return name + " holds " + (std::isnan((*tensor)[i]) ? "NaN" : "Inf");
    return "";
  }

 private:
  template <class V>
  struct ListEntry {
    std::string name;
    std::function<std::vector<V>()> get;
    std::function<void(const std::vector<V>&)> set;
    std::size_t size;  // the length a valid file must have
    bool learning_rate = false;
  };

  void check_component(const std::string& name) const {
    TESSERA_CHECK(!name.empty() && name.find('/') == std::string::npos,
                  "Checkpoint: component name \"" << name << "\" must be non-empty and contain no '/'");
    TESSERA_CHECK(!components_.count(name), "Checkpoint: component \"" << name << "\" added twice");
    components_.insert(name);
  }

  static void read_record_body(ByteReader& r, detail::Record& rec, const std::string& name) {
    switch (rec.kind) {
      case detail::RecordKind::tensor: {
        const auto rank = r.get<std::uint32_t>();
        TESSERA_CHECK(rank <= Shape::max_rank, r.what() << ": record \"" << name << "\" has rank " << rank);
        std::uint64_t count = 1;
        for (std::uint32_t d = 0; d < rank; ++d) {
          const auto dim = r.get<std::uint64_t>();
          TESSERA_CHECK(dim == 0 || count <= r.remaining() / dim, r.what() << ": record \"" << name << "\" claims more values than the file holds");
          count *= dim;
          rec.shape.push_back(std::size_t(dim));
        }
        const auto byte_count = r.get<std::uint64_t>();
        TESSERA_CHECK(byte_count == count * sizeof(T), r.what() << ": record \"" << name << "\" has " << byte_count
                                                                << " bytes for shape " << rec.shape);
        rec.data = r.get_bytes(std::size_t(byte_count));
        return;
      }
      case detail::RecordKind::u64s:
      case detail::RecordKind::f64s: {
        const auto count = r.get<std::uint64_t>();
        TESSERA_CHECK(count <= r.remaining() / 8, r.what() << ": record \"" << name << "\" claims more values than the file holds");
        for (std::uint64_t i = 0; i < count; ++i) {
          const auto v = r.get<std::uint64_t>();
          if (rec.kind == detail::RecordKind::u64s)
            rec.u64s.push_back(v);
          else
            rec.f64s.push_back(detail::double_of(v));
        }
        return;
      }
    }
    TESSERA_FAIL(r.what() << ": record \"" << name << "\" has unknown kind " << int(rec.kind));
  }

  // Every expected record present with the right kind and size, nothing unexpected: all
  // problems summarised in one error.
  void validate(const std::map<std::string, detail::Record>& records, const std::string& path) const {
    StateMismatch mismatch;
    std::map<std::string, bool> expected;
    auto expect = [&](const std::string& name, detail::RecordKind kind, auto&& size_ok, auto&& describe) {
      expected[name] = true;
      const auto it = records.find(name);
      if (it == records.end())
        mismatch.add(StateMismatch::missing, name);
      else if (it->second.kind != kind)
        mismatch.add(StateMismatch::wrong_kind, name + " is a " + detail::kind_name(it->second.kind) + ", expected a " +
                                                    detail::kind_name(kind));
      else if (!size_ok(it->second))
        mismatch.add(StateMismatch::shape_mismatch, name + " " + describe(it->second));
    };
    for (const auto& entry : tensors_)
      expect(entry.name, detail::RecordKind::tensor, [&](const detail::Record& r) { return r.shape == entry.tensor->shape(); },
             [&](const detail::Record& r) {
               std::ostringstream os;
               os << "file " << r.shape << " vs model " << entry.tensor->shape();
               return os.str();
             });
    for (const auto& e : u64s_)
      expect(e.name, detail::RecordKind::u64s, [&](const detail::Record& r) { return r.u64s.size() == e.size; },
             [&](const detail::Record& r) { return "has " + std::to_string(r.u64s.size()) + " values, expected " + std::to_string(e.size); });
    for (const auto& e : f64s_)
      expect(e.name, detail::RecordKind::f64s, [&](const detail::Record& r) { return r.f64s.size() == e.size; },
             [&](const detail::Record& r) { return "has " + std::to_string(r.f64s.size()) + " values, expected " + std::to_string(e.size); });
    for (const auto& [name, rec] : records)
      if (!expected.count(name)) mismatch.add(StateMismatch::unexpected, name);
    TESSERA_CHECK(mismatch.empty(), "load checkpoint " << path << ": does not match what is being restored (different architecture?): "
                                                       << mismatch.summary());
  }

  struct TensorEntry {
    std::string name;
    Tensor<T>* tensor;
  };
  std::vector<TensorEntry> tensors_;
  std::vector<ListEntry<std::uint64_t>> u64s_;
  std::vector<ListEntry<double>> f64s_;
  mutable std::set<std::string> components_;
};

/// One model, optionally its optimizer and a generator: the common case in one call.
template <class T>
void save_checkpoint(const std::string& path, nn::Module<T>& model, optim::Optimizer<T>* optimizer = nullptr,
                     Rng* rng = nullptr, const TrainingState& state = {}) {
  Checkpoint<T> ckpt;
  ckpt.add("model", model);
  if (optimizer) ckpt.add("optimizer", *optimizer);
  if (rng) ckpt.add("rng", *rng);
  ckpt.state = state;
  ckpt.save(path);
}

/// Restores what save_checkpoint wrote (the same components must be given) and returns the
/// saved step, epoch and metadata.
template <class T>
TrainingState load_checkpoint(const std::string& path, nn::Module<T>& model, optim::Optimizer<T>* optimizer = nullptr,
                              Rng* rng = nullptr) {
  Checkpoint<T> ckpt;
  ckpt.add("model", model);
  if (optimizer) ckpt.add("optimizer", *optimizer);
  if (rng) ckpt.add("rng", *rng);
  ckpt.load(path);
  return ckpt.state;
}

}  // namespace tessera::io
