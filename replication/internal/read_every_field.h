// Reads every field of a Cap'n Proto message once (TESTPLAN S2, S3).
//
// Cap'n Proto checks a pointer or a text only when it is read, so a handler
// that acts on a message's fields one by one could act on the first ones
// before a malformed one throws. A node therefore walks a received message
// with ReadEveryField before it acts on any of it: a malformed message throws
// here and changes nothing. The walk counts against the reader's traversal
// limit like any read.

#ifndef CONVERGE_REPLICATION_INTERNAL_READ_EVERY_FIELD_H_
#define CONVERGE_REPLICATION_INTERNAL_READ_EVERY_FIELD_H_

#include <capnp/dynamic.h>
#include <capnp/schema.h>

namespace converge::replication::internal {

// Throws kj::Exception if any pointer, list or text under `value` is
// malformed or the reader's traversal or nesting limit is exceeded.
inline void ReadEveryField(capnp::DynamicValue::Reader value) {
  switch (value.getType()) {
    case capnp::DynamicValue::STRUCT: {
      const capnp::DynamicStruct::Reader s = value.as<capnp::DynamicStruct>();
      for (const capnp::StructSchema::Field field : s.getSchema().getNonUnionFields()) {
        ReadEveryField(s.get(field));
      }
      KJ_IF_MAYBE (field, s.which()) {
        ReadEveryField(s.get(*field));
      }
      break;
    }
    case capnp::DynamicValue::LIST:
      for (const capnp::DynamicValue::Reader element : value.as<capnp::DynamicList>()) {
        ReadEveryField(element);
      }
      break;
    case capnp::DynamicValue::TEXT:
      (void)value.as<capnp::Text>().size();
      break;
    case capnp::DynamicValue::DATA:
      (void)value.as<capnp::Data>().size();
      break;
    default:  // numbers, booleans, enums, void: in the struct's data section
      break;
  }
}

}  // namespace converge::replication::internal

#endif  // CONVERGE_REPLICATION_INTERNAL_READ_EVERY_FIELD_H_
