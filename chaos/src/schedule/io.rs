//! The handle actors' actions: each user-mode thread's requests
//! (`IoAction`), and the kinds they draw from (addresses, late requests,
//! capture programs, ring operations, damage to a request or a UMEM).

use super::*;

/// The `slot` of an action (a reference, shared or mutable as `$a` is),
/// or `None` for a sleep or a shortage.
macro_rules! slot_of {
    ($a:expr) => {{
        use IoAction::*;
        match $a {
            Create { slot }
            | Open { slot, .. }
            | SendBatch { slot, .. }
            | Write { slot, .. }
            | Read { slot, .. }
            | ReadPending { slot, .. }
            | WaitEvent { slot, .. }
            | Oid { slot, .. }
            | Stats { slot }
            | List { slot }
            | Version { slot }
            | WaitBinds { slot, .. }
            | CancelAll { slot }
            | CancelIo { slot }
            | CancelAway { slot, .. }
            | RaceCancel { slot, .. }
            | Close { slot }
            | Abandon { slot }
            | CloseRacing { slot, .. }
            | Garbage { slot, .. }
            | Mutated { slot, .. }
            | Ring { slot, .. }
            | Program { slot, .. } => Some(slot),
            Sleep { .. } | AwaitSpell { .. } | AwaitUnbind { .. } | ShortOfMemory { .. } | StallAllocations { .. } => {
                None
            }
        }
    }};
}

impl IoAction {
    /// The slot it acts on (`None` for a sleep or a shortage).
    pub fn slot(&self) -> Option<u8> {
        slot_of!(self).copied()
    }

    /// The slot it acts on, to change (`None` for a sleep or a shortage).
    pub fn slot_mut(&mut self) -> Option<&mut u8> {
        slot_of!(self)
    }
}

/// Where a frame is addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Dst {
    Broadcast,
    /// The adapter's own MAC address.
    Directed,
    Multicast,
    /// Another host: only promiscuous handles see it.
    Other,
}

/// Slots 0 to 3 are a thread's own handles; slots from `SHARED_SLOTS` on
/// are handles every handle thread uses at once (one file object, several
/// threads with requests on it, as an application with a reader and a
/// writer thread has).
pub const SHARED_SLOTS: u8 = 4;
/// Slots in all: four of a thread's own, two shared.
pub const SLOTS: u8 = 6;

/// A request that reaches the driver after its handle's cleanup
/// (`IoAction::CloseRacing`), or that races a cancel
/// (`IoAction::RaceCancel`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Late {
    Read,
    WaitEvent,
    WaitBinds,
    Oid { set: bool, oid: u32 },
    Stats,
    Write { len: u16 },
    SendBatch { frames: u16 },
    Open { a: usize },
    RingWait,
    RingKick,
    RingDetach,
}

