//! Driving NDIS and the virtual adapters: PnP events (pause, restart,
//! unbind, bind, link, power, uninstall), receive indications, send and
//! OID completion policies, and what each adapter saw.

use super::{AdapterId, Outstanding, Sim};
use crate::adapter::{CompletionPolicy, Frame};
use crate::ndis::{self, Adapter, BindingState, InjectOpts, RestartSpec, SimError};
use crate::verifier::lock;
use std::sync::Arc;
use std::sync::atomic::Ordering;

impl Sim {
    pub(super) fn adapter(&self, a: AdapterId) -> Result<Arc<Adapter>, SimError> {
        self.k.ndis.adapters().get(a.0).cloned().ok_or_else(|| SimError::Other(format!("no adapter {}", a.0)))
    }

    /// The adapter's NDIS name (`\\DEVICE\\{GUID}`), which handles open.
    pub fn adapter_ndis_name(&self, a: AdapterId) -> Option<String> {
        self.k.ndis.adapters().get(a.0).map(|a| String::from_utf16_lossy(&a.ndis_name[..a.ndis_name.len() - 1]))
    }

    /// The adapter's current MAC address.
    pub fn adapter_mac(&self, a: AdapterId) -> Option<[u8; 6]> {
        self.k.ndis.adapters().get(a.0).map(|a| lock(&a.model).mac)
    }

    /// What `a`'s miniport answers a query of `oid` with, for the OIDs
    /// whose answer never changes while the simulation runs:
    /// OID_GEN_SUPPORTED_LIST, OID_GEN_VENDOR_ID,
    /// OID_GEN_VENDOR_DESCRIPTION, OID_802_3_PERMANENT_ADDRESS and
    /// OID_802_3_CURRENT_ADDRESS (the bytes it writes, before any cut to
    /// the request's buffer). `None` for the others (their answers follow
    /// the adapter's state) and for no such adapter.
    pub fn oid_answer(&self, a: AdapterId, oid: u32) -> Option<Vec<u8>> {
        let a = self.adapter(a).ok()?;
        let m = lock(&a.model).clone();
        ndis::static_answer(&a, &m, oid)
    }

    /// The adapter named `name`.
    pub fn adapter_id(&self, name: &str) -> Option<AdapterId> {
        self.k.ndis.adapters().iter().position(|a| a.name == name).map(AdapterId)
    }

    /// Names of the adapters, in order.
    pub fn adapter_names(&self) -> Vec<String> {
        self.k.ndis.adapters().iter().map(|a| a.name.clone()).collect()
    }

    /// What the user's open at `NdisRegisterProtocolDriver` got
    /// (`SimBuilder::open_during_registration`), if it was tried.
    pub fn open_in_registration(&self) -> Option<ndis_sys::NTSTATUS> {
        lock(&self.k.ndis.registration).opened
    }

    /// The protocol name the driver registered.
    pub fn protocol_name(&self) -> Option<String> {
        self.k.ndis.protocol().map(|p| p.name.clone())
    }

    /// The binding's state as NDIS sees it.
    pub fn binding_state(&self, a: AdapterId) -> BindingState {
        self.k
            .ndis
            .adapters()
            .get(a.0)
            .and_then(|a| lock(&a.binding).as_ref().map(|b| b.state()))
            .unwrap_or(BindingState::Unbound)
    }

    /// Whether NDIS indicated BindsComplete.
    pub fn binds_completed(&self) -> bool {
        self.k.ndis.binds_completed.load(Ordering::Acquire)
    }

    /// What NDIS does some time after a protocol registers (see
    /// `SimBuilder::defer_binds`): binds every adapter not bound yet,
    /// restarts each binding to Running, and indicates BindsComplete. An
    /// adapter whose bind the driver declines stays unbound.
    pub fn bind_all(&self) -> Result<(), SimError> {
        let _e = self.enter();
        if self.k.ndis.protocol().is_none() {
            return Err(SimError::State("no protocol is registered".into()));
        }
        if self.binds_completed() {
            return Err(SimError::State("NDIS already indicated BindsComplete".into()));
        }
        ndis::bind_all_and_start(&self.k);
        Ok(())
    }

