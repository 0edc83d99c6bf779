// Addresses and names as every replication component and service spells
// them: "host:port" (or "[v6 address]:port") and node/cluster names.

#ifndef CONVERGE_REPLICATION_ADDRESS_H_
#define CONVERGE_REPLICATION_ADDRESS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace converge::replication {

// "host:port" or "[v6 address]:port" -> host and port; nullopt when malformed.
struct HostPort {
  std::string host;
  std::uint16_t port = 0;
};
std::optional<HostPort> ParseHostPort(std::string_view address);

// A node name or cluster name (as the TCP hello carries it): 1 to 255
// printable ASCII characters, no space.
bool ValidNodeName(std::string_view name);

}  // namespace converge::replication

#endif  // CONVERGE_REPLICATION_ADDRESS_H_
