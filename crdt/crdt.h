// Umbrella header: every converge CRDT type.
//
//   GCounter, PnCounter         counters (crdt/g_counter.h, crdt/pn_counter.h)
//   LwwRegister<T>, Hlc         last-writer-wins register and its clock
//   MvRegister<T>               multi-value register
//   EwFlag                      enable-wins flag
//   OrSet<T>                    add-wins observed-remove set
//   OrMap<K, V>                 map of causal CRDTs
//   CausalCounter               resettable counter for OrMap values
//
// See docs/semantics.md for the semantics of each type.

#ifndef CONVERGE_CRDT_CRDT_H_
#define CONVERGE_CRDT_CRDT_H_

#include "crdt/causal_context.h"
#include "crdt/causal_counter.h"
#include "crdt/checked.h"
#include "crdt/concepts.h"
#include "crdt/dot_store.h"
#include "crdt/ew_flag.h"
#include "crdt/g_counter.h"
#include "crdt/hlc.h"
#include "crdt/lww_register.h"
#include "crdt/mv_register.h"
#include "crdt/or_map.h"
#include "crdt/or_set.h"
#include "crdt/pn_counter.h"
#include "crdt/replica_id.h"

namespace converge::crdt {

static_assert(DeltaCrdt<GCounter>);
static_assert(DeltaCrdt<PnCounter>);
static_assert(DeltaCrdt<LwwRegister<int>>);
static_assert(CausalCrdt<MvRegister<int>>);
static_assert(CausalCrdt<EwFlag>);
static_assert(CausalCrdt<CausalCounter>);
static_assert(CausalCrdt<OrSet<int>>);
static_assert(CausalCrdt<OrMap<int, CausalCounter>>);
static_assert(CausalCrdt<OrMap<int, OrMap<int, EwFlag>>>);

}  // namespace converge::crdt

#endif  // CONVERGE_CRDT_CRDT_H_
