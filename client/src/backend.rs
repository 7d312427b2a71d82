//! Dispatch between the backends: ndisim's Unix-socket bridge (Unix) and
//! the Windows control device (Windows).

use crate::error::Result;
use crate::transport::{Completion, Request};
use std::fmt;
use std::time::Duration;

#[cfg(any(unix, windows))]
use crate::bridge;
#[cfg(windows)]
use crate::windows;

pub(crate) enum Backend {
    #[cfg(any(unix, windows))]
    Bridge(bridge::Bridge),
    #[cfg(windows)]
    Native(windows::WinDevice),
}

pub(crate) enum Pending<'d> {
    #[cfg(any(unix, windows))]
    Bridge(bridge::BridgePending<'d>),
    #[cfg(windows)]
    Native(windows::WinPending<'d>),
    #[allow(dead_code)]
    Never(std::marker::PhantomData<&'d ()>, std::convert::Infallible),
}

#[derive(Clone)]
pub(crate) enum Canceller {
    #[cfg(any(unix, windows))]
    Bridge(bridge::BridgeCanceller),
    #[cfg(windows)]
    Native(windows::WinCanceller),
}

// What the API promises about threads, checked at compile time for every
// backend this target builds: a `Device` and a `Canceller` are shared
// between threads, and a pending request can be moved to another thread to
// be waited for (it is not `Sync`: one thread uses it at a time).
const _: () = {
    const fn send<T: Send>() {}
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<crate::Device>();
    send_sync::<crate::Canceller>();
    send::<crate::Pending<'static>>();
    #[cfg(any(unix, windows))]
    {
        send_sync::<bridge::Bridge>();
        send_sync::<bridge::BridgeCanceller>();
        send::<bridge::BridgePending<'static>>();
    }
    #[cfg(windows)]
    {
        send_sync::<windows::WinDevice>();
        send_sync::<windows::WinCanceller>();
        send::<windows::WinPending<'static>>();
    }
};

impl Backend {
    pub(crate) fn submit(&self, request: Request, input: &[u8], out_len: usize) -> Result<Pending<'_>> {
        match self {
            #[cfg(any(unix, windows))]
            Backend::Bridge(b) => b.submit(request, input, out_len).map(Pending::Bridge),
            #[cfg(windows)]
            Backend::Native(d) => d.submit(request, input, out_len).map(Pending::Native),
        }
    }

    /// An IOCTL whose output buffer is `mem` itself.
    pub(crate) fn submit_shared(
        &self,
        request: Request,
        input: &[u8],
        mem: &std::sync::Arc<crate::ring::mem::SharedMem>,
    ) -> Result<Pending<'_>> {
        match self {
            #[cfg(target_os = "linux")]
            Backend::Bridge(b) => b.submit_shared(request, input, mem).map(Pending::Bridge),
            #[cfg(all(any(unix, windows), not(target_os = "linux")))]
            Backend::Bridge(_) => {
                let _ = (input, mem);
                Err(crate::error::Error::Unsupported(format!(
                    "{} needs memory shared with ndisim, which the device bridge passes only between Linux processes",
                    request.doing()
                )))
            }
            #[cfg(windows)]
            Backend::Native(d) => d.submit_shared(request, input, mem).map(Pending::Native),
        }
    }

    /// The interface alias the host gives the adapter named `name`.
    pub(crate) fn alias(&self, name: &str) -> Option<String> {
        match self {
            #[cfg(any(unix, windows))]
            Backend::Bridge(b) => b.alias(name),
            #[cfg(windows)]
            Backend::Native(_) => crate::alias::alias(name),
        }
    }

    pub(crate) fn canceller(&self) -> Canceller {
        match self {
            #[cfg(any(unix, windows))]
            Backend::Bridge(b) => Canceller::Bridge(b.canceller()),
            #[cfg(windows)]
            Backend::Native(d) => Canceller::Native(d.canceller()),
        }
    }
}

impl Pending<'_> {
    pub(crate) fn wait(self, request: Request, timeout: Option<Duration>) -> Result<Completion> {
        match self {
            #[cfg(any(unix, windows))]
            Pending::Bridge(p) => p.wait(request, timeout),
            #[cfg(windows)]
            Pending::Native(p) => p.wait(request, timeout),
            Pending::Never(_, never) => match never {},
        }
    }

    pub(crate) fn cancel(&self) -> Result<()> {
        match self {
            #[cfg(any(unix, windows))]
            Pending::Bridge(p) => p.cancel(),
            #[cfg(windows)]
            Pending::Native(p) => p.cancel(),
            Pending::Never(_, never) => match *never {},
        }
    }
}

impl Canceller {
    pub(crate) fn cancel_all(&self) -> Result<()> {
        match self {
            #[cfg(any(unix, windows))]
            Canceller::Bridge(c) => c.cancel_all(),
            #[cfg(windows)]
            Canceller::Native(c) => c.cancel_all(),
        }
    }
}

/// Adds what the system knows about an NTSTATUS that is not one of the
/// interface's (Windows: the message of the Win32 error it maps to).
pub(crate) fn explain_unknown_status(f: &mut fmt::Formatter<'_>, status: rawnic_proto::NtStatus) -> fmt::Result {
    #[cfg(windows)]
    {
        windows::explain_unknown_status(f, status)
    }
    #[cfg(not(windows))]
    {
        let _ = (f, status);
        Ok(())
    }
}
