//! What rawnic keeps per binding, beyond the wrapper's state machine.

use super::Rawnic;
use super::client::{AtomicCounters, Client};
use crate::kernel::alloc::AllocError;
use crate::kernel::protocol::{LinkState, RestartToken};
use crate::kernel::sync::{SpinLock, SpinLockGuard};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use ndis_sys::{NDIS_MAC_OPTION_8021P_PRIORITY, NDIS_MAC_OPTION_8021Q_VLAN};
use rawnic_logic::vlan::Offload;
use rawnic_proto::PacketFilter;
use rawnic_proto::filter as pf;

/// Handles open on a binding, indexed by slot. A send's tag is
/// `slot << 48 | generation`, so a completion that arrives after its handle
/// closed (and the slot was reused) is not counted against the new one:
/// the 48-bit generation comes round again only after 2^48 - 1 opens of
/// the binding (nine years at a million a second), not after 65,535 as a
/// 16-bit one did, while a miniport held one send.
/// A send tag's generation bits (below its slot's 16).
const GENERATION: u64 = (1 << 48) - 1;

pub struct ClientTable {
    /// Each slot's generation, handle, and whether it receives (its
    /// requested packet filter is not 0, which is fixed when it opens).
    slots: Vec<Option<(u64, Arc<Client>, bool)>>,
    next_gen: u64,
    /// Handles whose packet filter is not 0 (they receive).
    pub receivers: usize,
}

impl ClientTable {
    pub fn new() -> Result<Self, AllocError> {
        let slots = crate::kernel::alloc::try_vec(4)?;
        Ok(ClientTable { slots, next_gen: 1, receivers: 0 })
    }

    /// Adds a handle; returns its tag, or gives it back when memory ran
    /// out.
    pub fn insert(&mut self, c: Arc<Client>, receives: bool) -> Result<u64, Arc<Client>> {
        let idx = match self.slots.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                if self.slots.len() >= 0xFFFF || self.slots.try_reserve(1).is_err() {
                    return Err(c);
                }
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        let generation = self.next_gen;
        self.next_gen = ((self.next_gen + 1) & GENERATION).max(1);
        self.slots[idx] = Some((generation, c, receives));
        if receives {
            self.receivers += 1;
        }
        Ok(((idx as u64) << 48) | generation)
    }

    pub fn remove(&mut self, tag: u64, receives: bool) -> Option<Arc<Client>> {
        let (idx, generation) = ((tag >> 48) as usize, tag & GENERATION);
        match self.slots.get_mut(idx) {
            Some(slot) if slot.as_ref().is_some_and(|(g, _, _)| *g == generation) => {
                if receives {
                    self.receivers -= 1;
                }
                slot.take().map(|(_, c, _)| c)
            }
            _ => None,
        }
    }

