#include "storage/testing/ledger.h"

#include <charconv>
#include <sstream>
#include <utility>

#include "storage/typed.h"

namespace converge::storage::testing {
namespace {

constexpr std::size_t kMaxProblems = 10;

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> fields;
  while (!line.empty()) {
    const std::size_t start = line.find_first_not_of(' ');
    if (start == std::string_view::npos) break;
    line.remove_prefix(start);
    const std::size_t stop = std::min(line.find(' '), line.size());
    fields.push_back(line.substr(0, stop));
    line.remove_prefix(stop);
  }
  return fields;
}

std::optional<std::uint64_t> ParseU64(std::string_view text) {
  std::uint64_t v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return v;
}

std::string DotText(crdt::Dot dot) {
  return std::to_string(dot.replica.value()) + ":" + std::to_string(dot.counter);
}

std::optional<crdt::Dot> ParseDot(std::string_view text) {
  const std::size_t colon = text.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const auto replica = ParseU64(text.substr(0, colon));
  const auto counter = ParseU64(text.substr(colon + 1));
  if (!replica || !counter) return std::nullopt;
  return crdt::Dot{crdt::ReplicaId{*replica}, *counter};
}

}  // namespace

std::string Ledger::Report::Summary() const {
  std::ostringstream out;
  out << "acknowledged increments " << acked_increments << ", acknowledged removes "
      << acked_removes << ", removes tried " << tried_removes << ", replica ids " << replicas.size()
      << ", lost " << lost << ", dots reused " << dots_reused << ", lease behind " << lease_behind;
  for (const std::string& p : problems) out << "\n  " << p;
  return out.str();
}

void Ledger::Problem(Report& report, std::string what) const {
  if (report.problems.size() < kMaxProblems) report.problems.push_back(std::move(what));
}

void Ledger::AckIncrement(const std::string& key, const std::string& item, crdt::Dot dot,
                          std::uint64_t amount) {
  ++report_.acked_increments;
  report_.replicas.insert(dot.replica.value());
  const auto [it, fresh] = issued_.try_emplace({dot.replica.value(), key, dot.counter}, 0);
  ++it->second;
  if (!fresh) {
    ++report_.dots_reused;
    Problem(report_, "dot " + DotText(dot) + " of key " + key + " acknowledged for " +
                         std::to_string(it->second) + " writes");
  }
  increments_.push_back(Increment{key, item, dot, amount});
}

void Ledger::TryRemove(const std::string& key, const std::string& item,
                       const std::vector<crdt::Dot>& dots) {
  ++report_.tried_removes;
  auto& removed = removed_[{key, item}];
  removed.insert(dots.begin(), dots.end());
}

void Ledger::AckRemove(const std::string& /*key*/, const std::string& /*item*/) {
  ++report_.acked_removes;
}

std::string Ledger::FormatIncrement(const std::string& key, const std::string& item, crdt::Dot dot,
                                    std::uint64_t amount) {
  return "inc " + key + " " + item + " " + std::to_string(dot.replica.value()) + " " +
         std::to_string(dot.counter) + " " + std::to_string(amount);
}

std::string Ledger::FormatTryRemove(const std::string& key, const std::string& item,
                                    const std::vector<crdt::Dot>& dots) {
  std::string line = "try " + key + " " + item + " ";
  if (dots.empty()) return line + "-";
  for (std::size_t i = 0; i < dots.size(); ++i) {
    if (i > 0) line += ",";
    line += DotText(dots[i]);
  }
  return line;
}

std::string Ledger::FormatAckRemove(const std::string& key, const std::string& item) {
  return "rm " + key + " " + item;
}

bool Ledger::AddLine(std::string_view line) {
  if (!line.empty() && line.front() == '#') return true;
  const std::vector<std::string_view> f = Fields(line);
  if (f.empty()) return false;
  if (f[0] == "inc" && f.size() == 6) {
    const auto replica = ParseU64(f[3]);
    const auto counter = ParseU64(f[4]);
    const auto amount = ParseU64(f[5]);
    if (!replica || !counter || !amount) return false;
    AckIncrement(std::string(f[1]), std::string(f[2]),
                 crdt::Dot{crdt::ReplicaId{*replica}, *counter}, *amount);
    return true;
  }
  if (f[0] == "try" && f.size() == 4) {
    std::vector<crdt::Dot> dots;
    if (f[3] != "-") {
      std::string_view rest = f[3];
      while (!rest.empty()) {
        const std::size_t comma = std::min(rest.find(','), rest.size());
        const auto dot = ParseDot(rest.substr(0, comma));
        if (!dot) return false;
        dots.push_back(*dot);
        rest.remove_prefix(std::min(comma + 1, rest.size()));
      }
    }
    TryRemove(std::string(f[1]), std::string(f[2]), dots);
    return true;
  }
  if (f[0] == "rm" && f.size() == 3) {
    AckRemove(std::string(f[1]), std::string(f[2]));
    return true;
  }
  return false;
}

Ledger::Report Ledger::Check(Store& store) const {
  Report report = report_;
  const crdt::ReplicaId self = store.identity().replica;
  const std::uint64_t lease = store.dot_lease_end();
  std::map<std::string, Cart> carts;
  for (const Increment& inc : increments_) {
    auto cart_it = carts.find(inc.key);
    if (cart_it == carts.end()) {
      StatusOr<Cart> cart = Read<Cart>(store, inc.key);
      if (!cart.ok()) {
        ++report.lost;
        Problem(report, "key " + inc.key + " unreadable: " + cart.status().ToString());
        continue;
      }
      cart_it = carts.emplace(inc.key, std::move(cart).value()).first;
    }
    const Cart& cart = cart_it->second;
    if (inc.dot.replica == self && inc.dot.counter > lease) {
      ++report.lease_behind;
      Problem(report, "dot " + DotText(inc.dot) + " of key " + inc.key + " is above the lease " +
                          std::to_string(lease));
    }
    if (!cart.context().Contains(inc.dot)) {
      ++report.lost;
      Problem(report, "key " + inc.key + " lost acknowledged increment " + DotText(inc.dot) +
                          " of " + inc.item + " (not in the causal context)");
      continue;
    }
    const auto removed = removed_.find({inc.key, inc.item});
    if (removed != removed_.end() && removed->second.count(inc.dot) > 0) continue;
    const auto* counter = cart.store().Find(inc.item);
    const std::uint64_t* amount = counter == nullptr ? nullptr : counter->Find(inc.dot);
    if (amount == nullptr || *amount != inc.amount) {
      ++report.lost;
      Problem(report, "key " + inc.key + " item " + inc.item + " lost acknowledged increment " +
                          DotText(inc.dot) + " of " + std::to_string(inc.amount) +
                          (amount == nullptr ? " (dot absent)"
                                             : " (holds " + std::to_string(*amount) + ")"));
    }
  }
  return report;
}

}  // namespace converge::storage::testing
