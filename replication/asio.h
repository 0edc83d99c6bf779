// The one place converge includes Boost.Asio (and its TLS layer) from.
//
// Boost 1.74's Asio uses std::exchange without including <utility> itself,
// which breaks in C++20 mode unless <utility> comes first; every converge
// file that needs Asio includes this header instead of Asio's.

#ifndef CONVERGE_REPLICATION_ASIO_H_
#define CONVERGE_REPLICATION_ASIO_H_

// clang-format off
#include <utility>  // must precede Asio (see above)

#include <boost/asio.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
// clang-format on

namespace converge::replication {
namespace asio = boost::asio;
}  // namespace converge::replication

#endif  // CONVERGE_REPLICATION_ASIO_H_
