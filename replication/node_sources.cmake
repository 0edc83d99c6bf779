# The sources of the node (replication/node.cc and the protocols it is made
# of), relative to replication/: one list for the library and for the frame
# fuzzer's separate build (replication/fuzz/CMakeLists.txt).
set(CONVERGE_NODE_SOURCES
    node.cc
    internal/anti_entropy.cc
    internal/apply.cc
    internal/delta_intervals.cc
    internal/large_states.cc
    internal/membership.cc
    internal/messages.cc
    internal/pruning.cc
    internal/records.cc
    internal/verifier.cc)