    pub fn pause(&self, a: AdapterId) -> Result<(), SimError> {
        let _e = self.enter();
        let a = self.adapter(a)?;
        let _g = ndis::PnpGate::take(&self.k, &a);
        ndis::pause(&self.k, &a)
    }

    /// Restarts a Paused binding; one whose adapter is in a low-power
    /// state (`set_power`) is brought back to D0 with it, as NDIS restarts
    /// bindings only in D0: the restart, then `NetEventSetPower` for D0.
    pub fn restart(&self, a: AdapterId, spec: &RestartSpec) -> Result<(), SimError> {
        let _e = self.enter();
        let a = self.adapter(a)?;
        let _g = ndis::PnpGate::take(&self.k, &a);
        ndis::restart_in_d0(&self.k, &a, spec)
    }

    /// Pauses (if Running) and unbinds.
    pub fn unbind(&self, a: AdapterId) -> Result<(), SimError> {
        let _e = self.enter();
        let a = self.adapter(a)?;
        let _g = ndis::PnpGate::take(&self.k, &a);
        ndis::unbind(&self.k, &a)
    }

    /// Binds (the binding is then Paused; `restart` makes it Running).
    pub fn bind(&self, a: AdapterId) -> Result<(), SimError> {
        let _e = self.enter();
        let a = self.adapter(a)?;
        let _g = ndis::PnpGate::take(&self.k, &a);
        ndis::bind(&self.k, &a)
    }

    /// Whether NDIS owes `a` a bind: the driver declined its last one, and
    /// called `NdisReEnumerateProtocolBindings` since.
    pub fn reenumeration_owed(&self, a: AdapterId) -> Result<bool, SimError> {
        Ok(ndis::owed(&*self.adapter(a)?))
    }

    /// What NDIS does some time after `NdisReEnumerateProtocolBindings`,
    /// for `a`: if it owes `a` a bind, binds it and restarts the binding
    /// to Running. `Ok(true)` when `a` is bound now; `Ok(false)` when
    /// nothing was owed or the driver declined again. Call it from the
    /// thread that runs `a`'s other PnP actions.
    pub fn serve_reenumeration(&self, a: AdapterId) -> Result<bool, SimError> {
        let _e = self.enter();
        let a = self.adapter(a)?;
        let _g = ndis::PnpGate::take(&self.k, &a);
        ndis::serve(&self.k, &a)
    }

    /// `ProtocolBindAdapterEx` calls begun so far (of every adapter).
    pub fn binds_begun(&self) -> u64 {
        self.k.ndis.stats.binds_begun.load(Ordering::Acquire)
    }

    /// `NdisReEnumerateProtocolBindings` calls the driver made (where
    /// allowed).
    pub fn reenumerations(&self) -> u64 {
        self.k.ndis.stats.reenumerations.load(Ordering::Relaxed)
    }

    /// Link up or down: sets the model and indicates `NDIS_STATUS_LINK_STATE`.
    pub fn link(&self, a: AdapterId, up: bool) -> Result<(), SimError> {
        let _e = self.enter();
        ndis::link(&self.k, &*self.adapter(a)?, up)
    }

    /// The adapter's link state (the last one indicated), once the status
    /// indications its `bind-status` option makes are done.
    pub fn adapter_link(&self, a: AdapterId) -> Result<bool, SimError> {
        let _e = self.enter();
        Ok(ndis::link_state(&self.k, &*self.adapter(a)?))
    }

    /// Status indications that reached a binding of the adapter before its
    /// bind completed (`bind-status=N`, or `link` and `indicate_status`
    /// during a bind).
    pub fn statuses_during_bind(&self, a: AdapterId) -> u64 {
        self.k.ndis.adapters().get(a.0).map_or(0, |a| a.statuses_in_bind.load(Ordering::Acquire))
    }

    /// A status indication of `code` with `buffer` (NULL when empty) to
    /// `a`'s binding, at DISPATCH_LEVEL or (`passive`) PASSIVE_LEVEL: any
    /// code, and any buffer, as a miniport may indicate them.
    pub fn indicate_status(&self, a: AdapterId, code: i32, buffer: &[u8], passive: bool) -> Result<(), SimError> {
        let _e = self.enter();
        let irql = if passive { crate::kernel::PASSIVE_LEVEL } else { crate::kernel::DISPATCH_LEVEL };
        ndis::indicate_status(&self.k, &*self.adapter(a)?, code, buffer, irql)
    }

