//! Multicast lists: each handle's own (SET_OID of
//! `OID_802_3_MULTICAST_LIST`), and the adapter set to the union of the
//! binding's handles' lists (`rawnic_logic::multicast`).
//!
//! A handle's new list counts from when its set is sent: the set carries
//! the union with it, and the binding's generation at that moment. When a
//! set completes and the generation moved on meanwhile (another handle's
//! set, a close, a failed set taken back), the union may be stale on the
//! adapter: the driver sets it again (one such set in flight per binding,
//! then again if needed; one that failed, or could not be made or sent
//! for want of memory, is tried again at the next restart, return to D0 or
//! change, and when a handle asks (a LIST, a GET_STATS, a read or
//! RING_WAIT that waits for frames), as an owed packet filter is). A
//! handle has one set on its way at a time, and one that fails gives the
//! handle its old list back.

use super::client::Client;
use super::{OidTag, Rawnic};
use crate::kernel::alloc::AllocError;
use crate::kernel::debug::LEVEL_ERROR;
use crate::kernel::oid::OidKind;
use crate::kernel::protocol::{Binding, NdisStatus};
use crate::kprint;
use alloc::sync::Arc;
use alloc::vec::Vec;
use ndis_sys::OID_802_3_MULTICAST_LIST;
use rawnic_logic::multicast::{MulticastList, add_to_union};
use rawnic_proto::NtStatus;

impl Rawnic {
    /// The union of the lists of the binding's open handles, as OID data.
    fn multicast_union(b: &Binding<Rawnic>) -> Result<Vec<u8>, AllocError> {
        let table = b.clients.lock();
        let mut out = Vec::new();
        for c in table.iter() {
            let st = c.state.lock_dpr(table.at_dispatch());
            out.try_reserve(st.multicast.as_slice().len() * 6).map_err(|_| AllocError)?;
            add_to_union(&mut out, &st.multicast);
        }
        Ok(out)
    }

    /// A user's set of `list` on handle `file`, about to be sent: the
    /// handle's list becomes `list`. Returns the union to send, the
    /// handle's old list and the generation the union is of; fails
    /// STATUS_DEVICE_BUSY while another set of the handle's is on its way.
    pub(super) fn multicast_commit(
        &self,
        file: &Client,
        b: &Arc<Binding<Rawnic>>,
        list: MulticastList,
    ) -> Result<(Vec<u8>, MulticastList, u64), NtStatus> {
        // The list and the generation change together (lock order: the
        // binding's info, then the handle), so a union made after a
        // generation was read has every list of that generation.
        let (old, generation) = {
            let mut info = b.info.lock();
            let mut st = file.state.lock_dpr(info.at_dispatch());
            if st.multicast_pending {
                return Err(NtStatus::DEVICE_BUSY);
            }
            st.multicast_pending = true;
            let old = core::mem::replace(&mut st.multicast, list);
            drop(st);
            info.multicast.generation += 1;
            (old, info.multicast.generation)
        };
        match Self::multicast_union(b) {
            Ok(u) => Ok((u, old, generation)),
            Err(AllocError) => {
                self.multicast_undo(file, b, old, false);
                Err(NtStatus::INSUFFICIENT_RESOURCES)
            }
        }
    }

    /// A user's set failed or was never sent: the handle gets `old` back
    /// (its list before that set, the only one on its way), and the
    /// adapter the union again (`later`: from the binding's work item, for
    /// a caller inside an OID completion).
    pub(super) fn multicast_undo(&self, file: &Client, b: &Arc<Binding<Rawnic>>, old: MulticastList, later: bool) {
        {
            let mut st = file.state.lock();
            st.multicast = old;
            st.multicast_pending = false;
        }
        if later {
            b.info.lock().multicast.generation += 1;
            Self::multicast_later(b);
        } else {
            self.multicast_changed(b);
        }
    }

