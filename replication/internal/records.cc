#include "replication/internal/records.h"

#include <algorithm>
#include <utility>

namespace converge::replication::internal::records {
namespace {

constexpr std::string_view kDigestPrefix = "d/";
constexpr std::string_view kDigestEnd = "d0";  // just past every "d/..." key
constexpr std::string_view kUpdateSeqKey = "u/seq";
constexpr std::string_view kGenerationKey = "u/gen";
constexpr std::string_view kPruneKey = "p/state";
constexpr std::string_view kOriginPrefix = "o/";
constexpr std::string_view kOriginEnd = "o0";
constexpr std::string_view kMemberPrefix = "m/";
constexpr std::string_view kMemberEnd = "m0";
constexpr std::string_view kForgottenPrefix = "f/";
constexpr std::string_view kForgottenEnd = "f0";
constexpr std::string_view kProgressPrefix = "x/";
constexpr std::string_view kProgressEnd = "x0";

std::string BigEndian(std::uint64_t v, int bytes) {
  std::string out(static_cast<std::size_t>(bytes), '\0');
  for (int i = 0; i < bytes; ++i) {
    out[static_cast<std::size_t>(bytes - 1 - i)] = static_cast<char>((v >> (8 * i)) & 0xff);
  }
  return out;
}

std::uint64_t ReadBigEndian(std::string_view bytes) {
  std::uint64_t v = 0;
  for (const char c : bytes) v = (v << 8) | static_cast<unsigned char>(c);
  return v;
}

// A Fixed64 record, if present and well formed.
StatusOr<std::optional<std::uint64_t>> GetFixed64(storage::Store& store, std::string_view key) {
  StatusOr<std::optional<std::string>> value = store.GetAux(key);
  if (!value.ok()) return value.status();
  if (!value->has_value()) return std::optional<std::uint64_t>();
  return ReadFixed64(**value);
}

}  // namespace

std::string Fixed64(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
  }
  return out;
}

std::optional<std::uint64_t> ReadFixed64(std::string_view bytes) {
  if (bytes.size() != 8) return std::nullopt;
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) {
    v = (v << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  }
  return v;
}

// --- the digest index ------------------------------------------------------------

std::string DigestKey(std::uint32_t leaf, std::string_view key) {
  std::string out(kDigestPrefix);
  out += BigEndian(leaf, 4);
  out += key;
  return out;
}

std::string DigestLeafBegin(std::uint32_t leaf, std::uint32_t leaf_count) {
  if (leaf >= leaf_count) return std::string(kDigestEnd);
  return std::string(kDigestPrefix) + BigEndian(leaf, 4);
}

Status ScanDigests(storage::Store& store, std::uint32_t first, std::uint32_t last,
                   std::uint32_t leaf_count, const DigestFn& fn) {
  const std::size_t skip = kDigestPrefix.size() + 4;
  return store.ScanAux(DigestLeafBegin(first, leaf_count), DigestLeafBegin(last, leaf_count),
                       [&](std::string_view k, std::string_view v) {
                         const auto digest = ReadFixed64(v);
                         if (k.size() < skip || !digest) return true;
                         const auto leaf = static_cast<std::uint32_t>(
                             ReadBigEndian(k.substr(kDigestPrefix.size(), 4)));
                         return fn(leaf, k.substr(skip), *digest);
                       });
}

void PutDigest(storage::WriteBatch& batch, const HashTree& tree, std::string_view key,
               std::uint64_t digest) {
  batch.PutAux(DigestKey(tree.LeafOf(key), key), Fixed64(digest));
}

Status LoadTree(storage::Store& store, HashTree& tree) {
  tree.Clear();
  return ScanDigests(store, 0, tree.leaf_count(), tree.leaf_count(),
                     [&](std::uint32_t, std::string_view key, std::uint64_t digest) {
                       tree.Update(key, std::nullopt, digest);
                       return true;
                     });
}

// --- our update sequence and process generation ----------------------------------

void PutUpdateSequence(storage::WriteBatch& batch, std::uint64_t seq) {
  batch.PutAux(std::string(kUpdateSeqKey), Fixed64(seq));
}

StatusOr<std::uint64_t> LoadUpdateSequence(storage::Store& store) {
  StatusOr<std::optional<std::string>> value = store.GetAux(kUpdateSeqKey);
  if (!value.ok()) return value.status();
  if (!value->has_value()) return std::uint64_t{0};
  const auto seq = ReadFixed64(**value);
  if (!seq) return Corruption("malformed update sequence");
  return *seq;
}