    /// `NetEventSetPower` with a `NET_DEVICE_POWER_STATE` (1 = D0, 4 = D3).
    pub fn set_power(&self, a: AdapterId, state: u32) -> Result<(), SimError> {
        let _e = self.enter();
        let a = self.adapter(a)?;
        let _g = ndis::PnpGate::take(&self.k, &a);
        ndis::set_power(&self.k, &a, state)
    }

    /// Holds the next returns of `a` to D0 (`set_power` for D0, or a
    /// `restart` of an adapter in low power) between the restart, which
    /// comes first and has completed, and the `NetEventSetPower` for D0
    /// that follows it, until `release_set_power_d0` (or the watchdog's
    /// time): the binding runs again, and the driver has not been told
    /// of D0 yet. The call that brings `a` back waits meanwhile, so make
    /// it on another thread.
    pub fn hold_set_power_d0(&self, a: AdapterId) -> Result<(), SimError> {
        self.adapter(a)?.d0_hold.store(true, Ordering::Release);
        Ok(())
    }

    /// Lets the held `NetEventSetPower` for D0 of `a` be delivered, and
    /// the next ones through.
    pub fn release_set_power_d0(&self, a: AdapterId) -> Result<(), SimError> {
        self.adapter(a)?.d0_hold.store(false, Ordering::Release);
        Ok(())
    }

    /// Returns of `a` to D0 held before their `NetEventSetPower` now
    /// (`hold_set_power_d0`).
    pub fn held_set_power_d0(&self, a: AdapterId) -> u64 {
        self.adapter(a).map(|a| a.d0_held.load(Ordering::Acquire)).unwrap_or(0)
    }

    /// Another PnP event (`ndisim::OTHER_PNP_EVENTS`: remove queries,
    /// reconfigure, bind list, capabilities, port (de)activation, a power
    /// query) with `buffer` (NULL when empty), to `a`'s binding or, with
    /// None, to the protocol; returns the driver's final status.
    pub fn pnp_event(&self, a: Option<AdapterId>, code: u32, buffer: &[u8]) -> Result<i32, SimError> {
        let _e = self.enter();
        let a = a.map(|a| self.adapter(a)).transpose()?;
        let _g = a.as_ref().map(|a| ndis::PnpGate::take(&self.k, a));
        ndis::other_event(&self.k, a.as_ref(), code, buffer)
    }

    /// `ProtocolUninstall`, as NDIS calls it before the protocol is
    /// uninstalled (the bindings stay until they are unbound).
    pub fn uninstall(&self) -> Result<(), SimError> {
        let _e = self.enter();
        crate::ndis::uninstall(&self.k)
    }

    /// Indicates `frames` as received on `a`, on this thread.
    pub fn inject(&self, a: AdapterId, frames: &[&[u8]], opts: &InjectOpts) -> Result<usize, SimError> {
        let _e = self.enter();
        ndis::indicate(&self.k, &*self.adapter(a)?, frames, opts)
    }

    /// Frames that reached `a` and were not indicated to its binding:
    /// (dropped: no binding, a binding that indicates nothing, no receive
    /// buffer free; filtered: the binding's packet filter, multicast list
    /// or MAC did not accept them, as a NIC's filter keeps them out).
    pub fn adapter_rx_missed(&self, a: AdapterId) -> Option<(u64, u64)> {
        let a = self.adapter(a).ok()?;
        Some((a.counters.rx_dropped.load(Ordering::Acquire), a.counters.rx_filtered.load(Ordering::Acquire)))
    }

    /// The sends of `a`'s binding (None when unbound): (frames given back
    /// with NDIS_STATUS_SUCCESS, frames given back with another status,
    /// NBLs still in flight or in a completion handler that has not
    /// returned), since the bind. Only when the last is 0 has the driver
    /// heard of every completion.
    pub fn binding_sends(&self, a: AdapterId) -> Option<(u64, u64, u64)> {
        let b = lock(&self.adapter(a).ok()?.binding).clone()?;
        // `sends` first: a completion counts itself in `completing` before
        // it leaves `sends`, and leaves `completing` once its handler
        // returned, so the sum read so is never 0 in between.
        let sends = b.sends.load(Ordering::Acquire);
        let completing = b.completing.load(Ordering::Acquire);
        Some((b.sent_ok.load(Ordering::Acquire), b.sent_failed.load(Ordering::Acquire), sends + completing))
    }

