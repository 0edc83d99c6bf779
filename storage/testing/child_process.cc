#include "storage/testing/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace converge::storage::testing {

ChildResult RunChild(const std::vector<std::string>& argv,
                     std::optional<std::chrono::microseconds> kill_after,
                     std::chrono::milliseconds timeout) {
  ChildResult result;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    result.error = std::string("pipe: ") + std::strerror(errno);
    return result;
  }
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) {
    result.error = std::string("fork: ") + std::strerror(errno);
    ::close(fds[0]);
    ::close(fds[1]);
    return result;
  }
  if (pid == 0) {
    // Only async-signal-safe calls until exec.
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    ::dup2(fds[1], STDOUT_FILENO);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(fds[1]);

  const auto deadline =
      start + (kill_after ? std::min<std::chrono::steady_clock::duration>(*kill_after, timeout)
                          : std::chrono::steady_clock::duration(timeout));
  std::string pending;
  char buf[4096];
  bool eof = false;
  const auto take = [&](std::size_t n) {
    pending.append(buf, n);
    std::size_t pos;
    while ((pos = pending.find('\n')) != std::string::npos) {
      result.lines.push_back(pending.substr(0, pos));
      pending.erase(0, pos + 1);
    }
  };
  while (!eof) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    const auto wait_ms = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
    pollfd p{fds[0], POLLIN, 0};
    // Wake at most every millisecond so a kill lands close to its moment.
    const int ready = ::poll(&p, 1, static_cast<int>(std::min<long>(wait_ms, 1)));
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) {
      take(static_cast<std::size_t>(n));
    } else if (n == 0) {
      eof = true;
    } else if (errno != EINTR) {
      break;
    }
  }
  if (!eof) {
    ::kill(pid, SIGKILL);
    result.killed = true;
    for (;;) {
      const ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n > 0) {
        take(static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        break;
      }
    }
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  return result;
}

}  // namespace converge::storage::testing