void PutGeneration(storage::WriteBatch& batch, std::uint64_t generation) {
  batch.PutAux(std::string(kGenerationKey), Fixed64(generation));
}

StatusOr<std::uint64_t> LoadGeneration(storage::Store& store) {
  StatusOr<std::optional<std::uint64_t>> generation = GetFixed64(store, kGenerationKey);
  if (!generation.ok()) return generation.status();
  return generation->value_or(0);
}

// --- pruning ---------------------------------------------------------------------------
//
// Fixed64 level, Fixed64 tail count, each level; Fixed64 1 and the pending
// level and Fixed64 coordinator length and its bytes, or Fixed64 0. A level:
// Fixed64 level, nonce, count, and the retired ids.

namespace {

void AppendLevel(std::string& out, const PruneLevelRecord& l) {
  out += Fixed64(l.level);
  out += Fixed64(l.nonce);
  out += Fixed64(l.retired.size());
  for (const std::uint64_t id : l.retired) out += Fixed64(id);
}

class Fixed64Reader {
 public:
  explicit Fixed64Reader(std::string_view bytes) : bytes_(bytes) {}
  std::optional<std::uint64_t> Next() {
    if (bytes_.size() < 8) return std::nullopt;
    const std::optional<std::uint64_t> v = ReadFixed64(bytes_.substr(0, 8));
    bytes_.remove_prefix(8);
    return v;
  }
  std::optional<std::string> Bytes(std::uint64_t n) {
    if (bytes_.size() < n) return std::nullopt;
    std::string out(bytes_.substr(0, n));
    bytes_.remove_prefix(n);
    return out;
  }
  std::optional<PruneLevelRecord> Level() {
    PruneLevelRecord l;
    const auto level = Next();
    const auto nonce = Next();
    const auto count = Next();
    if (!level || !nonce || !count || *count > bytes_.size() / 8) return std::nullopt;
    l.level = *level;
    l.nonce = *nonce;
    for (std::uint64_t i = 0; i < *count; ++i) l.retired.push_back(*Next());
    return l;
  }
  [[nodiscard]] bool done() const { return bytes_.empty(); }

 private:
  std::string_view bytes_;
};

}  // namespace

void PutPrune(storage::WriteBatch& batch, const PruneRecord& record) {
  std::string out = Fixed64(record.level);
  out += Fixed64(record.tail.size());
  for (const PruneLevelRecord& l : record.tail) AppendLevel(out, l);
  out += Fixed64(record.pending ? 1 : 0);
  if (record.pending) {
    AppendLevel(out, *record.pending);
    out += Fixed64(record.coordinator.size());
    out += record.coordinator;
  }
  batch.PutAux(std::string(kPruneKey), std::move(out));
}

std::string_view PruneKey() { return kPruneKey; }

StatusOr<PruneRecord> LoadPrune(storage::Store& store) {
  StatusOr<std::optional<std::string>> bytes = store.GetAux(kPruneKey);
  if (!bytes.ok()) return bytes.status();
  if (!bytes->has_value()) return PruneRecord{};
  return ParsePrune(**bytes);
}

StatusOr<PruneRecord> ParsePrune(std::string_view bytes) {
  PruneRecord record;
  Fixed64Reader in(bytes);
  const auto corrupt = [] { return Corruption("malformed record p/state"); };
  const auto level = in.Next();
  const auto count = in.Next();
  if (!level || !count) return corrupt();
  record.level = *level;
  for (std::uint64_t i = 0; i < *count; ++i) {
    std::optional<PruneLevelRecord> l = in.Level();
    if (!l) return corrupt();
    record.tail.push_back(std::move(*l));
  }
  const auto pending = in.Next();
  if (!pending) return corrupt();
  if (*pending == 1) {
    record.pending = in.Level();
    const auto length = in.Next();
    if (!record.pending || !length) return corrupt();
    std::optional<std::string> name = in.Bytes(*length);
    if (!name) return corrupt();
    record.coordinator = std::move(*name);
  }
  if (!in.done()) return corrupt();
  return record;
}

// --- origins -------------------------------------------------------------------------

void PutOrigin(storage::WriteBatch& batch, std::uint64_t replica, std::uint64_t seq) {
  batch.PutAux(std::string(kOriginPrefix) + BigEndian(replica, 8), Fixed64(seq));
}

void DeleteOrigin(storage::WriteBatch& batch, std::uint64_t replica) {
  batch.DeleteAux(std::string(kOriginPrefix) + BigEndian(replica, 8));
}

