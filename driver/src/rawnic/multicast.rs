//! Multicast lists: each handle's own (SET_OID of
//! `OID_802_3_MULTICAST_LIST`), and the adapter set to the union of the
//! binding's handles' lists (`rawnic_logic::multicast`).
//!
//! A handle's new list counts from when its set is sent: the set carries
//! the union with it, and the binding's generation at that moment. When a
//! set completes and the generation moved on meanwhile (another handle's
//! set, a close, a failed set taken back), the union may be stale on the
//! adapter: the driver sets it again (one such set in flight per binding,
//! then again if needed). A failed user set gives the handle its old list
//! back (unless it set another since).

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
    /// handle's old list and the generation the union is of.
    pub(super) fn multicast_commit(
        &self,
        file: &Client,
        b: &Arc<Binding<Rawnic>>,
        list: MulticastList,
    ) -> Result<(Vec<u8>, MulticastList, u64), AllocError> {
        // The list and the generation change together (lock order: the
        // binding's info, then the handle), so a union made after a
        // generation was read has every list of that generation.
        let (old, generation) = {
            let mut info = b.info.lock();
            info.multicast_gen += 1;
            let mut st = file.state.lock_dpr(info.at_dispatch());
            st.multicast_gen = info.multicast_gen;
            (core::mem::replace(&mut st.multicast, list), info.multicast_gen)
        };
        match Self::multicast_union(b) {
            Ok(u) => Ok((u, old, generation)),
            Err(e) => {
                self.multicast_undo(file, b, old, generation);
                Err(e)
            }
        }
    }

    /// A user's set (of generation `generation`) failed or was never sent: the
    /// handle gets `old` back, if it set nothing since.
    pub(super) fn multicast_undo(&self, file: &Client, b: &Arc<Binding<Rawnic>>, old: MulticastList, generation: u64) {
        {
            let mut st = file.state.lock();
            if st.multicast_gen == generation {
                st.multicast = old;
            }
        }
        self.multicast_changed(b);
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
        if status != NdisStatus::SUCCESS {
            // The adapter may hold what it had, or a later set's union
            // that had this list: either way, set again without it.
            self.multicast_undo(file, b, old, generation);
        } else if b.info.lock().multicast_gen != generation {
            self.update_multicast(b);
        }
    }

    /// A handle's list changed other than by its own set (it closed, or a
    /// set was taken back): the adapter gets the union again.
    pub(super) fn multicast_changed(&self, b: &Arc<Binding<Rawnic>>) {
        b.info.lock().multicast_gen += 1;
        self.update_multicast(b);
    }

    /// Sets the union on the adapter, unless a set of the driver's is in
    /// flight (it is then sent again when that completes).
    fn update_multicast(&self, b: &Arc<Binding<Rawnic>>) {
        let generation = {
            let mut info = b.info.lock();
            if info.closing {
                return;
            }
            if info.multicast_in_flight {
                info.multicast_dirty = true;
                return;
            }
            info.multicast_in_flight = true;
            info.multicast_gen
        };
        let sent = match Self::multicast_union(b) {
            Ok(u) => self.internal_oid(b, OidKind::Set, OID_802_3_MULTICAST_LIST, u, OidTag::Multicast { generation }),
            Err(AllocError) => false,
        };
        if !sent {
            // (The next change tries again.)
            b.info.lock().multicast_in_flight = false;
        }
    }

    /// The driver's multicast set of generation `generation` completed.
    pub(super) fn multicast_sync_done(&self, b: &Arc<Binding<Rawnic>>, generation: u64, status: NdisStatus) {
        if status != NdisStatus::SUCCESS {
            kprint!(LEVEL_ERROR, "{}: setting the multicast list failed: {:#x}", b.name, status.0);
        }
        let again = {
            let mut info = b.info.lock();
            info.multicast_in_flight = false;
            core::mem::take(&mut info.multicast_dirty) || info.multicast_gen != generation
        };
        if again {
            self.update_multicast(b);
        }
    }
}
