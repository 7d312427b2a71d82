//! The emulated I/O manager: the driver object, device objects and
//! symbolic links, file objects, IRPs with a real `IO_STACK_LOCATION`
//! (CREATE, CLEANUP, CLOSE, READ, WRITE, DEVICE_CONTROL with BUFFERED,
//! DIRECT and NEITHER buffers), completion, cancellation under the cancel
//! spin lock, work items, kernel handles and the device's security
//! descriptor, enforced on CREATE.

use crate::kernel::{self, call_driver, Kernel, DISPATCH_LEVEL, PASSIVE_LEVEL};
use crate::nbl;
use crate::verifier::{lock, Rule, Violation};
use ndis_sys::*;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub(crate) const SL_PENDING_RETURNED: u8 = 0x01;
const IRP_BUFFERED_IO: u32 = 0x10;
const IRP_INPUT_OPERATION: u32 = 0x40;
const DO_EXCLUSIVE: u32 = 0x08;
const FILE_OPEN: u32 = 1;
const FILE_READ_DATA: u32 = 0x0001;
const FILE_WRITE_DATA: u32 = 0x0002;

/// Who opens the device: the token's groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// A process of uid 0: SYSTEM, Administrators and the everyday groups.
    Admin,
    /// Anyone else: Everyone, Users, Authenticated Users.
    User,
}

/// The tokens ndisim hands out, by identity (their addresses are the
/// tokens; `SeTokenIsAdmin` knows them).
static ADMIN_TOKEN: u64 = 0x4E4B_4F54_4E49_4D44; // "DMINTOKN"
static USER_TOKEN: u64 = 0x4E4B_4F54_5245_5355; // "USERTOKN"

impl Identity {
    /// The primary token of a process of this identity.
    pub(crate) fn token(self) -> PVOID {
        let t: &u64 = if self == Identity::Admin { &ADMIN_TOKEN } else { &USER_TOKEN };
        (t as *const u64).cast_mut().cast()
    }

    /// The identity a token stands for.
    pub(crate) fn of_token(t: PVOID) -> Option<Identity> {
        if std::ptr::eq(t.cast::<u64>(), &ADMIN_TOKEN) {
            Some(Identity::Admin)
        } else if std::ptr::eq(t.cast::<u64>(), &USER_TOKEN) {
            Some(Identity::User)
        } else {
            None
        }
    }

    fn sids(self) -> Vec<Vec<u8>> {
        let mut v = vec![sid(1, &[0]), sid(5, &[11]), sid(5, &[32, 545])];
        if self == Identity::Admin {
            v.push(sid(5, &[18]));
            v.push(sid(5, &[32, 544]));
        }
        v
    }
}

/// A binary SID: revision 1, authority, sub-authorities.
pub fn sid(authority: u8, subs: &[u32]) -> Vec<u8> {
    let mut v = vec![1, subs.len() as u8, 0, 0, 0, 0, 0, authority];
    for s in subs {
        v.extend_from_slice(&s.to_le_bytes());
    }
    v
}

/// `S-1-5-32-544` for a binary SID.
pub fn sid_string(s: &[u8]) -> String {
    if s.len() < 8 {
        return "S-?".into();
    }
    let auth = u64::from_be_bytes([0, 0, s[2], s[3], s[4], s[5], s[6], s[7]]);
    let mut out = format!("S-{}-{auth}", s[0]);
    for i in 0..s[1] as usize {
        if let Some(b) = s.get(8 + 4 * i..12 + 4 * i) {
            out.push_str(&format!("-{}", u32::from_le_bytes(b.try_into().unwrap())));
        }
    }
    out
}

/// One ACE of a device's DACL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ace {
    pub allow: bool,
    pub mask: u32,
    pub sid: Vec<u8>,
}

/// The file generic mapping.
fn map_generic(m: u32) -> u32 {
    let mut out = m & 0x0FFF_FFFF;
    if m & 0x8000_0000 != 0 {
        out |= 0x0012_0089;
    }
    if m & 0x4000_0000 != 0 {
        out |= 0x0012_0116;
    }
    if m & 0x2000_0000 != 0 {
        out |= 0x0012_00A0;
    }
    if m & 0x1000_0000 != 0 {
        out |= 0x001F_01FF;
    }
    out
}

/// Access check of `desired` against a DACL (None: a NULL DACL, all
/// access). Returns the granted access, or None when denied.
fn access_check(dacl: &Option<Vec<Ace>>, who: Identity, desired: u32) -> Option<u32> {
    let want = map_generic(desired);
    if want == 0 {
        // SeAccessCheck grants nothing for no desired access: the open fails.
        return None;
    }
    let Some(aces) = dacl else { return Some(want) };
    let sids = who.sids();
    let mut granted = 0u32;
    for a in aces {
        if !sids.contains(&a.sid) {
            continue;
        }
        let m = map_generic(a.mask);
        if a.allow {
            granted |= m;
        } else if m & want & !granted != 0 {
            return None;
        }
    }
    (granted & want == want).then_some(want)
}

/// What an I/O request returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoResult {
    pub status: NTSTATUS,
    pub information: usize,
    /// What the driver wrote for the caller (output buffer up to
    /// `information` for buffered and direct output, the read data).
    pub data: Vec<u8>,
}

/// Called once with an IRP's result when it completes.
pub(crate) type Notify = Box<dyn FnOnce(&IoResult) + Send>;

/// Where a completion goes.
pub(crate) struct Waiter {
    result: Mutex<Option<IoResult>>,
    cv: Condvar,
    notify: Mutex<Option<Notify>>,
}

impl Waiter {
    pub(crate) fn new(notify: Option<Notify>) -> Arc<Waiter> {
        Arc::new(Waiter { result: Mutex::new(None), cv: Condvar::new(), notify: Mutex::new(notify) })
    }

    fn complete(&self, r: IoResult) {
        if let Some(f) = lock(&self.notify).take() {
            f(&r);
        }
        *lock(&self.result) = Some(r);
        self.cv.notify_all();
    }

    pub(crate) fn wait(&self, timeout: Option<Duration>) -> Option<IoResult> {
        self.wait_for(timeout, |r| r.clone())
    }

    /// Like `wait`, but moves the result out (for the one waiter of a
    /// synchronous request).
    pub(crate) fn wait_take(&self, timeout: Option<Duration>) -> Option<IoResult> {
        self.wait_for(timeout, Option::take)
    }

    /// Waits up to `timeout` (forever with `None`) until `get` finds the
    /// result in its slot.
    fn wait_for(
        &self,
        timeout: Option<Duration>,
        mut get: impl FnMut(&mut Option<IoResult>) -> Option<IoResult>,
    ) -> Option<IoResult> {
        if let Some(k) = kernel::kernel().filter(|k| k.sched_here().is_some()) {
            let mut out = None;
            let cond = || {
                let mut g = lock(&self.result);
                out = get(&mut g);
                out.is_some()
            };
            match timeout {
                Some(t) => {
                    k.wait_until(t, "an IRP's completion", cond);
                }
                None => k.wait_forever("an IRP's completion", cond, || {}),
            }
            return out;
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut g = lock(&self.result);
        loop {
            if let Some(r) = get(&mut g) {
                return Some(r);
            }
            match deadline {
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return None;
                    }
                    g = self.cv.wait_timeout(g, d - now).unwrap_or_else(|e| e.into_inner()).0;
                }
                None => g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner()),
            }
        }
    }

    pub(crate) fn try_result(&self) -> Option<IoResult> {
        lock(&self.result).clone()
    }
}

#[repr(C)]
struct IrpBlock {
    irp: IRP,
    stack: IO_STACK_LOCATION,
    sec: IO_SECURITY_CONTEXT,
    access: ACCESS_STATE,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Buffered,
    Direct,
    Neither,
}

struct IrpRec {
    block: *mut IrpBlock,
    file: usize,
    major: u8,
    completed: bool,
    dispatch_status: Option<NTSTATUS>,
    completion: Option<(NTSTATUS, usize)>,
    waiter: Arc<Waiter>,
    /// Output size the caller gave.
    out_len: usize,
    /// Input bytes at the start of a METHOD_BUFFERED system buffer.
    in_len: usize,
    method: Method,
    system_buffer: Vec<u8>,
    user_out: Vec<u8>,
    user_in: Vec<u8>,
    mdl: *mut MDL,
}

// SAFETY: the raw pointers are IRP memory and MDLs owned by the record.
unsafe impl Send for IrpRec {}

struct DeviceRec {
    dev: *mut DEVICE_OBJECT,
    ext: usize,
    ext_size: usize,
    name: Option<String>,
    deleted: bool,
    opens: usize,
    sd_set: bool,
    dacl: Option<Vec<Ace>>,
    warned: bool,
}

// SAFETY: device memory is owned by the record.
unsafe impl Send for DeviceRec {}