/// A user-mode thread's request. `slot` names one of the thread's handles
/// (below `SHARED_SLOTS`) or a shared one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum IoAction {
    /// CreateFile on `\\.\RawNic`, read and write, as an administrator.
    Create {
        slot: u8,
    },
    /// IOCTL_RAWNIC_OPEN on adapter `a`.
    Open {
        slot: u8,
        a: usize,
        filter: u32,
        ethertypes: Vec<u16>,
        queue_frames: u32,
        queue_bytes: u32,
        snaplen: u32,
        /// Which of this host's sends the handle receives: 0 others' (the
        /// default), 1 all (its own too), 2 none.
        #[serde(default)]
        local_sends: u8,
        /// Fail unless the adapter gives the whole filter.
        #[serde(default)]
        strict: bool,
    },
    SendBatch {
        slot: u8,
        frames: u16,
        len: u16,
        tci: Option<u16>,
        dst: Dst,
        oversize: bool,
    },
    Write {
        slot: u8,
        len: u16,
        dst: Dst,
    },
    /// A ReadFile that waits at most `wait_ms`, then is cancelled.
    Read {
        slot: u8,
        len: u32,
        wait_ms: u32,
    },
    /// A ReadFile left pending (until a cancel, close or the end).
    ReadPending {
        slot: u8,
        len: u32,
    },
    WaitEvent {
        slot: u8,
        wait_ms: u32,
    },
    Oid {
        slot: u8,
        set: bool,
        oid: u32,
        len: u16,
        wait_ms: u32,
        /// A set of OID_802_3_MULTICAST_LIST that joins the groups whose
        /// bits are set (`frames::group`; bit 0 is the group the NIC's
        /// multicast frames go to), instead of `len` bytes of made-up
        /// addresses: none leaves every group.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        groups: Option<u8>,
    },
    Stats {
        slot: u8,
    },
    List {
        slot: u8,
    },
    Version {
        slot: u8,
    },
    WaitBinds {
        slot: u8,
        wait_ms: u32,
    },
    /// IoCancelIrp on every request of the handle still pending.
    CancelAll {
        slot: u8,
    },
    /// IoCancelIrp on every request of the handle still pending, each from
    /// a thread of the simulation's own that the run does not wait for
    /// (`IoToken::cancel_on_another_thread`; the unload joins it), after
    /// aiming a stall of `stall_ms` (none when 0) at the first spin-lock
    /// acquire of the next cancel routine (`Sim::stall_lock_acquire`): the
    /// routine may still run when the handle closes, the IRP completes
    /// some other way, and the driver unloads (`gen/knobs.rs`).
    CancelAway {
        slot: u8,
        stall_ms: u32,
    },
    /// A spell of `ms` (`Sim::stall_pool_allocations_for`) over every pool
    /// allocation of `bytes` bytes, or of one of the driver's live block
    /// sizes as `NicAction::StallAllocations` picks it: the spell ends by
    /// itself, so this thread's next requests, which allocate that size,
    /// may be the ones held inside `ExAllocatePoolWithTag` while the other
    /// threads run (`gen/knobs.rs`).
    StallAllocations {
        bytes: u32,
        pick: u16,
        ms: u32,
    },
    /// `CancelIoEx(handle, NULL)`: every request in flight on the handle,
    /// whichever thread sent it (on a shared handle, another thread's may
    /// still be in the driver's dispatch routine).
    CancelIo {
        slot: u8,
    },
    /// A request and `CancelIoEx` on the handle from two threads at once
    /// (the thread runs both and waits for them): the cancel lands before,
    /// inside or after the request's dispatch routine.
    RaceCancel {
        slot: u8,
        request: Late,
        /// The cancel comes first: after the I/O manager listed the IRP
        /// and before the driver's dispatch routine runs (`Irp->Cancel`
        /// set, no cancel routine called), and no second thread.
        #[serde(default)]
        first: bool,
    },
    /// CloseHandle, with whatever requests are still pending.
    Close {
        slot: u8,
    },
    /// The owning process dies: its requests are cancelled, then the handle
    /// closes.
    Abandon {
        slot: u8,
    },
    /// CloseHandle (or the process's death, `abandon`) while other threads
    /// have requests in flight on the handle, past its handle check: they
    /// reach the driver after its IRP_MJ_CLEANUP, as Windows lets them.
    CloseRacing {
        slot: u8,
        abandon: bool,
        late: Vec<Late>,
    },
    /// A request with a random code, input and output size.
    Garbage {
        slot: u8,
        code: u32,
        input: Vec<u8>,
        out_len: u32,
    },
    /// A well-formed request of one of rawnic's IOCTLs, then damaged:
    /// bytes flipped, fields stomped with boundary values, cut short or
    /// grown. Random bytes rarely get past a message's header; these reach
    /// the checks of every field behind it.
    Mutated {
        slot: u8,
        request: Template,
        edits: Vec<Edit>,
        out_len: OutLen,
    },
    /// Something done with the rings (`rawnic_proto::ring`) of the handle
    /// in `slot`, as their user (sometimes a hostile one).
    Ring {
        slot: u8,
        op: RingOp,
    },
    /// IOCTL_RAWNIC_SET_PROGRAM (before or after the OPEN). The programs
    /// only ever narrow what a handle's filters take, or cut it (never
    /// below an Ethernet header), so every oracle of what a handle may
    /// receive stands; what it counts as taken is what the receive
    /// accounts check.
    Program {
        slot: u8,
        kind: ProgramKind,
    },
    Sleep {
        ms: u32,
    },
    /// Waits, at most `wait_ms`, until a spell of late OID returns or slow
    /// cancel routines is on (`NicAction::StallOidReturns`,
    /// `NicAction::StallCancels`), so the requests after it walk into it.
    AwaitSpell {
        wait_ms: u32,
    },
    /// Waits, at most `wait_ms`, until an unbind of adapter `a` begins
    /// (`PnpAction::Unbind`, which waits up to 200 ms for such a waiter),
    /// so the OPEN after it races the unbind (`gen/open_unbind.rs`); then,
    /// unless `stall_at` is 0, the `stall_at`th spin-lock acquire of this
    /// thread's IOCTLs from then on (the OPEN's) stalls it for 2 ms
    /// (`Sim::stall_my_lock_acquire`), so the unbind lands between two of
    /// its steps.
    AwaitUnbind {
        a: usize,
        wait_ms: u32,
        #[serde(default)]
        stall_at: u8,
    },
    /// Memory runs short for what the driver does next
    /// (`Sim::short_of_pool`): its next `skip` pool allocations go
    /// through, the `refuse` after them are refused (whichever thread
    /// makes them), and the schedule counts as one under low resources.
    /// The `filter-shortage` scene (`gen/scenes.rs`) aims them at the
    /// packet-filter and multicast sets a handle's next request makes.
    ShortOfMemory {
        skip: u8,
        refuse: u8,
    },
}