    /// The handle a send tag belongs to, if it is still open.
    #[inline]
    pub fn by_tag(&self, tag: u64) -> Option<&Arc<Client>> {
        let (idx, generation) = ((tag >> 48) as usize, tag & GENERATION);
        match self.slots.get(idx) {
            Some(Some((g, c, _))) if *g == generation => Some(c),
            _ => None,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Client>> {
        self.slots.iter().filter_map(|s| s.as_ref().map(|(_, c, _)| c))
    }

    /// Every handle copies its retained frames into their queue slots
    /// (their NBLs go back when the retention ends). `table` is this
    /// table, held: the handles' locks are taken under it.
    pub fn materialize_retained(table: &SpinLockGuard<'_, ClientTable>) {
        for c in table.iter() {
            c.state.lock_dpr(table.at_dispatch()).ring.materialize_all();
        }
    }

    /// The one handle that receives, when exactly one does.
    pub fn sole_receiver(&self) -> Option<&Arc<Client>> {
        if self.receivers != 1 {
            return None;
        }
        self.slots.iter().find_map(|s| s.as_ref().filter(|(_, _, r)| *r).map(|(_, c, _)| c))
    }

    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// Takes any one handle out (none left: `None`); the unbind empties the
    /// table this way without allocating.
    pub fn take_any(&mut self) -> Option<Arc<Client>> {
        let (_, c, receives) = self.slots.iter_mut().find_map(Option::take)?;
        if receives {
            self.receivers = self.receivers.saturating_sub(1);
        }
        Some(c)
    }
}

/// What `multicast.rs` keeps of a binding's multicast list.
#[derive(Default)]
pub struct MulticastSync {
    /// Bumped at each change of a handle's multicast list; a set whose
    /// union was made at an older one is followed by another.
    pub generation: u64,
    /// The driver's own set is in flight; set again when it completes.
    pub in_flight: bool,
    pub dirty: bool,
    /// A thread is in `update_multicast`'s loop: a set asked for meanwhile
    /// (from a completion inside its `NdisOidRequest`) is left to it.
    pub sending: bool,
    /// The driver's last set failed or could not be sent: the adapter may
    /// not have the union (tried again at the next restart or change).
    pub stale: bool,
    /// A completion asked for the union to be set, by the work item.
    pub wanted: bool,
}

/// One packet-filter set, as its OID request carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilterSet {
    /// The filter set.
    pub value: PacketFilter,
    /// It carries a restart step.
    pub restart: bool,
    /// Refusable bits the handles need that it leaves out, to learn which
    /// bit the adapter refused (`filter::Blame::Probe`): taken, those are
    /// it.
    pub probe: PacketFilter,
}

/// A restart waiting for its OID requests.
pub struct RestartProgress {
    pub token: RestartToken<Rawnic>,
    pub waiting: u32,
}

/// What the binding's logic lock protects.
pub struct BindingInfo {
    pub mtu: u32,
    pub link: LinkState,
    pub lookahead: u32,
    pub mac_options: u32,
    pub supported_filters: PacketFilter,
    pub description: String,
    pub filter_modules: Vec<String>,
    /// `Some(true)` when the adapter reported RSS capabilities.
    pub rss: Option<bool>,
    /// The packet filter last set on the adapter.
    pub packet_filter: PacketFilter,
    /// Filter bits the adapter refused to set (never tried again while
    /// the binding lives).
    pub refused_filters: PacketFilter,
    /// A packet filter set is in flight; set again when it completes.
    pub filter_in_flight: bool,
    pub filter_dirty: bool,
    /// A thread is in `Rawnic::send_filter`'s loop for this binding; a set
    /// asked for meanwhile (from a completion NDIS made inside that loop's
    /// `NdisOidRequest`, or on another CPU) waits in `filter_next` for the
    /// loop to send it, instead of nesting another send on the stack.
    pub filter_sending: bool,
    /// The set that loop sends next.
    pub filter_next: Option<FilterSet>,
    /// A refused set added several refusable bits, and which of them the
    /// adapter refuses is not known (`filter::Blame::Probe`): the refusable
    /// bits it added, and those the next set leaves out to tell.
    pub filter_probe: (PacketFilter, PacketFilter),
    /// The adapter may not have the filter the handles need: a set could
    /// not be sent (no memory), or failed for a passing reason (resources,
    /// a reset) or with no bit to blame. The next chance sets it again
    /// even if `packet_filter` already equals what the handles need.
    pub filter_owed: bool,
    /// Sets of an owed filter the binding's work item tried since the last
    /// one that succeeded (`filter::FILTER_RETRIES` at most); an open or a
    /// close of a handle that receives, a restart, a LIST, a handle's
    /// GET_STATS or a read that waits tries again whatever the count.
    pub filter_retries: u8,
    /// The work item is to set the owed filter.
    pub filter_later: bool,
    /// The last packet-filter set that failed (and was not sent again at
    /// once) met a status that blames no bit, and none succeeded since:
    /// the adapter has `packet_filter`, not the filter the handles need
    /// (their GET_STATS say what they get, without `FILTER_PENDING`). A
    /// later set that fails for a passing reason, or cannot be sent,
    /// clears it: the filter is tried again.
    pub filter_failing: bool,
    /// A set failed blaming no bit since the last one that succeeded: the
    /// handles that miss frames were told (`FILTER_FAILED`), each once
    /// until a set succeeds.
    pub filter_failure_told: bool,
    pub restart: Option<RestartProgress>,
    /// The adapter's multicast list, as the driver keeps it in step with
    /// the handles' (`multicast.rs`).
    pub multicast: MulticastSync,
    /// The unbind began: no handle may open the binding.
    pub closing: bool,
    /// The handles heard `BOUND` (the open completed): link changes are
    /// told from then on, so a binding's first event is `BOUND` (one
    /// recorded before it is in the state a listing gives).
    pub announced: bool,
    pub restarts: u32,
    /// Link states status indications recorded: a query's answer sent
    /// before the last of them is older than it, and is not recorded.
    pub link_indications: u32,
}

impl BindingInfo {
    /// The filter bits handles may have: what the adapter supports, less
    /// what it refused.
    pub fn allowed_filters(&self) -> PacketFilter {
        rawnic_logic::filter::allowed(self.supported_filters, self.refused_filters)
    }
}

/// What an adapter with MAC options `mac_options` does with 802.1Q tags.
pub fn offload(mac_options: u32) -> Offload {
    Offload {
        vlan: mac_options & NDIS_MAC_OPTION_8021Q_VLAN != 0,
        priority: mac_options & NDIS_MAC_OPTION_8021P_PRIORITY != 0,
    }
}

/// Per-binding logic state (the wrapper's `T::Binding`).
/// Binds holding a `ListPlace`: the binding list's capacity covers them
/// (`ListPlace::keep`), so that listing a binding whose open completed
/// needs no memory.
static PLACES_KEPT: AtomicUsize = AtomicUsize::new(0);

/// A bind's place in the driver's binding list, kept from the bind's start
/// until its open completes (`take`: the binding goes in) or the bind is
/// given up (dropped). Without it a binding NDIS had opened could fail to
/// be listed for want of memory, and no handle could ever open it.
pub struct ListPlace {
    held: AtomicBool,
}

impl ListPlace {
    /// Makes room in `list` (locked by the caller) for one more binding
    /// beside every place already kept.
    pub fn keep<T>(list: &mut Vec<T>) -> Result<Self, AllocError> {
        let kept = PLACES_KEPT.fetch_add(1, Ordering::AcqRel) + 1;
        if list.try_reserve(kept).is_err() {
            PLACES_KEPT.fetch_sub(1, Ordering::AcqRel);
            return Err(AllocError);
        }
        Ok(ListPlace { held: AtomicBool::new(true) })
    }

