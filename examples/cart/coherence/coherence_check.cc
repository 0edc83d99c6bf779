// coherence-check: reads every node of a running cart cluster, says for
// each key that differs past the grace period why, checks the cart rules,
// and can repair by pushing joins; with --watch it is the standing coherence
// service exporting Prometheus metrics. docs/coherence.md is the manual.
//
// Exit status: 0 nothing needs a person (coherent, or only converging
// divergence), 1 something in the data needs a person, 2 on error (bad
// flags, --metrics cannot listen, or the scan could not be done and found no
// data problem). --watch SECONDS runs until SIGINT/SIGTERM and exits 0.
// Progress of a scan past 10,000 keys goes to stderr; reports to stdout.

#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "examples/cart/coherence/metrics.h"
#include "examples/cart/coherence/node_api.h"
#include "examples/cart/coherence/report.h"
#include "examples/cart/coherence/scanner.h"
#include "examples/cart/coherence/text.h"
#include "examples/cart/coherence/wire.h"

namespace {

using converge::cart::coherence::HostPort;

std::atomic<bool> g_stop{false};

extern "C" void OnSignal(int) { g_stop.store(true); }

int BadFlag(const std::string& message) {
  std::cerr << "coherence-check: " << message << "\n"
            << "Run with --help for the flags.\n";
  return converge::cart::coherence::kExitError;
}

// The flags of the draft, named in the message that refuses them.
std::optional<std::string> ReplacedFlag(std::string_view arg) {
  const std::string_view name = arg.substr(0, arg.find('='));
  if (name == "--grace-ms") return "--grace-ms was replaced by --grace SECONDS (e.g. --grace 0.5)";
  if (name == "--interval-ms") {
    return "--interval-ms was replaced by --watch SECONDS (the interval, e.g. --watch 30)";
  }
  return std::nullopt;
}

// The value of a flag in seconds, within [min, max]; nullopt after telling
// why not.
std::optional<std::chrono::steady_clock::duration> Seconds(const std::string& flag,
                                                           const std::string& text, double min,
                                                           double max, const char* what) {
  const std::optional<double> v = converge::cart::coherence::ParseSeconds(text);
  if (!v || *v < min || *v > max) {
    BadFlag(flag + " " + converge::cart::coherence::Printable(text, 40) + ": expected " + what);
    return std::nullopt;
  }
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(*v));
}

double UnixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string Timestamp() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

}  // namespace