struct FileRec {
    file: *mut FILE_OBJECT,
    dev: usize,
    granted: u32,
    /// The handle was closed: no new request.
    cleaned: bool,
    /// Creation order (for a deterministic order of closes at unload).
    seq: u64,
    /// IRP_MJ_CLEANUP was dispatched: IRP_MJ_CLOSE may follow once the
    /// file's IRPs are done (never before: the I/O manager sends CLEANUP
    /// first).
    cleanup_done: bool,
    closed: bool,
    irps: Vec<usize>,
}

// SAFETY: the file object memory is owned by the record.
unsafe impl Send for FileRec {}

pub(crate) struct WorkItem {
    magic: u64,
    dev: usize,
    queued: AtomicBool,
}

const WORKITEM_MAGIC: u64 = 0x4D45_5449_4B52_4F57; // "WORKITEM"

#[derive(Default)]
struct State {
    devices: Vec<DeviceRec>,
    links: HashMap<String, String>,
    handles: HashMap<usize, (usize, bool)>,
    next_handle: usize,
    irps: HashMap<usize, IrpRec>,
    done_irps: HashSet<usize>,
    files: HashMap<usize, FileRec>,
    next_file_seq: u64,
    workitems: HashSet<usize>,
}

pub(crate) struct Io {
    st: Mutex<State>,
    pub cancel_lock: Box<std::cell::UnsafeCell<usize>>,
    pub workers: crate::jobs::Jobs,
    pub driver: Mutex<usize>,
}

// SAFETY: the cancel lock is only used through the spin-lock functions,
// which synchronise on it.
unsafe impl Sync for Io {}
// SAFETY: as above.
unsafe impl Send for Io {}

fn viol(rule: Rule, call: &str, object: Option<usize>, detail: String) {
    kernel::report_violation(Violation { rule, call: call.into(), binding: None, object, detail });
}

/// `\DosDevices\X`, `\??\X`, `\GLOBAL??\X`, `\\.\X` → `dos:x`; a device
/// path stays itself (lowercase).
fn norm_link(s: &str) -> String {
    let l = s.to_ascii_lowercase();
    for p in ["\\dosdevices\\", "\\??\\", "\\global??\\", "\\\\.\\"] {
        if let Some(r) = l.strip_prefix(p) {
            return format!("dos:{r}");
        }
    }
    l
}

impl Io {
    pub(crate) fn new() -> Self {
        Io {
            st: Mutex::new(State { next_handle: 4, ..Default::default() }),
            cancel_lock: Box::new(std::cell::UnsafeCell::new(0)),
            workers: crate::jobs::Jobs::new(),
            driver: Mutex::new(0),
        }
    }

    pub(crate) fn cancel_lock_ptr(&self) -> *mut usize {
        self.cancel_lock.get()
    }

    /// Clears DO_DEVICE_INITIALIZING on the devices made so far (what the
    /// I/O manager does when DriverEntry returns).
    pub(crate) fn after_driver_entry(&self) {
        for d in lock(&self.st).devices.iter().filter(|d| !d.deleted) {
            // SAFETY: a live device object of ours.
            unsafe { (*d.dev).Flags &= !DO_DEVICE_INITIALIZING };
        }
    }

    pub(crate) fn device_names(&self) -> Vec<String> {
        lock(&self.st).devices.iter().filter(|d| !d.deleted).filter_map(|d| d.name.clone()).collect()
    }

    pub(crate) fn link_names(&self) -> Vec<String> {
        lock(&self.st).links.keys().cloned().collect()
    }

    /// The DACL set on the device named `name` (None: none was set).
    /// Replaces a device's DACL (as an administrator may, outside the
    /// driver); false when there is no such device.
    pub(crate) fn set_dacl(&self, name: &str, dacl: Option<Vec<Ace>>) -> bool {
        let mut st = lock(&self.st);
        let Some(d) = st
            .devices
            .iter_mut()
            .find(|d| !d.deleted && d.name.as_deref().map(|n| n.eq_ignore_ascii_case(name)) == Some(true))
        else {
            return false;
        };
        d.sd_set = true;
        d.dacl = dacl;
        true
    }

    pub(crate) fn dacl_of(&self, name: &str) -> Option<Option<Vec<Ace>>> {
        let st = lock(&self.st);
        let d = st
            .devices
            .iter()
            .find(|d| !d.deleted && d.name.as_deref().map(|n| n.eq_ignore_ascii_case(name)) == Some(true))?;
        d.sd_set.then(|| d.dacl.clone())
    }

    fn find_device(st: &State, path: &str) -> Option<(usize, String)> {
        let n = norm_link(path);
        // A symbolic link, possibly with a remainder.
        for (link, target) in &st.links {
            if n == *link || n.starts_with(&format!("{link}\\")) {
                let rest = path[path.len() - (n.len() - link.len())..].to_string();
                let t = target.to_ascii_lowercase();
                let d = st
                    .devices
                    .iter()
                    .find(|d| !d.deleted && d.name.as_deref().map(|x| x.to_ascii_lowercase()) == Some(t.clone()))?;
                return Some((d.dev as usize, rest));
            }
        }
        for d in st.devices.iter().filter(|d| !d.deleted) {
            if let Some(name) = &d.name {
                let ln = name.to_ascii_lowercase();
                if n == ln || n.starts_with(&format!("{ln}\\")) {
                    return Some((d.dev as usize, path[name.len()..].to_string()));
                }
            }
        }
        None
    }
}

// ===========================================================================
// Driver object
// ===========================================================================

/// The driver object, its extension and strings.
#[repr(C)]
pub(crate) struct DriverBox {
    pub obj: DRIVER_OBJECT,
    pub ext: DRIVER_EXTENSION,
    name: Vec<u16>,
    pub registry: UNICODE_STRING,
    registry_buf: Vec<u16>,
    service: Vec<u16>,
}

unsafe extern "win64" fn invalid_device_request(_d: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: called by our I/O manager with a live IRP.
    unsafe {
        (*irp).IoStatus.anon.Status = STATUS_INVALID_DEVICE_REQUEST;
        (*irp).IoStatus.Information = 0;
        IofCompleteRequest(irp, 0);
    }
    STATUS_INVALID_DEVICE_REQUEST
}

