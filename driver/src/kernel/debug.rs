//! Debug output through `DbgPrintEx`, formatted without allocating.

use core::fmt::{self, Write};

/// `DPFLTR_IHVNETWORK_ID`.
pub const COMPONENT: u32 = 80;
/// `DPFLTR_ERROR_LEVEL`: shown by default.
pub const LEVEL_ERROR: u32 = 0;
/// `DPFLTR_INFO_LEVEL`: shown when the debug filter asks for it.
pub const LEVEL_INFO: u32 = 3;

/// A fixed buffer that `fmt` writes into, cutting what does not fit.
pub struct FixedBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Default for FixedBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> FixedBuf<N> {
    pub const fn new() -> Self {
        FixedBuf { buf: [0; N], len: 0 }
    }

    /// The text written so far, NUL-terminated (the last byte is reserved).
    pub fn as_cstr(&mut self) -> *const u8 {
        let end = self.len.min(N - 1);
        self.buf[end] = 0;
        self.buf.as_ptr()
    }
}

impl<const N: usize> Write for FixedBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = (N - 1).saturating_sub(self.len);
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Prints one line at `level`.
pub fn print(level: u32, args: fmt::Arguments<'_>) {
    print_as("rawnic: ", level, args);
}

/// Prints one line at `level`, starting with `prefix`.
fn print_as(prefix: &str, level: u32, args: fmt::Arguments<'_>) {
    let mut buf = FixedBuf::<256>::new();
    let _ = buf.write_str(prefix);
    let _ = buf.write_fmt(args);
    let _ = buf.write_str("\n");
    let text = buf.as_cstr();
    // SAFETY: the format is a static NUL-terminated "%s" and the one
    // argument is a NUL-terminated string that lives across the call.
    unsafe {
        ndis_sys::DbgPrintEx(COMPONENT, level, c"%s".as_ptr().cast(), text);
    }
}

/// `safety_net!("fmt", args)`: says, at `LEVEL_ERROR`, that a safety net
/// caught a broken invariant (an IRP dropped uncompleted and completed by
/// its `Drop`, a pool released with NBLs out and leaked, an event the
/// binding's state refuses, ...). The driver goes on safely, but the line
/// is a bug's report: every test and schedule fails on it.
#[macro_export]
macro_rules! safety_net {
    ($($arg:tt)*) => {
        $crate::kernel::debug::print_safety_net(format_args!($($arg)*))
    };
}

/// [`safety_net!`]'s line, which starts with
/// `rawnic_proto::SAFETY_NET_LINE` (what the tests forbid).
pub fn print_safety_net(args: fmt::Arguments<'_>) {
    print_as(rawnic_proto::SAFETY_NET_LINE, LEVEL_ERROR, args);
}

/// `kprint!(level, "fmt", args)`.
#[macro_export]
macro_rules! kprint {
    ($level:expr, $($arg:tt)*) => {
        $crate::kernel::debug::print($level, format_args!($($arg)*))
    };
}