    /// Gives the place up (its binding is being listed, under the list's
    /// lock, or its open failed); whether it was still held.
    pub fn take(&self) -> bool {
        let held = self.held.swap(false, Ordering::AcqRel);
        if held {
            PLACES_KEPT.fetch_sub(1, Ordering::AcqRel);
        }
        held
    }
}

impl Drop for ListPlace {
    fn drop(&mut self) {
        self.take();
    }
}

pub struct RawnicBinding {
    pub id: u32,
    /// Its place in the binding list until its open completes.
    pub list_place: ListPlace,
    pub name: String,
    pub mac: [u8; 6],
    pub info: SpinLock<BindingInfo>,
    /// Held while a link state is recorded and told (`Rawnic::record_link`):
    /// NDIS may indicate status on two CPUs at once, and the handles hear
    /// the changes in the order they were recorded. Taken before `info`
    /// and the driver's handle list.
    pub link_events: SpinLock<()>,
    pub clients: SpinLock<ClientTable>,
    /// `clients`' count of handles that receive, as last set under its
    /// lock (each change of the table's count is followed by a store
    /// here, in the same hold: `RawnicBinding::set_listeners`), for a
    /// look without the lock: whether a send is worth handing to the
    /// binding's handles (`local::anyone_listens`, once per kick).
    pub listeners: AtomicUsize,
    pub counters: AtomicCounters,
    /// UMEM bytes its handles have attached (at most
    /// `ring::MAX_UMEM_PER_BINDING`).
    pub umem_bytes: AtomicUsize,
}

impl RawnicBinding {
    /// Records `table`'s count of handles that receive (`listeners`), the
    /// table being this binding's `clients`, held, and just changed.
    pub fn set_listeners(&self, table: &ClientTable) {
        self.listeners.store(table.receivers, Ordering::Release);
    }

    /// The packet filter the handles need (their effective filters), within
    /// what the adapter allows.
    pub fn wanted_filter(&self, table: &ClientTable, allowed: PacketFilter) -> PacketFilter {
        let mut f = PacketFilter::NONE;
        for c in table.iter() {
            f |= c.state.lock().filter.packet_filter();
        }
        if f.contains(pf::PROMISCUOUS) {
            // Promiscuous implies the rest.
            f |= pf::DIRECTED | pf::BROADCAST | pf::ALL_MULTICAST;
        }
        f & allowed
    }
}