int main(int argc, char** argv) {
  namespace coh = converge::cart::coherence;

  CLI::App app{
      "coherence-check: compares every node of a cart cluster key by key, explains each\n"
      "divergence in CRDT terms (behind, concurrent, unexplainable), checks the cart rules,\n"
      "and can repair by pushing joins. See docs/coherence.md."};
  std::vector<std::string> node_flags;
  bool discover = false;
  std::string prefix{converge::cart::kKeyPrefix};
  std::string grace_text = "2";
  bool json = false;
  bool repair = false;
  std::string watch_text;
  std::string metrics_address;
  std::uint64_t timeout_ms = 5000;
  bool digests_only = false;
  std::size_t page_size = 1000;
  std::size_t max_keys = 1'000'000;
  std::size_t max_state_bytes = coh::kDefaultMaxStateBytes;

  app.add_option("--node", node_flags, "HTTP address of a node: http://HOST:PORT (repeatable)");
  app.add_flag("--discover", discover,
               "also scan the members /cluster lists (not those that left)");
  app.add_option("--prefix", prefix, "scan the keys starting with this (default cart:)");
  app.add_option("--grace", grace_text,
                 "report a key only once it has differed this many seconds (0-86400, fractions "
                 "allowed; default 2)")
      ->type_name("SECONDS");
  app.add_flag("--json", json, "print the report as one JSON object (per scan with --watch)");
  app.add_flag("--repair", repair,
               "push the join to nodes that are behind or concurrent (POST /internal/merge)");
  auto* watch_option = app.add_option("--watch", watch_text,
                                      "scan again every SECONDS (0.01-86400, fractions allowed) "
                                      "until SIGINT/SIGTERM: the standing service")
                           ->type_name("SECONDS");
  app.add_option("--metrics", metrics_address,
                 "with --watch: serve Prometheus metrics on HOST:PORT (/metrics)")
      ->type_name("HOST:PORT")
      ->needs(watch_option);
  app.add_option("--timeout-ms", timeout_ms, "per HTTP request, connect included")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{600'000}));
  app.add_flag("--digests-only", digests_only,
               "read states only of keys whose digests differ (the cart rules are then checked "
               "on those keys only)");
  app.add_option("--page-size", page_size, "keys per /internal/keys request")
      ->check(CLI::Range(std::size_t{1}, std::size_t{10'000}));
  app.add_option("--max-keys", max_keys, "refuse a node listing more keys than this")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100'000'000}));
  app.add_option("--max-state-bytes", max_state_bytes, "refuse a state larger than this")
      ->check(CLI::Range(std::size_t{1024}, std::size_t{256u << 20}));

  for (int i = 1; i < argc; ++i) {
    if (const auto why = ReplacedFlag(argv[i])) return BadFlag(*why);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return BadFlag(e.what());
  }

  const auto grace =
      Seconds("--grace", grace_text, 0, 86'400, "seconds from 0 to 86400 (e.g. 0.5)");
  if (!grace) return coh::kExitError;
  const bool watch = !watch_option->empty();
  std::chrono::steady_clock::duration interval{0};
  if (watch) {
    const auto every =
        Seconds("--watch", watch_text, 0.01, 86'400, "seconds from 0.01 to 86400 (e.g. 30)");
    if (!every) return coh::kExitError;
    interval = *every;
  }
  if (node_flags.empty()) return BadFlag("give at least one --node http://HOST:PORT");
  if (prefix.size() > coh::kMaxKeyBytes) return BadFlag("--prefix is too long");
  std::vector<HostPort> addresses;
  std::set<std::string> seen;
  for (const std::string& flag : node_flags) {
    converge::StatusOr<HostPort> address = coh::ParseNodeAddress(flag);
    if (!address.ok()) return BadFlag("--node " + address.status().message());
    if (seen.insert(coh::ToString(*address)).second) addresses.push_back(*address);
  }
  std::optional<HostPort> metrics_bind;
  if (!metrics_address.empty()) {
    converge::StatusOr<HostPort> bind = coh::ParseNodeAddress(metrics_address);
    if (!bind.ok()) return BadFlag("--metrics " + bind.status().message());
    metrics_bind = *bind;
  }

  coh::HttpOptions http;
  http.timeout = std::chrono::milliseconds(timeout_ms);
  http.max_state_bytes = max_state_bytes;
  http.max_body_bytes = max_state_bytes / 3 * 4 + (4u << 20);  // a state in base64 and slack

  std::vector<coh::Scanner::Node> nodes;
  for (const HostPort& a : addresses) nodes.push_back({a, coh::MakeHttpNodeApi(a, http)});
  coh::ScanOptions options;
  options.prefix = prefix;
  options.grace = *grace;
  options.wait_for_grace = !watch;
  options.repair = repair;
  options.read_equal_states = !digests_only;
  options.discover = discover;
  options.page_limit = page_size;
  options.max_keys = max_keys;
  coh::ScanEnvironment env;
  env.connect = [http](const HostPort& a) { return coh::MakeHttpNodeApi(a, http); };
  // Progress of large scans on stderr: stdout holds only the reports.
  env.progress = [](const coh::ScanProgress& p) { std::cerr << coh::ProgressLine(p) << "\n"; };
  coh::Scanner scanner(std::move(nodes), options, env);

  if (!watch) {
    const coh::Report report = scanner.Scan();
    std::cout << (json ? coh::RenderJson(report) + "\n" : coh::RenderHuman(report));
    std::cout.flush();
    return coh::ExitCode(report);
  }

  // The standing service.
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  auto registry = std::make_shared<prometheus::Registry>();
  coh::CoherenceMetrics metrics(*registry);
  std::unique_ptr<prometheus::Exposer> exposer;
  if (metrics_bind) {
    try {
      exposer = std::make_unique<prometheus::Exposer>(coh::ToString(*metrics_bind));
    } catch (const std::exception& e) {
      return BadFlag("--metrics " + coh::ToString(*metrics_bind) + ": cannot listen: " + e.what());
    }
    exposer->RegisterCollectable(registry);
    std::cerr << "coherence-check: metrics on http://" << coh::ToString(*metrics_bind)
              << "/metrics\n";
  }
  while (!g_stop.load()) {
    const coh::Report report = scanner.Scan();
    metrics.Observe(report, scanner.resolved(), UnixNow());
    const coh::Outcome outcome = coh::OutcomeOf(report);
    if (json) {
      std::cout << coh::RenderJson(report) << "\n";
    } else if (outcome == coh::Outcome::kClean) {
      std::cout << Timestamp() << " clean: " << report.keys_scanned << " keys, "
                << report.keys_within_grace << " within grace, scan " << report.figures.scan_seconds
                << " s\n";
    } else {
      std::cout << Timestamp() << " " << coh::OutcomeName(outcome) << "\n"
                << coh::RenderHuman(report);
    }
    std::cout.flush();
    const auto until = std::chrono::steady_clock::now() + interval;
    for (auto now = std::chrono::steady_clock::now(); !g_stop.load() && now < until;
         now = std::chrono::steady_clock::now()) {
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
          until - now, std::chrono::milliseconds(50)));
    }
  }
  return 0;
}
