//! Who opens a device and what it may do: identities and their tokens,
//! binary SIDs, the device's DACL and the access check CREATE runs, and
//! the exports that build and set a security descriptor.

use super::Io;
use crate::kernel::{self, DISPATCH_LEVEL, Kernel, PASSIVE_LEVEL};
use crate::verifier::{Rule, Violation, lock};
use ndis_sys::*;

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
pub(super) fn map_generic(m: u32) -> u32 {
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
pub(super) fn access_check(dacl: &Option<Vec<Ace>>, who: Identity, desired: u32) -> Option<u32> {
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

impl Io {
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

    /// The DACL set on the device named `name` (None: none was set).
    pub(crate) fn dacl_of(&self, name: &str) -> Option<Option<Vec<Ace>>> {
        let st = lock(&self.st);
        let d = st
            .devices
            .iter()
            .find(|d| !d.deleted && d.name.as_deref().map(|n| n.eq_ignore_ascii_case(name)) == Some(true))?;
        d.sd_set.then(|| d.dacl.clone())
    }
}

const SE_DACL_PRESENT: u16 = 0x0004;
const SE_DACL_PROTECTED: u16 = 0x1000;
const SE_SELF_RELATIVE: u16 = 0x8000;
const STATUS_UNKNOWN_REVISION: NTSTATUS = 0xC000_0058_u32 as i32;
const STATUS_INVALID_ACL: NTSTATUS = 0xC000_0077_u32 as i32;
const STATUS_INVALID_SID: NTSTATUS = 0xC000_0078_u32 as i32;
const STATUS_INVALID_SECURITY_DESCR: NTSTATUS = 0xC000_0079_u32 as i32;
const STATUS_ALLOTTED_SPACE_EXCEEDED: NTSTATUS = 0xC000_0099_u32 as i32;

/// A DACL set on an object of `\Device` without `SE_DACL_PROTECTED`, as
/// the object manager keeps it: the explicit ACEs, then those the
/// directory passes on by inheritance. Which ACEs `\Device` passes on
/// depends on the Windows release and what was installed; ndisim takes
/// the widest plausible one, read and execute for Everyone (the public
/// default DACL's grant), so a driver that meant its DACL to be the
/// whole of it and did not protect it is seen letting everyone read.
fn inherit_from_device_dir(mut aces: Vec<Ace>) -> Vec<Ace> {
    const GENERIC_READ: u32 = 0x8000_0000;
    const GENERIC_EXECUTE: u32 = 0x2000_0000;
    aces.push(Ace { allow: true, mask: GENERIC_READ | GENERIC_EXECUTE, sid: sid(1, &[0]) });
    aces
}

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
        let Some((obj, scope)) = lock(&k.io.st).handles.get(&(h as usize)).copied() else {
            Violation::new(Rule::InvalidParameter, CALL, "not an open handle").with_object(h as usize).report();
            return STATUS_INVALID_HANDLE;
        };
        super::handle::check_scope(CALL, h, scope);
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
            if off == 0 { std::ptr::null() } else { (sd as usize + off) as *const ACL }
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
                    Violation::new(Rule::InvalidParameter, CALL, format!("bad DACL: {e}"))
                        .with_object(dacl_ptr as usize)
                        .report();
                    return STATUS_INVALID_ACL;
                }
            }
        };
        let mut st = lock(&k.io.st);
        if let Some(d) = st.devices.iter_mut().find(|d| d.dev as usize == obj) {
            let below_device =
                d.name.as_deref().and_then(|n| n.get(..8)).is_some_and(|p| p.eq_ignore_ascii_case("\\Device\\"));
            d.sd_set = true;
            d.dacl = match dacl {
                Some(aces) if below_device && s.Control & SE_DACL_PROTECTED == 0 => Some(inherit_from_device_dir(aces)),
                other => other,
            };
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

pub(crate) unsafe extern "win64" fn SeTokenIsAdmin(token: PVOID) -> BOOLEAN {
    const CALL: &str = "SeTokenIsAdmin";
    crate::ndis::export(CALL, 0, |_k| {
        kernel::check_irql_eq(CALL, PASSIVE_LEVEL);
        match Identity::of_token(token) {
            Some(who) => (who == Identity::Admin) as BOOLEAN,
            None => {
                Violation::new(Rule::InvalidParameter, CALL, "not an access token the I/O manager passed")
                    .with_object(token as usize)
                    .report();
                0
            }
        }
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