/// The program of an [`IoAction::Program`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProgramKind {
    /// No instructions: the handle's program goes.
    Clear,
    /// `ret #-1`.
    TakeAll,
    /// Reads the frame's length, and when it has a header its EtherType
    /// and bytes through X, then takes it whole.
    Reader,
    /// The longest program (4095 jumps to the next and a return).
    Longest,
    /// A jump past its end: refused.
    Refused,
    /// `ret #bytes` (at least 14): every frame, cut.
    Cut { bytes: u16 },
    /// Drops the schedule's marked frames of odd sequence number, takes
    /// every other frame whole.
    DropOdd,
    /// Takes whole the frames whose byte `at` (as on the wire, past the
    /// first 128 bytes) is odd and drops the others, and those too short
    /// to have one: a load deep in a frame that lies in many MDLs, which
    /// must follow the chain to the right MDL.
    DeepOdd { at: u16 },
    /// A random program (`randprog.rs`, `--random-programs`), written
    /// from `seed`; `refused`: spoiled so that the driver must refuse it.
    Random { seed: u32, refused: bool },
}

impl ProgramKind {
    /// Whether the driver must refuse the program.
    pub fn refused(self) -> bool {
        matches!(self, ProgramKind::Refused | ProgramKind::Random { refused: true, .. })
    }
}

/// What a [`IoAction::Ring`] does. Frames, offsets and garbage are chosen
/// when it runs, from the user's own model of its UMEM (which frames it
/// holds), so the action is plain data and replays the same way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RingOp {
    /// `IOCTL_RAWNIC_RING_ATTACH` of a UMEM of this shape (`rawnic_proto::
    /// ring::RingSetup`), spoiled by `damage`.
    Attach { frame_size: u32, frames: u32, fill: u32, rx: u32, tx: u32, completion: u32, damage: AttachDamage },
    /// Up to `frames` frames the user holds go on the fill ring, and
    /// `invalid` offsets that are not a frame's first byte among them.
    Fill { frames: u16, invalid: u8 },
    /// Up to `frames` frames of `len` bytes to `dst` go on the tx ring, and
    /// `garbage` descriptors the driver must refuse among them; then
    /// `IOCTL_RAWNIC_RING_KICK` unless `kick` is false.
    Tx { frames: u16, len: u16, dst: Dst, garbage: u8, kick: bool },
    /// `IOCTL_RAWNIC_RING_KICK` alone.
    Kick,
    /// Takes what the rx and completion rings hold.
    Poll,
    /// `IOCTL_RAWNIC_RING_WAIT` for `flags` (`wait_flags`, 0 is refused),
    /// waiting `wait_ms` then cancelling it (`None`: left pending).
    Wait { flags: u16, wait_ms: Option<u32> },
    /// `IOCTL_RAWNIC_RING_DETACH`.
    Detach,
    /// IoCancelIrp on the pending attach.
    CancelAttach,
    /// Garbage written into the UMEM (`value` seeds what).
    Scribble { at: Scribble, value: u64 },
}