    /// The union is set again from the binding's work item.
    fn multicast_later(b: &Arc<Binding<Rawnic>>) {
        b.info.lock().multicast.wanted = true;
        b.defer_work();
    }

    /// In the binding's work item: a union asked for by a completion.
    pub(super) fn multicast_deferred(&self, b: &Arc<Binding<Rawnic>>) {
        if core::mem::take(&mut b.info.lock().multicast.wanted) {
            self.update_multicast(b);
        }
    }

    /// A user's multicast set of generation `generation` completed.
    pub(super) fn multicast_set_done(
        &self,
        file: &Client,
        b: &Arc<Binding<Rawnic>>,
        old: MulticastList,
        generation: u64,
        status: NdisStatus,
    ) {
        // (Inside the completion, which may be inside the request's own
        // call: another set goes from the work item, not from here.)
        if status != NdisStatus::SUCCESS {
            // The adapter may hold what it had, or a later set's union
            // that had this list: either way, set again without it.
            self.multicast_undo(file, b, old, true);
            return;
        }
        file.state.lock().multicast_pending = false;
        let stale = {
            let mut info = b.info.lock();
            if info.multicast.generation == generation {
                // The adapter has the union of now.
                info.multicast.stale = false;
                false
            } else {
                true
            }
        };
        if stale {
            Self::multicast_later(b);
        }
    }

    /// A handle's list changed other than by its own set (it closed, or a
    /// set was taken back): the adapter gets the union again.
    pub(super) fn multicast_changed(&self, b: &Arc<Binding<Rawnic>>) {
        b.info.lock().multicast.generation += 1;
        self.update_multicast(b);
    }

    /// After a restart, or back in D0: a union the adapter may not have is
    /// set again.
    pub(super) fn multicast_if_stale(&self, b: &Arc<Binding<Rawnic>>) {
        if b.info.lock().multicast.stale {
            self.update_multicast(b);
        }
    }

    /// Sets the union on the adapter: one set of the driver's in flight at
    /// a time, and one loop per binding sends them (a set NDIS completes
    /// inside `NdisOidRequest` that asks for another leaves it to the
    /// loop, so the stack does not grow a level per set).
    fn update_multicast(&self, b: &Arc<Binding<Rawnic>>) {
        {
            let mut info = b.info.lock();
            if info.closing {
                return;
            }
            if info.multicast.in_flight || info.multicast.sending {
                info.multicast.dirty = true;
                return;
            }
            info.multicast.sending = true;
        }
        loop {
            let generation = {
                let mut info = b.info.lock();
                info.multicast.dirty = false;
                info.multicast.in_flight = true;
                info.multicast.generation
            };
            let sent = match Self::multicast_union(b) {
                Ok(u) => {
                    self.internal_oid(b, OidKind::Set, OID_802_3_MULTICAST_LIST, u, OidTag::Multicast { generation })
                }
                Err(AllocError) => false,
            };
            let mut info = b.info.lock();
            if !sent {
                info.multicast.in_flight = false;
                info.multicast.stale = true;
            }
            // Again only when the set is back (completed inside the call)
            // and something asked for another meanwhile.
            if !sent || info.multicast.in_flight || !info.multicast.dirty || info.closing {
                info.multicast.sending = false;
                return;
            }
        }
    }

    /// The driver's multicast set of generation `generation` completed.
    pub(super) fn multicast_sync_done(&self, b: &Arc<Binding<Rawnic>>, generation: u64, status: NdisStatus) {
        let ok = status == NdisStatus::SUCCESS;
        if !ok {
            kprint!(LEVEL_ERROR, "{}: setting the multicast list failed: {:#x}", b.name, status.0);
        }
        let again = {
            let mut info = b.info.lock();
            info.multicast.in_flight = false;
            let moved = info.multicast.generation != generation;
            info.multicast.stale = !ok || moved;
            core::mem::take(&mut info.multicast.dirty) || moved
        };
        if again {
            self.update_multicast(b);
        }
    }
}