fn wbuf(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

fn us(b: &[u16]) -> UNICODE_STRING {
    UNICODE_STRING {
        Length: ((b.len() - 1) * 2) as u16,
        MaximumLength: (b.len() * 2) as u16,
        Buffer: b.as_ptr().cast_mut(),
    }
}

/// Builds the driver object for an image.
pub(crate) fn driver_object(service: &str, start: usize, size: usize) -> Box<DriverBox> {
    let mut d: Box<DriverBox> = Box::new(DriverBox {
        // SAFETY: DRIVER_OBJECT is plain data; zero is its initial state.
        obj: unsafe { std::mem::zeroed() },
        // SAFETY: DRIVER_EXTENSION is plain data; zero is its initial state.
        ext: unsafe { std::mem::zeroed() },
        name: wbuf(&format!("\\Driver\\{service}")),
        registry: UNICODE_STRING { Length: 0, MaximumLength: 0, Buffer: std::ptr::null_mut() },
        registry_buf: wbuf(&format!("\\REGISTRY\\MACHINE\\SYSTEM\\CurrentControlSet\\Services\\{service}")),
        service: wbuf(service),
    });
    d.registry = us(&d.registry_buf);
    let objp: *mut DRIVER_OBJECT = &mut d.obj;
    let extp: *mut DRIVER_EXTENSION = &mut d.ext;
    d.ext.DriverObject = objp;
    d.ext.ServiceKeyName = us(&d.service);
    d.obj.Type = 4; // IO_TYPE_DRIVER
    d.obj.Size = std::mem::size_of::<DRIVER_OBJECT>() as i16;
    d.obj.DriverStart = start as PVOID;
    d.obj.DriverSize = size as u32;
    d.obj.DriverExtension = extp;
    d.obj.DriverName = us(&d.name);
    for f in d.obj.MajorFunction.iter_mut() {
        *f = Some(invalid_device_request);
    }
    d
}

// ===========================================================================
// Devices and links
// ===========================================================================

/// # Safety
/// `s` is null or a valid UNICODE_STRING.
unsafe fn read(s: *const UNICODE_STRING) -> Option<String> {
    // SAFETY: per the caller.
    unsafe { crate::ndis::read_ustr(s) }
}

pub(crate) unsafe extern "win64" fn IoCreateDevice(
    driver: *mut DRIVER_OBJECT,
    ext_size: u32,
    name: *mut UNICODE_STRING,
    dtype: DEVICE_TYPE,
    chars: u32,
    exclusive: BOOLEAN,
    out: *mut *mut DEVICE_OBJECT,
) -> NTSTATUS {
    const CALL: &str = "IoCreateDevice";
    crate::ndis::export(CALL, STATUS_UNSUCCESSFUL, |k| {
        kernel::check_irql_max(CALL, kernel::APC_LEVEL);
        if driver.is_null() || driver as usize != *lock(&k.io.driver) || out.is_null() {
            viol(
                Rule::InvalidParameter,
                CALL,
                Some(driver as usize),
                "DriverObject is not the driver's, or DeviceObject is null".into(),
            );
            return STATUS_INVALID_PARAMETER;
        }
        // SAFETY: a string the driver passes (or null).
        let nm = unsafe { read(name) };
        let mut st = lock(&k.io.st);
        if let Some(n) = &nm {
            if st
                .devices
                .iter()
                .any(|d| !d.deleted && d.name.as_deref().map(|x| x.eq_ignore_ascii_case(n)) == Some(true))
            {
                return STATUS_OBJECT_NAME_COLLISION;
            }
        }
        let lay = std::alloc::Layout::new::<DEVICE_OBJECT>();
        // SAFETY: a non-zero layout.
        let dev = unsafe { std::alloc::alloc_zeroed(lay) }.cast::<DEVICE_OBJECT>();
        let ext = if ext_size > 0 {
            // SAFETY: a non-zero layout.
            unsafe {
                std::alloc::alloc_zeroed(
                    std::alloc::Layout::from_size_align(ext_size as usize, 16).expect("extension layout"),
                )
            }
        } else {
            std::ptr::null_mut()
        };
        // SAFETY: fresh device memory; the driver object is the driver's.
        unsafe {
            let d = &mut *dev;
            d.Type = 3; // IO_TYPE_DEVICE
            d.Size = (std::mem::size_of::<DEVICE_OBJECT>() + ext_size as usize) as u16;
            d.ReferenceCount = 0;
            d.DriverObject = driver;
            d.NextDevice = (*driver).DeviceObject;
            (*driver).DeviceObject = dev;
            d.Flags = DO_DEVICE_INITIALIZING | if exclusive != 0 { DO_EXCLUSIVE } else { 0 };
            d.Characteristics = chars;
            d.DeviceExtension = ext.cast();
            d.DeviceType = dtype;
            d.StackSize = 1;
            d.AlignmentRequirement = 0;
            d.SectorSize = 0;
            *out = dev;
        }
        st.devices.push(DeviceRec {
            dev,
            ext: ext as usize,
            ext_size: ext_size as usize,
            name: nm,
            deleted: false,
            opens: 0,
            sd_set: false,
            dacl: None,
            warned: false,
        });
        STATUS_SUCCESS
    })
}

pub(crate) unsafe extern "win64" fn IoDeleteDevice(dev: *mut DEVICE_OBJECT) {
    const CALL: &str = "IoDeleteDevice";
    crate::ndis::export(CALL, (), |k| {
        kernel::check_irql_max(CALL, kernel::APC_LEVEL);
        let mut st = lock(&k.io.st);
        let Some(d) = st.devices.iter_mut().find(|d| d.dev == dev && !d.deleted) else {
            viol(Rule::InvalidParameter, CALL, Some(dev as usize), "not a live device object".into());
            return;
        };
        d.deleted = true;
        // Unlink it from the driver's list.
        // SAFETY: our device objects and the driver object.
        unsafe {
            let drv = (*dev).DriverObject;
            let mut p: *mut *mut DEVICE_OBJECT = &mut (*drv).DeviceObject;
            while !(*p).is_null() {
                if *p == dev {
                    *p = (*dev).NextDevice;
                    break;
                }
                p = &mut (**p).NextDevice;
            }
        }
    })
}

pub(crate) unsafe extern "win64" fn IoCreateSymbolicLink(
    link: *mut UNICODE_STRING,
    target: *mut UNICODE_STRING,
) -> NTSTATUS {
    const CALL: &str = "IoCreateSymbolicLink";
    crate::ndis::export(CALL, STATUS_UNSUCCESSFUL, |k| {
        kernel::check_irql_eq(CALL, PASSIVE_LEVEL);
        // SAFETY: strings the driver passes.
        let (Some(l), Some(t)) = (unsafe { read(link) }, unsafe { read(target) }) else {
            viol(Rule::InvalidParameter, CALL, None, "null link or device name".into());
            return STATUS_INVALID_PARAMETER;
        };
        let mut st = lock(&k.io.st);
        let key = norm_link(&l);
        if st.links.contains_key(&key) {
            return STATUS_OBJECT_NAME_COLLISION;
        }
        st.links.insert(key, t);
        STATUS_SUCCESS
    })
}

pub(crate) unsafe extern "win64" fn IoDeleteSymbolicLink(link: *mut UNICODE_STRING) -> NTSTATUS {
    const CALL: &str = "IoDeleteSymbolicLink";
    crate::ndis::export(CALL, STATUS_UNSUCCESSFUL, |k| {
        kernel::check_irql_eq(CALL, PASSIVE_LEVEL);
        // SAFETY: a string the driver passes.
        let Some(l) = (unsafe { read(link) }) else { return STATUS_INVALID_PARAMETER };
        if lock(&k.io.st).links.remove(&norm_link(&l)).is_some() {
            STATUS_SUCCESS
        } else {
            STATUS_OBJECT_NAME_NOT_FOUND
        }
    })
}

// ===========================================================================
// IRPs
// ===========================================================================

fn major_name(m: u8) -> &'static str {
    match m {
        IRP_MJ_CREATE => "IRP_MJ_CREATE",
        IRP_MJ_CLOSE => "IRP_MJ_CLOSE",
        IRP_MJ_READ => "IRP_MJ_READ",
        IRP_MJ_WRITE => "IRP_MJ_WRITE",
        IRP_MJ_DEVICE_CONTROL => "IRP_MJ_DEVICE_CONTROL",
        IRP_MJ_CLEANUP => "IRP_MJ_CLEANUP",
        _ => "IRP_MJ_?",
    }
}

