// The law suite instantiated for every converge CRDT type (TESTPLAN R1).

#include <string>

#include "crdt/crdt.h"
#include "property-tests/crdt_traits.h"
#include "property-tests/law_suite.h"

namespace {
using namespace converge::crdt;  // NOLINT(google-build-using-namespace): test brevity
}  // namespace

CONVERGE_CRDT_LAWS(GCounter, GCounter);
CONVERGE_CRDT_LAWS(PnCounter, PnCounter);
CONVERGE_CRDT_LAWS(LwwRegister, LwwRegister<int>);
CONVERGE_CRDT_LAWS(MvRegister, MvRegister<int>);
CONVERGE_CRDT_LAWS(EwFlag, EwFlag);
CONVERGE_CRDT_LAWS(CausalCounter, CausalCounter);
CONVERGE_CRDT_LAWS(OrSetInt, OrSet<int>);
CONVERGE_CRDT_LAWS(OrSetString, OrSet<std::string>);
CONVERGE_CRDT_LAWS(Cart, OrMap<std::string, CausalCounter>);
CONVERGE_CRDT_LAWS(MapOfSets, OrMap<int, OrSet<int>>);
CONVERGE_CRDT_LAWS(MapOfRegisters, OrMap<int, MvRegister<int>>);
CONVERGE_CRDT_LAWS(NestedMaps, OrMap<int, OrMap<int, EwFlag>>);
