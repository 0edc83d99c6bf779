// A downstream project's own CRDT, checked with the installed law suite.

#include <algorithm>
#include <string>

#include "property-tests/law_suite.h"

namespace consumer {

// Keeps the largest value ever assigned.
class MaxRegister {
 public:
  MaxRegister Set(int v) {
    MaxRegister delta;
    delta.value_ = v;
    Join(delta);
    return delta;
  }
  void Join(const MaxRegister& other) { value_ = std::max(value_, other.value_); }
  [[nodiscard]] bool IsBottom() const { return value_ == kBottom; }
  friend bool operator==(const MaxRegister&, const MaxRegister&) = default;

 private:
  static constexpr int kBottom = -1;
  int value_ = kBottom;
};

}  // namespace consumer

template <>
struct converge::testing::CrdtTraits<consumer::MaxRegister> {
  static rc::Gen<Operation<consumer::MaxRegister>> Operations() {
    return rc::gen::map(rc::gen::inRange(0, 100), [](int v) {
      return Operation<consumer::MaxRegister>{
          "Set(" + std::to_string(v) + ")",
          [v](consumer::MaxRegister& r, converge::crdt::ReplicaId) { return r.Set(v); }};
    });
  }
};

CONVERGE_CRDT_LAWS(MaxRegister, consumer::MaxRegister);