/// A request to send to the driver.
pub(crate) enum Request<'a> {
    Read(usize),
    Write(&'a [u8]),
    Ioctl { code: u32, input: &'a [u8], out_len: usize },
}

/// Opens `path` as `who` with `desired` access: the access check, then
/// IRP_MJ_CREATE. Returns the file object's address.
pub(crate) fn create(k: &Kernel, path: &str, desired: u32, who: Identity) -> Result<usize, NTSTATUS> {
    let (dev, rest, granted) = {
        let mut st = lock(&k.io.st);
        let Some((dev, rest)) = Io::find_device(&st, path) else { return Err(STATUS_OBJECT_NAME_NOT_FOUND) };
        let has_link = !st.links.is_empty();
        let d = st.devices.iter_mut().find(|d| d.dev as usize == dev).expect("found");
        // SAFETY: a live device object.
        let (flags, chars) = unsafe { ((*d.dev).Flags, (*d.dev).Characteristics) };
        if flags & DO_DEVICE_INITIALIZING != 0 {
            return Err(STATUS_DEVICE_NOT_READY);
        }
        if flags & DO_EXCLUSIVE != 0 && d.opens > 0 {
            return Err(STATUS_ACCESS_DENIED);
        }
        if has_link && !d.warned {
            if !d.sd_set || d.dacl.is_none() {
                d.warned = true;
                viol(
                    Rule::InsecureDevice,
                    "IRP_MJ_CREATE",
                    Some(dev),
                    format!(
                        "device {:?} has a symbolic link but no DACL: anyone can open it",
                        d.name.as_deref().unwrap_or("?")
                    ),
                );
            } else if chars & FILE_DEVICE_SECURE_OPEN == 0 {
                d.warned = true;
                viol(
                    Rule::InsecureDevice,
                    "IRP_MJ_CREATE",
                    Some(dev),
                    format!(
                        "device {:?} lacks FILE_DEVICE_SECURE_OPEN: opens of names below it skip its DACL",
                        d.name.as_deref().unwrap_or("?")
                    ),
                );
            }
        }
        // Without FILE_DEVICE_SECURE_OPEN an open of a name below the
        // device is not checked against the device's DACL.
        let check = rest.is_empty() || chars & FILE_DEVICE_SECURE_OPEN != 0;
        let dacl = if d.sd_set { d.dacl.clone() } else { None };
        let granted = if check { access_check(&dacl, who, desired) } else { Some(map_generic(desired)) };
        let Some(granted) = granted else { return Err(STATUS_ACCESS_DENIED) };
        (dev, rest, granted)
    };
    // The file object.
    // SAFETY: FILE_OBJECT is plain data.
    let fo = Box::into_raw(Box::new(unsafe { std::mem::zeroed::<FILE_OBJECT>() }));
    let name_buf = Box::leak(wbuf(&rest).into_boxed_slice());
    // SAFETY: fresh.
    unsafe {
        (*fo).Type = 5;
        (*fo).Size = std::mem::size_of::<FILE_OBJECT>() as i16;
        (*fo).DeviceObject = dev as *mut DEVICE_OBJECT;
        (*fo).ReadAccess = (granted & FILE_READ_DATA != 0) as u8;
        (*fo).WriteAccess = (granted & FILE_WRITE_DATA != 0) as u8;
        (*fo).FileName = us(name_buf);
    }
    {
        let mut st = lock(&k.io.st);
        st.next_file_seq += 1;
        let seq = st.next_file_seq;
        st.files.insert(
            fo as usize,
            FileRec {
                file: fo,
                dev,
                granted,
                cleaned: false,
                seq,
                cleanup_done: false,
                closed: false,
                irps: Vec::new(),
            },
        );
    }
    let w = Waiter::new(None);
    send(k, fo as usize, IRP_MJ_CREATE, None, desired, who, w.clone());
    let r = w.wait(Some(k.config.watchdog)).unwrap_or(IoResult {
        status: STATUS_PENDING,
        information: 0,
        data: Vec::new(),
    });
    if r.status < 0 || r.status == STATUS_PENDING {
        // A failed create: no cleanup or close follows.
        let mut st = lock(&k.io.st);
        if let Some(f) = st.files.get_mut(&(fo as usize)) {
            f.cleaned = true;
            f.cleanup_done = true;
            f.closed = true;
        }
        return Err(r.status);
    }
    let mut st = lock(&k.io.st);
    if let Some(d) = st.devices.iter_mut().find(|d| d.dev as usize == dev) {
        d.opens += 1;
    }
    Ok(fo as usize)
}

/// Sends `req` on an open file; the result arrives through `waiter`.
/// Returns the IRP's address.
pub(crate) fn request(k: &Kernel, file: usize, req: Request<'_>, waiter: Arc<Waiter>) -> Result<usize, NTSTATUS> {
    let granted = {
        let st = lock(&k.io.st);
        let Some(f) = st.files.get(&file) else { return Err(STATUS_INVALID_HANDLE) };
        if f.cleaned {
            return Err(STATUS_INVALID_HANDLE);
        }
        f.granted
    };
    // NtReadFile and NtWriteFile check the handle's access, as the I/O
    // manager checks an IOCTL's RequiredAccess bits below.
    match req {
        Request::Read(_) if granted & FILE_READ_DATA == 0 => return Err(STATUS_ACCESS_DENIED),
        Request::Write(_) if granted & FILE_WRITE_DATA == 0 => return Err(STATUS_ACCESS_DENIED),
        _ => {}
    }
    if k.fail_alloc() {
        // The I/O manager could not allocate the IRP.
        return Err(STATUS_INSUFFICIENT_RESOURCES);
    }
    if let Request::Ioctl { code, .. } = &req {
        let access = (code >> 14) & 3;
        if (access & FILE_READ_ACCESS != 0 && granted & FILE_READ_DATA == 0)
            || (access & FILE_WRITE_ACCESS != 0 && granted & FILE_WRITE_DATA == 0)
        {
            return Err(STATUS_ACCESS_DENIED);
        }
    }
    let major = match req {
        Request::Read(_) => IRP_MJ_READ,
        Request::Write(_) => IRP_MJ_WRITE,
        Request::Ioctl { .. } => IRP_MJ_DEVICE_CONTROL,
    };
    Ok(send(k, file, major, Some(req), 0, Identity::User, waiter))
}

/// Builds an IRP for `major` and calls the driver's dispatch routine.
fn send(
    k: &Kernel,
    file: usize,
    major: u8,
    req: Option<Request<'_>>,
    desired: u32,
    who: Identity,
    waiter: Arc<Waiter>,
) -> usize {
    let dev = lock(&k.io.st).files.get(&file).map(|f| f.dev).unwrap_or(0);
    let devp = dev as *mut DEVICE_OBJECT;
    // SAFETY: IRP blocks are plain data.
    let block = Box::into_raw(Box::new(unsafe { std::mem::zeroed::<IrpBlock>() }));
    // SAFETY: a live device object.
    let do_flags = unsafe { (*devp).Flags };
    let mut rec = IrpRec {
        block,
        file,
        major,
        completed: false,
        dispatch_status: None,
        completion: None,
        waiter,
        out_len: 0,
        in_len: 0,
        method: Method::Buffered,
        system_buffer: Vec::new(),
        user_out: Vec::new(),
        user_in: Vec::new(),
        mdl: std::ptr::null_mut(),
    };
    // SAFETY: fresh IRP memory.
    unsafe {
        let b = &mut *block;
        let irp = &mut b.irp;
        irp.Type = 6;
        irp.Size = (std::mem::size_of::<IRP>() + std::mem::size_of::<IO_STACK_LOCATION>()) as u16;
        irp.StackCount = 1;
        irp.CurrentLocation = 1;
        irp.RequestorMode = UserMode;
        irp.IoStatus.anon.Status = STATUS_NOT_SUPPORTED;
        irp.Tail.Overlay.anon2.CurrentStackLocation = &mut b.stack;
        irp.Tail.Overlay.OriginalFileObject = file as *mut FILE_OBJECT;
        irp.Tail.Overlay.Thread = 0xFFFF_D000_0000_1000usize as PVOID;
        let s = &mut b.stack;
        s.MajorFunction = major;
        s.DeviceObject = devp;
        s.FileObject = file as *mut FILE_OBJECT;
        match req {
            None if major == IRP_MJ_CREATE => {
                b.sec.DesiredAccess = desired;
                b.sec.FullCreateOptions = FILE_OPEN << 24;
                // The opener's token, in the access state (no impersonation).
                b.access.OriginalDesiredAccess = desired;
                b.access.RemainingDesiredAccess = desired;
                b.access.SubjectSecurityContext.PrimaryToken = who.token();
                b.sec.AccessState = &mut b.access;
                s.Parameters.Create.SecurityContext = &mut b.sec;
                s.Parameters.Create.Options = FILE_OPEN << 24;
                s.Parameters.Create.ShareAccess = 3;
            }
            None => {}
            Some(Request::Read(len)) => {
                rec.out_len = len;
                s.Parameters.Read.Length = len as u32;
                if do_flags & DO_DIRECT_IO != 0 {
                    rec.method = Method::Direct;
                    rec.user_out = vec![0u8; len.max(1)];
                    if len > 0 {
                        rec.mdl = nbl::alloc_mdl(rec.user_out.as_ptr() as usize, len, false);
                        irp.MdlAddress = rec.mdl;
                    }
                } else if do_flags & DO_BUFFERED_IO != 0 {
                    rec.system_buffer = vec![0u8; len.max(1)];
                    irp.AssociatedIrp.SystemBuffer = rec.system_buffer.as_mut_ptr().cast();
                    irp.Flags = IRP_BUFFERED_IO | IRP_INPUT_OPERATION;
                } else {
                    rec.method = Method::Neither;
                    rec.user_out = vec![0u8; len.max(1)];
                    irp.UserBuffer = rec.user_out.as_mut_ptr().cast();
                }
            }
            Some(Request::Write(data)) => {
                s.Parameters.Write.Length = data.len() as u32;
                if do_flags & DO_DIRECT_IO != 0 {
                    rec.method = Method::Direct;
                    rec.user_in = data.to_vec();
                    if !data.is_empty() {
                        rec.mdl = nbl::alloc_mdl(rec.user_in.as_ptr() as usize, data.len(), false);
                        irp.MdlAddress = rec.mdl;
                    }
                } else if do_flags & DO_BUFFERED_IO != 0 {
                    rec.system_buffer = data.to_vec();
                    irp.AssociatedIrp.SystemBuffer = rec.system_buffer.as_mut_ptr().cast();
                    irp.Flags = IRP_BUFFERED_IO;
                } else {
                    rec.method = Method::Neither;
                    rec.user_in = data.to_vec();
                    irp.UserBuffer = rec.user_in.as_mut_ptr().cast();
                }
            }
            Some(Request::Ioctl { code, input, out_len }) => {
                rec.out_len = out_len;
                let p = &mut s.Parameters.DeviceIoControl;
                p.IoControlCode = code;
                p.InputBufferLength = input.len() as u32;
                p.OutputBufferLength = out_len as u32;
                match code & 3 {
                    METHOD_BUFFERED => {
                        // The input, then poison up to the output length
                        // (one pass over the buffer): output the driver
                        // returns without writing it shows up as poison.
                        let size = input.len().max(out_len).max(1);
                        rec.system_buffer = Vec::with_capacity(size);
                        rec.system_buffer.extend_from_slice(input);
                        rec.system_buffer.resize(size, POISON);
                        rec.in_len = input.len();
                        if input.len().max(out_len) > 0 {
                            irp.AssociatedIrp.SystemBuffer = rec.system_buffer.as_mut_ptr().cast();
                        }
                        irp.Flags = IRP_BUFFERED_IO | if out_len > 0 { IRP_INPUT_OPERATION } else { 0 };
                    }
                    METHOD_IN_DIRECT | METHOD_OUT_DIRECT => {
                        rec.method = Method::Direct;
                        rec.system_buffer = input.to_vec();
                        if !input.is_empty() {
                            irp.AssociatedIrp.SystemBuffer = rec.system_buffer.as_mut_ptr().cast();
                        }
                        rec.user_out = vec![0u8; out_len.max(1)];
                        if out_len > 0 {
                            rec.mdl = nbl::alloc_mdl(rec.user_out.as_ptr() as usize, out_len, false);
                            irp.MdlAddress = rec.mdl;
                        }
                    }
                    _ => {
                        rec.method = Method::Neither;
                        rec.user_in = input.to_vec();
                        rec.user_out = vec![0u8; out_len.max(1)];
                        p.Type3InputBuffer =
                            if input.is_empty() { std::ptr::null_mut() } else { rec.user_in.as_mut_ptr().cast() };
                        irp.UserBuffer =
                            if out_len == 0 { std::ptr::null_mut() } else { rec.user_out.as_mut_ptr().cast() };
                    }
                }
            }
        }
    }
    let irp = block as usize;
    {
        let mut st = lock(&k.io.st);
        st.done_irps.remove(&irp);
        if let Some(f) = st.files.get_mut(&file) {
            f.irps.push(irp);
        }
        st.irps.insert(irp, rec);
    }
    let drv = *lock(&k.io.driver) as *mut DRIVER_OBJECT;
    // SAFETY: the driver object is ours; its table has a routine per major.
    let dispatch = unsafe { (*drv).MajorFunction[major as usize] };
    let name = major_name(major);
    let status = match dispatch {
        Some(f) => call_driver(name, PASSIVE_LEVEL, || {
            // SAFETY: the driver's dispatch routine with its device and a
            // live IRP whose current stack location is set.
            unsafe { f(devp, block.cast()) }
        }),
        None => {
            viol(Rule::InvalidParameter, name, Some(irp), "MajorFunction entry is NULL".into());
            STATUS_INVALID_DEVICE_REQUEST
        }
    };
    dispatch_returned(k, irp, status, name);
    irp
}

fn dispatch_returned(k: &Kernel, irp: usize, status: NTSTATUS, name: &str) {
    let mut st = lock(&k.io.st);
    let Some(rec) = st.irps.get_mut(&irp) else { return };
    rec.dispatch_status = Some(status);
    // SAFETY: the IRP memory lives as long as its record.
    let marked = unsafe { (*rec.block).stack.Control & SL_PENDING_RETURNED != 0 };
    let mut problems = Vec::new();
    if status == STATUS_PENDING && !marked {
        problems.push("returned STATUS_PENDING without IoMarkIrpPending".to_string());
    }
    if status != STATUS_PENDING && marked {
        problems.push(format!("called IoMarkIrpPending but returned {status:#010x}, not STATUS_PENDING"));
    }
    if status != STATUS_PENDING {
        match rec.completion {
            None => problems.push(format!(
                "returned {status:#010x} without completing the IRP (return STATUS_PENDING for an IRP completed later)"
            )),
            Some((s, _)) if s != status => {
                problems.push(format!("returned {status:#010x} but completed the IRP with {s:#010x}"))
            }
            _ => {}
        }
    }
    let done = rec.completed;
    drop(st);
    for p in problems {
        viol(Rule::IrpPendingMismatch, name, Some(irp), p);
    }
    if done {
        retire(k, irp);
    }
}

/// An IRP whose completion and dispatch are both done.
fn retire(k: &Kernel, irp: usize) {
    let mut st = lock(&k.io.st);
    let Some(rec) = st.irps.get(&irp) else { return };
    if !(rec.completed && rec.dispatch_status.is_some()) {
        return;
    }
    let file = rec.file;
    let rec = st.irps.remove(&irp).expect("present");
    st.done_irps.insert(irp);
    if let Some(f) = st.files.get_mut(&file) {
        f.irps.retain(|&i| i != irp);
    }
    drop(st);
    free_irp(rec);
    maybe_close(k, file);
}

fn free_irp(rec: IrpRec) {
    // SAFETY: the IRP and MDL were allocated in `send` and are done.
    unsafe {
        if !rec.mdl.is_null() {
            nbl::free_mdl(rec.mdl);
        }
        drop(Box::from_raw(rec.block));
    }
}

pub(crate) unsafe extern "win64" fn IofCompleteRequest(irp: *mut IRP, _boost: CCHAR) {
    const CALL: &str = "IofCompleteRequest";
    crate::ndis::export(CALL, (), |k| {
        kernel::check_irql_max(CALL, DISPATCH_LEVEL);
        let p = irp as usize;
        let mut st = lock(&k.io.st);
        let Some(rec) = st.irps.get_mut(&p) else {
            let twice = st.done_irps.contains(&p);
            drop(st);
            if twice {
                viol(Rule::IrpDoubleComplete, CALL, Some(p), "completed an IRP that was already completed".into());
            } else {
                viol(Rule::InvalidParameter, CALL, Some(p), "not an IRP the I/O manager sent".into());
            }
            return;
        };
        if rec.completed {
            drop(st);
            viol(Rule::IrpDoubleComplete, CALL, Some(p), "completed an IRP that was already completed".into());
            return;
        }
        // SAFETY: a live IRP of ours.
        let (status, info, cancel_routine, control) = unsafe {
            let i = &*irp;
            (i.IoStatus.anon.Status, i.IoStatus.Information, i.CancelRoutine, (*rec.block).stack.Control)
        };
        // SAFETY: as above: PendingReturned mirrors the stack's flag.
        unsafe { (*irp).PendingReturned = control & SL_PENDING_RETURNED };
        let mut problems = Vec::new();
        if cancel_routine.is_some() {
            problems.push((
                Rule::IrpCancelRoutineSet,
                "completed with its cancel routine still set (clear it with IoSetCancelRoutine(Irp, NULL) first)"
                    .to_string(),
            ));
        }
        if status == STATUS_PENDING {
            problems.push((Rule::IrpPendingMismatch, "completed with status STATUS_PENDING".to_string()));
        }
        let is_error = (status as u32) >> 30 == 3;
        let out_cap = match (rec.major, rec.method) {
            (IRP_MJ_READ, _) | (IRP_MJ_DEVICE_CONTROL, _) => Some(rec.out_len),
            _ => None,
        };
        let mut n = info;
        if let Some(cap) = out_cap {
            if info > cap && !is_error {
                problems.push((
                    Rule::IrpInformationOverflow,
                    format!("Information {info} is larger than the output buffer's {cap} bytes"),
                ));
                n = cap;
            }
        }
        if rec.method == Method::Buffered && rec.major == IRP_MJ_DEVICE_CONTROL && !is_error {
            if let Some(at) = stale_run(&rec.system_buffer, rec.in_len, n) {
                problems.push((
                    Rule::IrpStaleOutput,
                    format!("returned {n} bytes, but bytes from {at} on were never written (they still hold ndisim's poison): the caller would get stale kernel memory"),
                ));
            }
        }
        let data = if is_error || out_cap.is_none() {
            Vec::new()
        } else {
            match rec.method {
                // The caller gets the buffer itself, cut to what was
                // written: nothing is copied (the driver may not touch it
                // once the IRP is completed; the memory stays valid if it
                // does).
                Method::Buffered => {
                    let mut b = std::mem::take(&mut rec.system_buffer);
                    b.truncate(n);
                    b
                }
                _ => {
                    let mut b = std::mem::take(&mut rec.user_out);
                    b.truncate(n);
                    b
                }
            }
        };
        rec.completed = true;
        rec.completion = Some((status, info));
        let waiter = rec.waiter.clone();
        drop(st);
        for (rule, d) in problems {
            viol(rule, CALL, Some(p), d);
        }
        waiter.complete(IoResult { status, information: info, data });
        retire(k, p);
    })
}

/// What ndisim fills the output part of a system buffer with.
pub(crate) const POISON: u8 = 0xD5;
/// Poison bytes in a row that count as never written.
const STALE_RUN: usize = 16;

/// The offset of a run of `STALE_RUN` poison bytes in `buf[from..n]`.
fn stale_run(buf: &[u8], from: usize, n: usize) -> Option<usize> {
    let end = n.min(buf.len());
    if from >= end {
        return None;
    }
    let mut run = 0;
    for (i, &b) in buf[from..end].iter().enumerate() {
        run = if b == POISON { run + 1 } else { 0 };
        if run == STALE_RUN {
            return Some(from + i + 1 - STALE_RUN);
        }
    }
    None
}

/// `IoCancelIrp`: marks the IRP cancelled and, if it has a cancel routine,
/// calls it at DISPATCH_LEVEL with the cancel spin lock held (the routine
/// releases it with `IoReleaseCancelSpinLock(Irp->CancelIrql)`).
pub(crate) fn cancel_irp(k: &Kernel, irp: usize) -> bool {
    {
        let st = lock(&k.io.st);
        match st.irps.get(&irp) {
            Some(r) if !r.completed => {}
            _ => return false,
        }
    }
    let ip = irp as *mut IRP;
    let lockp = k.io.cancel_lock_ptr();
    let old = kernel::set_irql(DISPATCH_LEVEL);
    // SAFETY: our cancel spin lock.
    unsafe { crate::sync::spin_acquire("IoCancelIrp", lockp) };
    // SAFETY: a live IRP: set Cancel, then take the routine atomically.
    let routine = unsafe {
        (*ip).Cancel = 1;
        let slot = &*(std::ptr::addr_of_mut!((*ip).CancelRoutine) as *const std::sync::atomic::AtomicUsize);
        slot.swap(0, Ordering::AcqRel)
    };
    if routine == 0 {
        // SAFETY: we hold it.
        unsafe { crate::sync::spin_release("IoCancelIrp", lockp) };
        kernel::set_irql(old);
        return false;
    }
    // SAFETY: a live IRP.
    unsafe { (*ip).CancelIrql = old };
    // SAFETY: the routine pointer was the driver's DRIVER_CANCEL.
    let f: unsafe extern "win64" fn(*mut DEVICE_OBJECT, *mut IRP) = unsafe { std::mem::transmute(routine) };
    // SAFETY: the IRP's stack location names its device.
    let dev = unsafe { (*(*ip).Tail.Overlay.anon2.CurrentStackLocation).DeviceObject };
    let held_before = kernel::held_count();
    // The routine is entered at DISPATCH_LEVEL holding the cancel lock and
    // must leave at CancelIrql having released it.
    let exit = kernel::at_irql(DISPATCH_LEVEL, || {
        crate::stack::run_driver(k, "CancelRoutine", || {
            // SAFETY: the driver's cancel routine with its device and IRP.
            unsafe { f(dev, ip) }
        });
        kernel::irql()
    });
    if kernel::holds(lockp as usize) && kernel::held_count() >= held_before {
        viol(Rule::SpinLockImbalance, "CancelRoutine", Some(irp), "the cancel routine returned without releasing the cancel spin lock (IoReleaseCancelSpinLock(Irp->CancelIrql))".into());
        // SAFETY: we (this thread) hold it.
        unsafe { crate::sync::spin_release("CancelRoutine", lockp) };
    } else if exit != old {
        viol(
            Rule::Irql,
            "CancelRoutine",
            Some(irp),
            format!("the cancel routine returned at IRQL {exit}, not at Irp->CancelIrql ({old})"),
        );
    }
    kernel::set_irql(old);
    true
}

/// Closes a handle: IRP_MJ_CLEANUP now, IRP_MJ_CLOSE once the file's IRPs
/// are all completed. With `cancel`, outstanding IRPs are cancelled first
/// (what happens when the process that owns the handle exits).
pub(crate) fn close(k: &Kernel, file: usize, cancel: bool) {
    let irps = {
        let mut st = lock(&k.io.st);
        let Some(f) = st.files.get_mut(&file) else { return };
        if f.cleaned {
            return;
        }
        f.cleaned = true;
        f.irps.clone()
    };
    if cancel {
        for i in irps {
            cancel_irp(k, i);
        }
    }
    let w = Waiter::new(None);
    send(k, file, IRP_MJ_CLEANUP, None, 0, Identity::User, w);
    if let Some(f) = lock(&k.io.st).files.get_mut(&file) {
        f.cleanup_done = true;
    }
    maybe_close(k, file);
}

fn maybe_close(k: &Kernel, file: usize) {
    let go = {
        let mut st = lock(&k.io.st);
        let Some(f) = st.files.get_mut(&file) else { return };
        if !f.cleanup_done || f.closed || !f.irps.is_empty() {
            false
        } else {
            f.closed = true;
            true
        }
    };
    if go {
        let w = Waiter::new(None);
        send(k, file, IRP_MJ_CLOSE, None, 0, Identity::User, w);
        let mut st = lock(&k.io.st);
        let dev = st.files.get(&file).map(|f| f.dev);
        if let Some(d) = dev.and_then(|dv| st.devices.iter_mut().find(|d| d.dev as usize == dv)) {
            d.opens = d.opens.saturating_sub(1);
        }
    }
}

/// Files still open.
pub(crate) fn open_files(k: &Kernel) -> Vec<usize> {
    let st = lock(&k.io.st);
    let mut v: Vec<(u64, usize)> = st.files.iter().filter(|(_, f)| !f.cleaned).map(|(&a, f)| (f.seq, a)).collect();
    v.sort();
    v.into_iter().map(|(_, a)| a).collect()
}

/// Reports what the driver left behind at unload.
pub(crate) fn leak_check(k: &Kernel) {
    let st = lock(&k.io.st);
    for (irp, r) in &st.irps {
        if !r.completed {
            viol(Rule::IrpNotCompleted, major_name(r.major), Some(*irp), "the IRP was never completed".into());
        }
    }
    for d in st.devices.iter().filter(|d| !d.deleted) {
        viol(
            Rule::ResourceLeak,
            "DriverUnload",
            Some(d.dev as usize),
            format!("device {:?} was not deleted", d.name.as_deref().unwrap_or("(unnamed)")),
        );
    }
    for (l, t) in &st.links {
        viol(Rule::ResourceLeak, "DriverUnload", None, format!("symbolic link {l} -> {t} was not deleted"));
    }
    for h in st.handles.keys() {
        viol(Rule::ResourceLeak, "DriverUnload", Some(*h), "a kernel handle was not closed (ZwClose)".into());
    }
    for w in &st.workitems {
        viol(Rule::ResourceLeak, "DriverUnload", Some(*w), "a work item was not freed (IoFreeWorkItem)".into());
    }
}

/// Frees device and file objects (after the driver is gone).
pub(crate) fn free_everything(k: &Kernel) {
    let mut st = lock(&k.io.st);
    for (_, r) in st.irps.drain() {
        free_irp(r);
    }
    for (_, f) in st.files.drain() {
        // SAFETY: our file objects.
        unsafe { drop(Box::from_raw(f.file)) };
    }
    for d in st.devices.drain(..) {
        // SAFETY: our device objects and extensions.
        unsafe {
            if d.ext != 0 {
                std::alloc::dealloc(d.ext as *mut u8, std::alloc::Layout::from_size_align_unchecked(d.ext_size, 16));
            }
            std::alloc::dealloc(d.dev.cast(), std::alloc::Layout::new::<DEVICE_OBJECT>());
        }
    }
    for w in st.workitems.drain() {
        // SAFETY: leaked by the driver, which is gone.
        unsafe { drop(Box::from_raw(w as *mut WorkItem)) };
    }
}

// ===========================================================================
// Cancel spin lock, work items, MDL mapping
// ===========================================================================

pub(crate) unsafe extern "win64" fn IoAcquireCancelSpinLock(irql: *mut KIRQL) {
    const CALL: &str = "IoAcquireCancelSpinLock";
    crate::ndis::export(CALL, (), |k| {
        kernel::check_irql_max(CALL, DISPATCH_LEVEL);
        let old = kernel::set_irql(DISPATCH_LEVEL);
        // SAFETY: our cancel spin lock.
        unsafe { crate::sync::spin_acquire(CALL, k.io.cancel_lock_ptr()) };
        if !irql.is_null() {
            // SAFETY: the driver's out parameter.
            unsafe { *irql = old };
        }
    })
}

pub(crate) unsafe extern "win64" fn IoReleaseCancelSpinLock(irql: KIRQL) {
    const CALL: &str = "IoReleaseCancelSpinLock";
    crate::ndis::export(CALL, (), |k| {
        kernel::check_irql_eq(CALL, DISPATCH_LEVEL);
        // SAFETY: our cancel spin lock.
        if unsafe { crate::sync::spin_release(CALL, k.io.cancel_lock_ptr()) } {
            kernel::set_irql(irql);
        }
    })
}

pub(crate) unsafe extern "win64" fn IoAllocateWorkItem(dev: *mut DEVICE_OBJECT) -> *mut IO_WORKITEM {
    const CALL: &str = "IoAllocateWorkItem";
    crate::ndis::export(CALL, std::ptr::null_mut(), |k| {
        kernel::check_irql_max(CALL, DISPATCH_LEVEL);
        if k.fail_alloc() {
            return std::ptr::null_mut();
        }
        let mut st = lock(&k.io.st);
        if !st.devices.iter().any(|d| d.dev == dev && !d.deleted) {
            drop(st);
            viol(Rule::InvalidParameter, CALL, Some(dev as usize), "not a live device object of the driver".into());
            return std::ptr::null_mut();
        }
        let w = Box::into_raw(Box::new(WorkItem {
            magic: WORKITEM_MAGIC,
            dev: dev as usize,
            queued: AtomicBool::new(false),
        }));
        st.workitems.insert(w as usize);
        w.cast()
    })
}

pub(crate) unsafe extern "win64" fn IoQueueWorkItem(
    item: *mut IO_WORKITEM,
    routine: IO_WORKITEM_ROUTINE,
    queue: u32,
    ctx: PVOID,
) {
    const CALL: &str = "IoQueueWorkItem";
    crate::ndis::export(CALL, (), |k| {
        kernel::check_irql_max(CALL, DISPATCH_LEVEL);
        if !lock(&k.io.st).workitems.contains(&(item as usize)) {
            viol(
                Rule::InvalidParameter,
                CALL,
                Some(item as usize),
                "not a work item from IoAllocateWorkItem (or freed)".into(),
            );
            return;
        }
        let Some(routine) = routine else {
            viol(Rule::InvalidParameter, CALL, Some(item as usize), "WorkerRoutine is NULL".into());
            return;
        };
        if queue > 2 {
            viol(
                Rule::InvalidParameter,
                CALL,
                Some(item as usize),
                format!("QueueType {queue} is not a WORK_QUEUE_TYPE"),
            );
        }
        // SAFETY: a live work item (checked).
        let w = unsafe { &*(item as *const WorkItem) };
        if w.queued.swap(true, Ordering::AcqRel) {
            viol(Rule::WorkItemMisuse, CALL, Some(item as usize), "queued a work item that is already queued".into());
            return;
        }
        if k.image.get().is_some_and(|i| !i.is_code(routine as usize)) {
            viol(
                Rule::InvalidParameter,
                CALL,
                Some(routine as usize),
                "WorkerRoutine does not point into the driver's (non-discarded) code".into(),
            );
        }
        let (wp, dev, c) = (item as usize, w.dev, ctx as usize);
        k.io.workers.push(Duration::ZERO, PASSIVE_LEVEL, move || {
            // SAFETY: the work item stays allocated while queued (freeing a
            // queued item is refused).
            unsafe { (*(wp as *const WorkItem)).queued.store(false, Ordering::Release) };
            kernel::call_driver("WorkerRoutine", PASSIVE_LEVEL, || {
                // SAFETY: the driver's routine with its device and context.
                unsafe { routine(dev as *mut DEVICE_OBJECT, c as PVOID) }
            });
        });
    })
}

pub(crate) unsafe extern "win64" fn IoFreeWorkItem(item: *mut IO_WORKITEM) {
    const CALL: &str = "IoFreeWorkItem";
    crate::ndis::export(CALL, (), |k| {
        kernel::check_irql_max(CALL, DISPATCH_LEVEL);
        let mut st = lock(&k.io.st);
        if !st.workitems.contains(&(item as usize)) {
            drop(st);
            viol(
                Rule::InvalidParameter,
                CALL,
                Some(item as usize),
                "not a work item from IoAllocateWorkItem (or freed twice)".into(),
            );
            return;
        }
        // SAFETY: a live work item.
        let w = unsafe { &*(item as *const WorkItem) };
        if w.magic != WORKITEM_MAGIC || w.queued.load(Ordering::Acquire) {
            drop(st);
            viol(Rule::WorkItemMisuse, CALL, Some(item as usize), "freed a work item that is still queued".into());
            return;
        }
        st.workitems.remove(&(item as usize));
        // SAFETY: allocated by IoAllocateWorkItem, freed once.
        unsafe { drop(Box::from_raw(item as *mut WorkItem)) };
    })
}

pub(crate) unsafe extern "win64" fn MmMapLockedPagesSpecifyCache(
    mdl: *mut MDL,
    mode: KPROCESSOR_MODE,
    _cache: u32,
    requested: PVOID,
    _bugcheck: u32,
    prio: u32,
) -> PVOID {
    const CALL: &str = "MmMapLockedPagesSpecifyCache";
    crate::ndis::export(CALL, std::ptr::null_mut(), |_k| {
        if mode == KernelMode && prio & 0x4000_0000 == 0 {
            viol(
                Rule::NoExecute,
                CALL,
                Some(mdl as usize),
                format!("Priority {prio:#x} lacks MdlMappingNoExecute: the kernel mapping would be executable"),
            );
        }
        kernel::check_irql_max(CALL, if mode == KernelMode { DISPATCH_LEVEL } else { kernel::APC_LEVEL });
        if mdl.is_null() {
            viol(Rule::InvalidParameter, CALL, None, "null MDL".into());
            return std::ptr::null_mut();
        }
        if !requested.is_null() {
            viol(
                Rule::InvalidParameter,
                CALL,
                Some(mdl as usize),
                "RequestedAddress must be NULL for a kernel-mode mapping".into(),
            );
        }
        // SAFETY: the driver's MDL, which describes memory of this process.
        unsafe {
            let m = &mut *mdl;
            if m.MdlFlags & (MDL_PAGES_LOCKED | MDL_SOURCE_IS_NONPAGED_POOL | MDL_PARTIAL) == 0 {
                viol(Rule::InvalidParameter, CALL, Some(mdl as usize), "the MDL's pages are not locked".into());
            }
            let va = nbl::mdl_va(mdl);
            m.MappedSystemVa = va.cast();
            m.MdlFlags |= MDL_MAPPED_TO_SYSTEM_VA;
            va.cast()
        }
    })
}

// ===========================================================================
// Handles and security
// ===========================================================================

pub(crate) unsafe extern "win64" fn ObOpenObjectByPointer(
    object: PVOID,
    attrs: u32,
    _state: PVOID,
    _access: ACCESS_MASK,
    _otype: PVOID,
    _mode: KPROCESSOR_MODE,
    out: *mut HANDLE,
) -> NTSTATUS {
    const CALL: &str = "ObOpenObjectByPointer";
    crate::ndis::export(CALL, STATUS_UNSUCCESSFUL, |k| {
        kernel::check_irql_max(CALL, kernel::APC_LEVEL);
        let mut st = lock(&k.io.st);
        if !st.devices.iter().any(|d| std::ptr::addr_eq(d.dev, object) && !d.deleted) {
            drop(st);
            viol(
                Rule::InvalidParameter,
                CALL,
                Some(object as usize),
                "ndisim opens device objects of the driver only".into(),
            );
            return STATUS_INVALID_PARAMETER;
        }
        if out.is_null() {
            return STATUS_INVALID_PARAMETER;
        }
        st.next_handle += 4;
        let kernel_handle = attrs & OBJ_KERNEL_HANDLE != 0;
        let h = st.next_handle | if kernel_handle { 0xFFFF_FFFF_8000_0000 } else { 0 };
        st.handles.insert(h, (object as usize, kernel_handle));
        // SAFETY: the driver's out parameter.
        unsafe { *out = h as HANDLE };
        STATUS_SUCCESS
    })
}

pub(crate) unsafe extern "win64" fn ZwClose(h: HANDLE) -> NTSTATUS {
    const CALL: &str = "ZwClose";
    crate::ndis::export(CALL, STATUS_UNSUCCESSFUL, |k| {
        kernel::check_irql_eq(CALL, PASSIVE_LEVEL);
        if lock(&k.io.st).handles.remove(&(h as usize)).is_none() {
            viol(Rule::InvalidParameter, CALL, Some(h as usize), "not an open handle".into());
            return STATUS_INVALID_HANDLE;
        }
        STATUS_SUCCESS
    })
}

const SE_DACL_PRESENT: u16 = 0x0004;
const SE_SELF_RELATIVE: u16 = 0x8000;
const STATUS_UNKNOWN_REVISION: NTSTATUS = 0xC000_0058_u32 as i32;
const STATUS_INVALID_ACL: NTSTATUS = 0xC000_0077_u32 as i32;
const STATUS_INVALID_SID: NTSTATUS = 0xC000_0078_u32 as i32;
const STATUS_INVALID_SECURITY_DESCR: NTSTATUS = 0xC000_0079_u32 as i32;
const STATUS_ALLOTTED_SPACE_EXCEEDED: NTSTATUS = 0xC000_0099_u32 as i32;

/// Reads the ACEs of an ACL.
///
/// # Safety
/// `acl` points to an ACL whose `AclSize` bytes are readable.
unsafe fn parse_acl(acl: *const ACL) -> Result<Vec<Ace>, String> {
    // SAFETY: per the caller.
    let a = unsafe { &*acl };
    if a.AclRevision != 2 && a.AclRevision != 4 {
        return Err(format!("ACL revision {}", a.AclRevision));
    }
    // SAFETY: per the caller.
    let bytes = unsafe { std::slice::from_raw_parts(acl.cast::<u8>(), a.AclSize as usize) };
    let mut off = 8;
    let mut out = Vec::new();
    for _ in 0..a.AceCount {
        let h = bytes.get(off..off + 8).ok_or("ACE past the ACL's end")?;
        let (ty, size) = (h[0], u16::from_le_bytes([h[2], h[3]]) as usize);
        let mask = u32::from_le_bytes(h[4..8].try_into().unwrap());
        let body = bytes.get(off + 8..off + size).ok_or("ACE past the ACL's end")?;
        if size < 16 || body.len() < 8 || body.len() < 8 + 4 * body[1] as usize {
            return Err("malformed ACE".into());
        }
        let sid = body[..8 + 4 * body[1] as usize].to_vec();
        match ty {
            0 => out.push(Ace { allow: true, mask, sid }),
            1 => out.push(Ace { allow: false, mask, sid }),
            t => return Err(format!("ACE type {t} is not supported")),
        }
        off += size;
    }
    Ok(out)
}

pub(crate) unsafe extern "win64" fn ZwSetSecurityObject(
    h: HANDLE,
    info: SECURITY_INFORMATION,
    sd: PSECURITY_DESCRIPTOR,
) -> NTSTATUS {
    const CALL: &str = "ZwSetSecurityObject";
    crate::ndis::export(CALL, STATUS_UNSUCCESSFUL, |k| {
        kernel::check_irql_eq(CALL, PASSIVE_LEVEL);
        let Some((obj, _)) = lock(&k.io.st).handles.get(&(h as usize)).copied() else {
            viol(Rule::InvalidParameter, CALL, Some(h as usize), "not an open handle".into());
            return STATUS_INVALID_HANDLE;
        };
        if sd.is_null() {
            return STATUS_INVALID_SECURITY_DESCR;
        }
        if info & DACL_SECURITY_INFORMATION == 0 {
            return STATUS_SUCCESS;
        }
        // SAFETY: the driver's security descriptor.
        let s = unsafe { &*(sd as *const SECURITY_DESCRIPTOR) };
        if s.Revision != 1 {
            return STATUS_UNKNOWN_REVISION;
        }
        let dacl_ptr: *const ACL = if s.Control & SE_DACL_PRESENT == 0 {
            std::ptr::null()
        } else if s.Control & SE_SELF_RELATIVE != 0 {
            // Self-relative: offsets instead of pointers (Dacl at +16).
            // SAFETY: the descriptor's fixed part.
            let off = unsafe { *(sd as *const u8).add(16).cast::<u32>() } as usize;
            if off == 0 {
                std::ptr::null()
            } else {
                (sd as usize + off) as *const ACL
            }
        } else {
            s.Dacl
        };
        let dacl = if s.Control & SE_DACL_PRESENT == 0 || dacl_ptr.is_null() {
            None
        } else {
            // SAFETY: the driver's ACL.
            match unsafe { parse_acl(dacl_ptr) } {
                Ok(a) => Some(a),
                Err(e) => {
                    viol(Rule::InvalidParameter, CALL, Some(dacl_ptr as usize), format!("bad DACL: {e}"));
                    return STATUS_INVALID_ACL;
                }
            }
        };
        let mut st = lock(&k.io.st);
        if let Some(d) = st.devices.iter_mut().find(|d| d.dev as usize == obj) {
            d.sd_set = true;
            d.dacl = dacl;
        }
        STATUS_SUCCESS
    })
}

pub(crate) unsafe extern "win64" fn RtlCreateSecurityDescriptor(sd: PSECURITY_DESCRIPTOR, rev: u32) -> NTSTATUS {
    const CALL: &str = "RtlCreateSecurityDescriptor";
    crate::ndis::export(CALL, STATUS_UNSUCCESSFUL, |_k| {
        kernel::check_irql_eq(CALL, PASSIVE_LEVEL);
        if rev != SECURITY_DESCRIPTOR_REVISION {
            return STATUS_UNKNOWN_REVISION;
        }
        // SAFETY: the driver's buffer for an absolute descriptor.
        unsafe {
            (sd as *mut SECURITY_DESCRIPTOR).write(SECURITY_DESCRIPTOR {
                Revision: 1,
                Sbz1: 0,
                Control: 0,
                Owner: std::ptr::null_mut(),
                Group: std::ptr::null_mut(),
                Sacl: std::ptr::null_mut(),
                Dacl: std::ptr::null_mut(),
            })
        };
        STATUS_SUCCESS
    })
}

pub(crate) unsafe extern "win64" fn RtlCreateAcl(acl: *mut ACL, len: u32, rev: u32) -> NTSTATUS {
    const CALL: &str = "RtlCreateAcl";
    crate::ndis::export(CALL, STATUS_UNSUCCESSFUL, |_k| {
        kernel::check_irql_max(CALL, kernel::APC_LEVEL);
        if len < 8 {
            return STATUS_BUFFER_TOO_SMALL;
        }
        if (rev != 2 && rev != 4) || len > 0xFFFF || len % 4 != 0 {
            return STATUS_INVALID_PARAMETER;
        }
        // SAFETY: the driver's buffer of `len` bytes.
        unsafe { acl.write(ACL { AclRevision: rev as u8, Sbz1: 0, AclSize: len as u16, AceCount: 0, Sbz2: 0 }) };
        STATUS_SUCCESS
    })
}

pub(crate) unsafe extern "win64" fn RtlAddAccessAllowedAce(
    acl: *mut ACL,
    rev: u32,
    mask: ACCESS_MASK,
    sid: PSID,
) -> NTSTATUS {
    const CALL: &str = "RtlAddAccessAllowedAce";
    crate::ndis::export(CALL, STATUS_UNSUCCESSFUL, |_k| {
        if kernel::irql() >= DISPATCH_LEVEL {
            kernel::check_irql_max(CALL, kernel::APC_LEVEL);
        }
        if acl.is_null() || sid.is_null() {
            return STATUS_INVALID_PARAMETER;
        }
        // SAFETY: the driver's SID: revision and count first.
        let (srev, n) = unsafe { (*(sid as *const u8), *(sid as *const u8).add(1)) };
        if srev != 1 || n > 15 {
            return STATUS_INVALID_SID;
        }
        let sid_len = 8 + 4 * n as usize;
        // SAFETY: the driver's ACL, built by RtlCreateAcl.
        unsafe {
            let a = &mut *acl;
            if (a.AclRevision != 2 && a.AclRevision != 4) || rev > a.AclRevision as u32 || rev < 2 {
                return STATUS_REVISION_MISMATCH;
            }
            let bytes = std::slice::from_raw_parts_mut(acl.cast::<u8>(), a.AclSize as usize);
            let mut off = 8usize;
            for _ in 0..a.AceCount {
                let Some(h) = bytes.get(off..off + 4) else { return STATUS_INVALID_ACL };
                off += u16::from_le_bytes([h[2], h[3]]) as usize;
            }
            let size = 8 + sid_len;
            if off + size > bytes.len() {
                return STATUS_ALLOTTED_SPACE_EXCEEDED;
            }
            bytes[off] = 0; // ACCESS_ALLOWED_ACE_TYPE
            bytes[off + 1] = 0;
            bytes[off + 2..off + 4].copy_from_slice(&(size as u16).to_le_bytes());
            bytes[off + 4..off + 8].copy_from_slice(&mask.to_le_bytes());
            std::ptr::copy_nonoverlapping(sid as *const u8, bytes.as_mut_ptr().add(off + 8), sid_len);
            a.AceCount += 1;
        }
        STATUS_SUCCESS
    })
}

pub(crate) unsafe extern "win64" fn RtlSetDaclSecurityDescriptor(
    sd: PSECURITY_DESCRIPTOR,
    present: BOOLEAN,
    dacl: *mut ACL,
    defaulted: BOOLEAN,
) -> NTSTATUS {
    const CALL: &str = "RtlSetDaclSecurityDescriptor";
    crate::ndis::export(CALL, STATUS_UNSUCCESSFUL, |_k| {
        kernel::check_irql_eq(CALL, PASSIVE_LEVEL);
        // SAFETY: the driver's absolute descriptor.
        unsafe {
            let s = &mut *(sd as *mut SECURITY_DESCRIPTOR);
            if s.Revision != 1 {
                return STATUS_UNKNOWN_REVISION;
            }
            if s.Control & SE_SELF_RELATIVE != 0 {
                return STATUS_INVALID_SECURITY_DESCR;
            }
            if present != 0 {
                s.Control |= SE_DACL_PRESENT;
                s.Dacl = dacl;
                if defaulted != 0 {
                    s.Control |= 0x0008;
                } else {
                    s.Control &= !0x0008;
                }
            } else {
                s.Control &= !SE_DACL_PRESENT;
                s.Dacl = std::ptr::null_mut();
            }
        }
        STATUS_SUCCESS
    })
}

/// `IoCancelIrp` as an export (drivers may cancel IRPs they sent; ndisim's
/// I/O manager uses `cancel_irp`).
pub(crate) unsafe extern "win64" fn SeTokenIsAdmin(token: PVOID) -> BOOLEAN {
    const CALL: &str = "SeTokenIsAdmin";
    crate::ndis::export(CALL, 0, |_k| {
        kernel::check_irql_eq(CALL, PASSIVE_LEVEL);
        match Identity::of_token(token) {
            Some(who) => (who == Identity::Admin) as BOOLEAN,
            None => {
                viol(
                    Rule::InvalidParameter,
                    CALL,
                    Some(token as usize),
                    "not an access token the I/O manager passed".into(),
                );
                0
            }
        }
    })
}

pub(crate) unsafe extern "win64" fn IoCancelIrp(irp: *mut IRP) -> BOOLEAN {
    const CALL: &str = "IoCancelIrp";
    crate::ndis::export(CALL, 0, |k| {
        kernel::check_irql_max(CALL, DISPATCH_LEVEL);
        cancel_irp(k, irp as usize) as u8
    })
}

/// Runs the device's DACL through the access check (for reports and tests).
pub(crate) fn check_access(k: &Kernel, device: &str, who: Identity, desired: u32) -> Option<bool> {
    let dacl = k.io.dacl_of(device)?;
    Some(access_check(&dacl, who, desired).is_some())
}

pub(crate) fn sid_list(d: &Option<Vec<Ace>>) -> String {
    match d {
        None => "NULL DACL (everyone)".into(),
        Some(a) => a
            .iter()
            .map(|a| format!("{}:{}:{:#x}", if a.allow { "allow" } else { "deny" }, sid_string(&a.sid), a.mask))
            .collect::<Vec<_>>()
            .join(", "),
    }
}
