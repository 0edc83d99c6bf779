// RunChild: runs a helper process for the fault tests, collects the lines
// it writes to stdout, and SIGKILLs it at a chosen moment.

#ifndef CONVERGE_STORAGE_TESTING_CHILD_PROCESS_H_
#define CONVERGE_STORAGE_TESTING_CHILD_PROCESS_H_

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace converge::storage::testing {

struct ChildResult {
  std::vector<std::string> lines;  // complete lines only (a torn last line is dropped)
  bool killed = false;             // we sent SIGKILL
  int exit_code = -1;              // when it exited by itself
  int signal = 0;                  // when a signal ended it
  std::string error;               // fork/exec/pipe failure
};

// Runs argv[0] with argv, stdin from /dev/null, stderr inherited. Kills it
// with SIGKILL `kill_after` after the start (if given), or when `timeout`
// passes; then reads what is left in the pipe and reaps it.
ChildResult RunChild(const std::vector<std::string>& argv,
                     std::optional<std::chrono::microseconds> kill_after,
                     std::chrono::milliseconds timeout);

}  // namespace converge::storage::testing

#endif  // CONVERGE_STORAGE_TESTING_CHILD_PROCESS_H_