    /// Waits until the adapter's receive thread indicated everything queued
    /// (loopback and pair frames), and the status indications its
    /// `bind-status` option makes are done (they change the link state).
    pub fn settle(&self, a: AdapterId) -> bool {
        let _e = self.enter();
        match self.adapter(a) {
            Ok(a) => {
                ndis::settle_statuses(&self.k, &a);
                a.rx.wait_idle(self.k.config.watchdog)
            }
            Err(_) => false,
        }
    }

    /// Sets how the adapter completes sends.
    /// Leaving a batching policy (for one that neither batches nor holds)
    /// completes the batch.
    pub fn set_completion(&self, a: AdapterId, p: CompletionPolicy) -> Result<(), SimError> {
        let _e = self.enter();
        let ad = self.adapter(a)?;
        ndis::set_completion(&self.k, &ad, p);
        Ok(())
    }

    /// How the adapter completes sends now.
    pub fn completion_policy(&self, a: AdapterId) -> Option<CompletionPolicy> {
        self.adapter(a).ok().map(|ad| *lock(&ad.policy))
    }

    /// Holds send completions until `release_sends` (the policy stays
    /// `Held` until `set_completion`), or until the unload's pause of the
    /// binding has begun (`ndis::end_test_holds`).
    pub fn hold_sends(&self, a: AdapterId) -> Result<(), SimError> {
        self.set_completion(a, CompletionPolicy::Held)
    }

    /// Completes held sends (all, or the first `n`), on this thread at
    /// DISPATCH_LEVEL. Returns how many.
    pub fn release_sends(&self, a: AdapterId, n: Option<usize>) -> Result<usize, SimError> {
        let _e = self.enter();
        let ad = self.adapter(a)?;
        Ok(ndis::release_sends(&self.k, &ad, n))
    }

    /// Sends the adapter holds back now.
    pub fn held_sends(&self, a: AdapterId) -> usize {
        self.adapter(a).map(|a| lock(&a.held).len()).unwrap_or(0)
    }

    /// Pends every OID request until `release_oids`, or until the
    /// unload's pause of the binding has begun (`ndis::end_test_holds`).
    pub fn hold_oids(&self, a: AdapterId) -> Result<(), SimError> {
        self.adapter(a)?.oid_hold.store(true, Ordering::Release);
        Ok(())
    }

    /// A query that pends at `a` (held, or completed later) is answered
    /// from the adapter's state when it arrives, as a miniport that fills
    /// the answer at once and completes the request later does, rather
    /// than when it completes: an indication made while it pends is newer
    /// than its answer. The answer is written into the driver's buffer
    /// only at the completion all the same.
    pub fn answer_queries_on_arrival(&self, a: AdapterId, on: bool) -> Result<(), SimError> {
        self.adapter(a)?.oid_answer_on_arrival.store(on, Ordering::Release);
        Ok(())
    }

    /// Stalls every `NdisOidRequest` call on `a` on entry, inside the call
    /// and before NDIS looks at the request, until `release_oid_calls` (or
    /// the watchdog's time): the driver's thread stays in the call, as one
    /// NDIS or a filter driver keeps a while before it gets to it.
    /// Requests that pend at the miniport are `hold_oids`'.
    pub fn stall_oid_calls(&self, a: AdapterId) -> Result<(), SimError> {
        self.adapter(a)?.oid_stall.store(true, Ordering::Release);
        Ok(())
    }

    /// Lets the stalled `NdisOidRequest` calls on `a` go on (each returns
    /// on its own thread), and the next ones through.
    pub fn release_oid_calls(&self, a: AdapterId) -> Result<(), SimError> {
        self.adapter(a)?.oid_stall.store(false, Ordering::Release);
        Ok(())
    }

    /// `NdisOidRequest` calls on `a` stalled now.
    pub fn stalled_oid_calls(&self, a: AdapterId) -> u64 {
        self.adapter(a).map(|a| a.oid_stalled.load(Ordering::Acquire)).unwrap_or(0)
    }