/// How an attach is spoiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttachDamage {
    None,
    /// The `RingSetup`'s bytes: a flip, a field stomped or the input cut.
    Setup(Edit),
    /// The UMEM is this many pages longer (or, negative, shorter) than the
    /// layout needs.
    Region(i8),
}

/// Where a hostile user writes garbage in its UMEM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scribble {
    /// A word of the control block (the driver's counters, magic, version).
    Control,
    /// An index the driver owns (fill or tx consumer, rx or completion
    /// producer): put back at once.
    DriverIndex,
    /// An index the user owns (fill or tx producer, rx or completion
    /// consumer) set further than the ring size from the driver's: it must
    /// be refused (counted); put back at the user's next ring action.
    FarIndex,
    /// An index the user owns set within the ring size: the driver believes
    /// it (stale entries, frames overwritten): the user's own bookkeeping is
    /// void from here on, and only the driver's safety is judged.
    NearIndex,
    /// A descriptor of any ring, live or not.
    Descriptor,
}

/// The well-formed request a [`IoAction::Mutated`] starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Template {
    /// OPEN of adapter `a` (its NDIS name) with these EtherTypes.
    Open { a: usize, ethertypes: Vec<u16>, filter: u32 },
    /// SEND_BATCH of `frames` frames of `len` bytes.
    SendBatch { frames: u8, len: u16, tci: Option<u16> },
    /// QUERY_OID or SET_OID of `oid` with `len` bytes of data.
    Oid { set: bool, oid: u32, len: u16 },
    /// One of the requests whose input is the bare header: GET_VERSION,
    /// LIST_BINDINGS, WAIT_BINDS_COMPLETE, GET_STATS or WAIT_EVENT.
    Empty { code: u32 },
    /// SET_PROGRAM of a program of `kind` (`IoAction::Program`'s).
    Program { kind: ProgramKind },
    /// RING_ATTACH of a UMEM of this shape (`rawnic_proto::ring::
    /// RingSetup`): the edits spoil the setup, the output length the
    /// UMEM's (`OutLen::Right` is the layout's length; `Short` a page
    /// less, `Bytes(n)` `n` rounded up to a page).
    RingAttach { frame_size: u32, frames: u32, fill: u32, rx: u32, tx: u32, completion: u32 },
    /// RING_WAIT for `flags` (`rawnic_proto::ring::wait_flags`).
    RingWait { flags: u16 },
    /// RING_KICK.
    RingKick,
    /// RING_DETACH.
    RingDetach,
}

/// The attach request's setup a ring attach's figures make (`RingOp::Attach`,
/// `Template::RingAttach`: the same six).
pub fn ring_setup(
    frame_size: u32,
    frames: u32,
    fill: u32,
    rx: u32,
    tx: u32,
    completion: u32,
) -> rawnic_proto::ring::RingSetup {
    rawnic_proto::ring::RingSetup { frame_size, frame_count: frames, fill, rx, tx, completion }
}

impl Template {
    /// A request of the rings or a capture program: one the ring model and
    /// the program oracle must hear of when the driver takes it.
    pub fn of_rings_or_programs(&self) -> bool {
        matches!(
            self,
            Template::Program { .. }
                | Template::RingAttach { .. }
                | Template::RingWait { .. }
                | Template::RingKick
                | Template::RingDetach
        )
    }
}

/// One change to a request's bytes; positions wrap at its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Edit {
    /// `byte[at] ^= xor`.
    Flip { at: u32, xor: u8 },
    /// The little-endian `u32` at `at` (rounded down to 4) becomes `value`.
    Stomp { at: u32, value: u32 },
    /// Keeps the first `to` bytes.
    Truncate { to: u32 },
    /// Appends `by` bytes of `fill`.
    Extend { by: u16, fill: u8 },
}

/// The output buffer of a [`IoAction::Mutated`] request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutLen {
    /// What the request's reply needs.
    Right,
    /// One byte less than that.
    Short,
    /// This many bytes.
    Bytes(u32),
}