StatusOr<std::map<std::uint64_t, std::uint64_t>> LoadOrigins(storage::Store& store) {
  std::map<std::uint64_t, std::uint64_t> origins;
  const Status scan =
      store.ScanAux(kOriginPrefix, kOriginEnd, [&](std::string_view k, std::string_view v) {
        if (k.size() == kOriginPrefix.size() + 8) {
          if (const auto seq = ReadFixed64(v)) {
            origins[ReadBigEndian(k.substr(kOriginPrefix.size()))] = *seq;
          }
        }
        return true;
      });
  if (!scan.ok()) return scan;
  return origins;
}

// --- members -------------------------------------------------------------------------

void PutMember(storage::WriteBatch& batch, const MemberRecord& member) {
  // (Appended, not "l" + string: g++ 12 -O3 warns falsely on that, -Wrestrict.)
  std::string record(1, member.left ? 'l' : 'a');
  record += Fixed64(member.generation);
  record += member.address;
  batch.PutAux(std::string(kMemberPrefix) + member.name, std::move(record));
}

void DeleteMember(storage::WriteBatch& batch, std::string_view name) {
  batch.DeleteAux(std::string(kMemberPrefix) + std::string(name));
}

StatusOr<std::vector<MemberRecord>> LoadMembers(storage::Store& store) {
  std::vector<MemberRecord> members;
  const Status scan =
      store.ScanAux(kMemberPrefix, kMemberEnd, [&](std::string_view k, std::string_view v) {
        MemberRecord m;
        m.name = std::string(k.substr(kMemberPrefix.size()));
        const char flag = v.empty() ? 'A' : v[0];
        m.left = flag == 'L' || flag == 'l';
        std::string_view rest = v.substr(std::min<std::size_t>(1, v.size()));
        if ((flag == 'a' || flag == 'l') && rest.size() >= 8) {
          m.generation = ReadFixed64(rest.substr(0, 8)).value_or(0);
          rest.remove_prefix(8);
        }
        m.address = std::string(rest);
        members.push_back(std::move(m));
        return true;
      });
  if (!scan.ok()) return scan;
  return members;
}

// --- forgotten members -------------------------------------------------------------

void PutForgotten(storage::WriteBatch& batch, const ForgottenRecord& forgotten) {
  batch.PutAux(std::string(kForgottenPrefix) + forgotten.name,
               Fixed64(forgotten.generation) + Fixed64(forgotten.wall_ms));
}

void DeleteForgotten(storage::WriteBatch& batch, std::string_view name) {
  batch.DeleteAux(std::string(kForgottenPrefix) + std::string(name));
}

StatusOr<std::vector<ForgottenRecord>> LoadForgotten(storage::Store& store) {
  std::vector<ForgottenRecord> forgotten;
  const Status scan =
      store.ScanAux(kForgottenPrefix, kForgottenEnd, [&](std::string_view k, std::string_view v) {
        if (v.size() != 16) return true;
        forgotten.push_back(ForgottenRecord{std::string(k.substr(kForgottenPrefix.size())),
                                            ReadFixed64(v.substr(0, 8)).value_or(0),
                                            ReadFixed64(v.substr(8)).value_or(0)});
        return true;
      });
  if (!scan.ok()) return scan;
  return forgotten;
}

// --- delta progress --------------------------------------------------------------

std::pair<std::string, std::string> ProgressEntry(const ProgressRecord& progress) {
  return {std::string(kProgressPrefix) + progress.peer,
          Fixed64(progress.generation) + Fixed64(progress.expected)};
}

void DeleteProgress(storage::WriteBatch& batch, std::string_view peer) {
  batch.DeleteAux(std::string(kProgressPrefix) + std::string(peer));
}

StatusOr<std::vector<ProgressRecord>> LoadProgress(storage::Store& store) {
  std::vector<ProgressRecord> progress;
  const Status scan =
      store.ScanAux(kProgressPrefix, kProgressEnd, [&](std::string_view k, std::string_view v) {
        if (v.size() != 16) return true;
        ProgressRecord p;
        p.peer = std::string(k.substr(kProgressPrefix.size()));
        p.generation = ReadFixed64(v.substr(0, 8)).value_or(0);
        p.expected = std::max<std::uint64_t>(1, ReadFixed64(v.substr(8)).value_or(1));
        progress.push_back(std::move(p));
        return true;
      });
  if (!scan.ok()) return scan;
  return progress;
}

}  // namespace converge::replication::internal::records