    /// Stalls every `NdisSendNetBufferLists` call on `a` on entry, inside
    /// the call and before NDIS walks the chain, until
    /// `release_send_calls` (or the watchdog's time): the driver's thread
    /// stays in the call (holding what it holds across it, the binding's
    /// send gate among them) while others run. Sends the miniport holds
    /// once it has them are `hold_sends`'.
    pub fn stall_send_calls(&self, a: AdapterId) -> Result<(), SimError> {
        self.adapter(a)?.send_stall.store(true, Ordering::Release);
        Ok(())
    }

    /// Lets the stalled `NdisSendNetBufferLists` calls on `a` go on, and
    /// the next ones through.
    pub fn release_send_calls(&self, a: AdapterId) -> Result<(), SimError> {
        self.adapter(a)?.send_stall.store(false, Ordering::Release);
        Ok(())
    }

    /// `NdisSendNetBufferLists` calls on `a` stalled now.
    pub fn stalled_send_calls(&self, a: AdapterId) -> u64 {
        self.adapter(a).map(|a| a.send_stalled.load(Ordering::Acquire)).unwrap_or(0)
    }

    /// Stalls every `NdisOidRequest` call on `a` at its end, after NDIS
    /// answered it (and after the completion of a request completed inside
    /// the call), until `release_oid_returns` (or the watchdog's time): the
    /// driver's thread is still inside the call when everything it asked
    /// for is done.
    pub fn stall_oid_returns(&self, a: AdapterId) -> Result<(), SimError> {
        self.adapter(a)?.oid_stall_return.store(true, Ordering::Release);
        Ok(())
    }

    /// Lets the `NdisOidRequest` calls stalled at their end return.
    pub fn release_oid_returns(&self, a: AdapterId) -> Result<(), SimError> {
        self.adapter(a)?.oid_stall_return.store(false, Ordering::Release);
        Ok(())
    }

    /// `NdisOidRequest` calls on `a` stalled at their end now.
    pub fn stalled_oid_returns(&self, a: AdapterId) -> u64 {
        self.adapter(a).map(|a| a.oid_stalled_return.load(Ordering::Acquire)).unwrap_or(0)
    }

    /// The PnP events of `a`'s binding that the driver pended and has not
    /// completed yet (their `NET_PNP_EVENT_CODE`s, in order); empty when
    /// unbound.
    pub fn pnp_pending(&self, a: AdapterId) -> Vec<u32> {
        let Ok(ad) = self.adapter(a) else { return Vec::new() };
        let Some(b) = lock(&ad.binding).clone() else { return Vec::new() };
        self.k.ndis.pnp_pending(Arc::as_ptr(&b) as usize)
    }

    /// Completes held OID requests; returns how many.
    pub fn release_oids(&self, a: AdapterId) -> Result<usize, SimError> {
        let _e = self.enter();
        let ad = self.adapter(a)?;
        Ok(ndis::release_oids(&self.k, &ad))
    }

    /// The OID requests pending at `a` (held, or not completed yet), in
    /// the order the driver made them, with each set's value.
    pub fn pending_oids(&self, a: AdapterId) -> Vec<ndis::HeldOid> {
        self.adapter(a).map(|ad| ndis::pending_oids(&self.k, &ad)).unwrap_or_default()
    }

    /// Completes one pending request of `a` (`HeldOid::seq`), whatever the
    /// order it was made in: with the adapter's answer, or failed with
    /// `fail` (the adapter's state left as it was). Held requests stay
    /// held. False when no such request is pending.
    pub fn complete_oid(&self, a: AdapterId, seq: u64, fail: Option<ndis_sys::NDIS_STATUS>) -> Result<bool, SimError> {
        let _e = self.enter();
        let ad = self.adapter(a)?;
        Ok(ndis::complete_oid(&self.k, &ad, seq, fail))
    }

    /// Every OID request the driver made on `a`, in order: (request type,
    /// OID). `clear` empties the log after reading it.
    pub fn oid_log(&self, a: AdapterId, clear: bool) -> Vec<(u32, u32)> {
        self.oid_buffers(a, clear).into_iter().map(|(kind, oid, _, _)| (kind, oid)).collect()
    }

    /// Every PnP event delivered to `a`'s binding, in order: (event code,
    /// the pause reason for a pause, the device power state for a set
    /// power, else 0). `clear` empties the log after reading it.
    pub fn pnp_log(&self, a: AdapterId, clear: bool) -> Vec<(u32, u32)> {
        let ad = self.k.ndis.adapter(a.0).clone();
        let mut log = ad.pnp_log.lock().unwrap_or_else(|e| e.into_inner());
        if clear { std::mem::take(&mut *log) } else { log.clone() }
    }

    /// As `oid_log`, with each request's InformationBufferLength and whether
    /// its InformationBuffer was NULL: (request type, OID, length, NULL).
    pub fn oid_buffers(&self, a: AdapterId, clear: bool) -> Vec<(u32, u32, u32, bool)> {
        let ad = self.k.ndis.adapter(a.0).clone();
        let mut log = ad.oid_log.lock().unwrap_or_else(|e| e.into_inner());
        if clear { std::mem::take(&mut *log) } else { log.clone() }
    }

    /// How many of the sets `a`'s miniport answered (its value read, its
    /// status given; a request aborted or failed by NDIS before the
    /// miniport is not one) `matches` takes.
    pub fn count_set_answers(&self, a: AdapterId, matches: impl Fn(&ndis::SetAnswer) -> bool) -> usize {
        let ad = self.k.ndis.adapter(a.0).clone();
        let log = ad.set_answers.lock().unwrap_or_else(|e| e.into_inner());
        log.iter().filter(|e| matches(e)).count()
    }

    /// Makes `a` answer `oid` with `NDIS_STATUS_FAILURE` (`fail`), or
    /// normally again.
    pub fn fail_oid(&self, a: AdapterId, oid: u32, fail: bool) {
        let ad = self.k.ndis.adapter(a.0).clone();
        let mut list = ad.failing_oids.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|&o| o != oid);
        if fail {
            list.push(oid);
        }
    }

    /// The OIDs `a` fails with `NDIS_STATUS_FAILURE` now (its spec's
    /// `oid-fail`, and `fail_oid`'s).
    pub fn failing_oids(&self, a: AdapterId) -> Vec<u32> {
        let ad = self.k.ndis.adapter(a.0).clone();
        ad.failing_oids.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `a`'s receive buffers (`AdapterSpec::rx_buffers`): how many are out
    /// now (indicated and not yet given back), and how many frames found
    /// none free and were dropped.
    pub fn receive_buffers(&self, a: AdapterId) -> (u64, u64) {
        let ad = self.k.ndis.adapter(a.0).clone();
        (ad.receive_buffers_out(), ad.counters.rx_no_buffer.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Makes `a` answer the next `times` requests for `oid` with
    /// `NDIS_STATUS_RESOURCES` (a shortage in the miniport that passes);
    /// 0 stops.
    pub fn fail_oid_for_a_while(&self, a: AdapterId, oid: u32, times: u64) {
        let ad = self.k.ndis.adapter(a.0).clone();
        let mut list = ad.busy_oids.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|&(o, _)| o != oid);
        if times > 0 {
            list.push((oid, times));
        }
    }

    /// Frames the driver sent on `a` (when capture is on), in order, as the
    /// adapter took them: `tci` is the NBL's 802.1Q info when the adapter
    /// advertises 802.1Q, else `None`; `Frame::wire` is the frame on the
    /// wire.
    pub fn captured(&self, a: AdapterId) -> Vec<Frame> {
        self.adapter(a).map(|a| lock(&a.captured).clone()).unwrap_or_default()
    }

    /// As `captured`, taking them: the next call returns only frames sent
    /// after this one.
    pub fn take_captured(&self, a: AdapterId) -> Vec<Frame> {
        self.adapter(a).map(|a| std::mem::take(&mut *lock(&a.captured))).unwrap_or_default()
    }

    /// The frames of the driver's sends on `a` that NDIS or the miniport
    /// failed (given back with a status other than success) while `a`
    /// captured, as the driver's NBLs held them, taken: with `captured`,
    /// every frame the driver gave NDIS.
    pub fn take_failed_sends(&self, a: AdapterId) -> Vec<Vec<u8>> {
        self.adapter(a).map(|a| std::mem::take(&mut *lock(&a.failed_sends))).unwrap_or_default()
    }

    /// Turns the adapter's 802.1Q in hardware on or off (`vlan=`), at once:
    /// its sends and receives follow now; the driver learns of it from the
    /// MAC options of the next bind or restart (or `OID_GEN_MAC_OPTIONS`).
    pub fn set_vlan(&self, a: AdapterId, on: bool) {
        if let Ok(a) = self.adapter(a) {
            a.vlan.store(on, Ordering::Release);
        }
    }

    /// Turns capturing of sent frames on or off.
    pub fn set_capture(&self, a: AdapterId, on: bool) {
        if let Ok(a) = self.adapter(a) {
            a.capture.store(on, Ordering::Release);
        }
    }

    /// Frames the adapter indicated to the driver so far.
    pub fn received_frames(&self, a: AdapterId) -> u64 {
        self.adapter(a).map(|a| a.counters.rx_frames.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// Frames the driver sent on the adapter so far.
    pub fn sent_frames(&self, a: AdapterId) -> u64 {
        self.adapter(a).map(|a| a.counters.tx_frames.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// Frames the adapter failed to put on its wire (a failed TAP write),
    /// as `OID_GEN_XMIT_ERROR` reports them.
    pub fn transmit_errors(&self, a: AdapterId) -> u64 {
        self.adapter(a).map(|a| a.counters.tx_errors.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// Send NBLs whose 802.1Q info the adapter ignored because it does not
    /// advertise 802.1Q (`vlan=off`).
    pub fn tags_ignored(&self, a: AdapterId) -> u64 {
        self.adapter(a).map(|a| a.counters.tx_tags_ignored.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// NBLs and OIDs outstanding on the adapter's binding.
    pub fn outstanding(&self, a: AdapterId) -> Outstanding {
        self.adapter(a)
            .map(|a| {
                let (s, r, o) = ndis::outstanding(&a);
                Outstanding { sends_in_flight: s, receives_retained: r, oids_pending: o }
            })
            .unwrap_or_default()
    }

    /// Sets of `a`'s multicast list that failed, for any reason (an
    /// injected failure, a list too long or of a bad length).
    pub fn multicast_sets_failed(&self, a: AdapterId) -> u64 {
        self.adapter(a).map_or(0, |a| a.multicast_sets_failed.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Sets of `a`'s packet filter that failed other than for want of
    /// resources or by a cancel: an injected failure (`fail_oid`,
    /// `oid-fail=`, `complete_oid` with a status), bits the adapter does
    /// not support, a buffer of the wrong length. A protocol that says a
    /// set failed when none of these came is wrong.
    pub fn filter_sets_failed(&self, a: AdapterId) -> u64 {
        self.adapter(a).map_or(0, |a| a.filter_sets_failed.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// NBLs NDIS looped back from a send (`NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET`)
    /// that the driver kept past its receive handler, on `a`, in all. NDIS
    /// completes the send they came from only once they are back.
    pub fn loopbacks_kept(&self, a: AdapterId) -> u64 {
        self.adapter(a).map_or(0, |a| a.loopbacks_kept.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// The packet filters `a`'s miniport advertises now: its spec's
    /// `filters=` until a restart changed them
    /// (`RestartSpec::supported_filters`).
    pub fn adapter_supported_filters(&self, a: AdapterId) -> Option<u32> {
        self.adapter(a).ok().map(|a| lock(&a.model).supported_filters)
    }

    /// Whether `a`'s packet filter, address and multicast list let `frame`
    /// through now, as an indication of it would (`Sim::inject`
    /// indicates only those); false when there is no such adapter.
    pub fn adapter_takes(&self, a: AdapterId, frame: &[u8]) -> bool {
        self.adapter(a).ok().is_some_and(|a| {
            let m = lock(&a.model);
            ndis::accepts(m.packet_filter, &m.mac, &m.multicast, frame)
        })
    }

    /// The model's link state, packet filter and multicast list.
    pub fn adapter_filter(&self, a: AdapterId) -> Option<(bool, u32, Vec<[u8; 6]>)> {
        self.adapter(a).ok().map(|a| {
            let m = lock(&a.model);
            (m.link_up, m.packet_filter, m.multicast.clone())
        })
    }
}
