//! The library's error type. Every variant displays as a sentence a user can
//! act on; NTSTATUS values are explained with `rawnic_proto`'s `describe()`.

use crate::transport::Request;
use rawnic_proto::NtStatus;
use std::fmt;
use std::io;
use std::time::Duration;

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The driver (or the device bridge) completed the request with an
    /// error NTSTATUS.
    Status { request: Request, status: NtStatus },
    /// A Windows call failed with a Win32 error code that does not map back
    /// to one of the interface's NTSTATUS values.
    Win32 { call: &'static str, code: u32 },
    /// An I/O error on the device or its connection: what was being done
    /// (the Display) and the error (the `source()`).
    Io { context: String, source: io::Error },
    /// The request did not complete within its timeout and was cancelled.
    TimedOut { request: Request, after: Duration },
    /// The request was cancelled (by a [`Canceller`](crate::Canceller) or
    /// because the handle is closing).
    Cancelled { request: Request },
    /// The connection to the device bridge ended or broke.
    Disconnected { reason: String },
    /// The driver's reply does not parse.
    BadReply { request: Request, error: rawnic_proto::Error, detail: String },
    /// The adapter answered an OID request with a failure `NDIS_STATUS`.
    Ndis { oid: u32, set: bool, status: i32, bytes_needed: u32 },
    /// The driver speaks another wire-format version.
    Version { driver: u16 },
    /// An argument is out of range; the message says which and why.
    InvalidArgument(String),
    /// A send failed after some frames had already gone out: how many (the
    /// Display) and why it failed (the `source()`).
    Send { sent: u64, source: Box<Error> },
    /// No device path was given and there is no default on this system.
    NoDevice,
    /// The device path names a kind of device this build cannot open.
    Unsupported(String),
}

impl Error {
    /// The NTSTATUS, if the driver refused the request.
    pub fn status(&self) -> Option<NtStatus> {
        match self {
            Error::Status { status, .. } => Some(*status),
            Error::Send { source, .. } => source.status(),
            _ => None,
        }
    }

    /// `true` for [`Error::TimedOut`].
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::TimedOut { .. } => true,
            Error::Send { source, .. } => source.is_timeout(),
            _ => false,
        }
    }

    /// `true` for [`Error::Cancelled`] and for `STATUS_CANCELLED`.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Error::Cancelled { .. }) || self.status() == Some(NtStatus::CANCELLED)
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }

    pub(crate) fn bad_reply(request: Request, error: rawnic_proto::Error, detail: impl Into<String>) -> Self {
        Error::BadReply { request, error, detail: detail.into() }
    }

    /// The error for an NTSTATUS the driver completed `request` with.
    pub(crate) fn from_status(request: Request, status: NtStatus) -> Self {
        if status == NtStatus::CANCELLED { Error::Cancelled { request } } else { Error::Status { request, status } }
    }
}

fn proto_error_sentence(e: rawnic_proto::Error) -> &'static str {
    match e {
        rawnic_proto::Error::Truncated => "it is shorter than its fixed part",
        rawnic_proto::Error::Version => "it carries another wire-format version",
        rawnic_proto::Error::LengthMismatch => "its length does not match the lengths it declares",
        rawnic_proto::Error::Overflow => "a count or length in it overflows",
        rawnic_proto::Error::FrameLength => "a frame in it has an impossible length",
        rawnic_proto::Error::InvalidParameter => "a field in it is out of range",
        rawnic_proto::Error::BadName => "a name in it is not UTF-8",
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Status { request, status } => {
                write!(f, "{} failed: {}", request.doing(), status.describe())?;
                match status.name() {
                    Some(n) => write!(f, " (STATUS_{n}, {:#010x})", status.0 as u32),
                    None => {
                        write!(f, " ({:#010x})", status.0 as u32)?;
                        crate::backend::explain_unknown_status(f, *status)
                    }
                }
            }
            Error::Win32 { call, code } => {
                // The system's text without the "(os error N)" it ends
                // with: the code is given once, as a Win32 error.
                let text = io::Error::from_raw_os_error(*code as i32).to_string();
                let text = text.strip_suffix(&format!(" (os error {code})")).unwrap_or(&text);
                write!(f, "{call} failed: {text} (Win32 error {code})")
            }
            Error::Io { context, .. } => f.write_str(context),
            Error::TimedOut { request, after } => {
                write!(f, "{} did not finish within {} and was cancelled", request.doing(), format_duration(*after))
            }
            Error::Cancelled { request } => write!(f, "{} was cancelled", request.doing()),
            Error::Disconnected { reason } => write!(f, "the connection to the device bridge ended: {reason}"),
            Error::BadReply { request, error, detail } => write!(
                f,
                "the driver's reply to {} is malformed: {}{}{}",
                request.name(),
                proto_error_sentence(*error),
                if detail.is_empty() { "" } else { "; " },
                detail
            ),
            Error::Ndis { oid, set, status, bytes_needed } => {
                let what = if *set { "setting" } else { "querying" };
                write!(f, "{what} {} failed at the adapter: {}", crate::oid::display_oid(*oid), crate::oid::ndis_status_sentence(*status))?;
                if *bytes_needed > 0 {
                    write!(f, " (it needs {bytes_needed} bytes)")?;
                }
                Ok(())
            }
            Error::Version { driver } => write!(
                f,
                "the driver speaks wire-format version {driver} and this client speaks version {}; use a rawnicctl from the same release as the driver",
                rawnic_proto::PROTO_VERSION
            ),
            Error::InvalidArgument(s) => f.write_str(s),
            Error::Send { sent, .. } => {
                write!(f, "sending stopped after {sent} frame{} had been sent", if *sent == 1 { "" } else { "s" })
            }
            Error::NoDevice => f.write_str(
                "no device given: pass --device unix:SOCKET or set RAWNIC_DEVICE (on Windows the default is \\\\.\\RawNic; on Linux rawnic runs inside ndisim, which serves its device on a Unix socket)",
            ),
            Error::Unsupported(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Send { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

/// An error and each of its sources, joined by `": "`: the whole story in
/// one line, for a person (an error's own Display leaves its source out).
///
/// ```
/// # use rawnic_client::{Error, Report};
/// let e = Error::Io { context: "cannot open the device".into(), source: std::io::ErrorKind::NotFound.into() };
/// assert_eq!(e.to_string(), "cannot open the device");
/// assert_eq!(Report(&e).to_string(), "cannot open the device: entity not found");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Report<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

/// A duration as people write it: `250 ms`, `2 s`, `1.500 s`.
pub fn format_duration(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.3} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_win32_error_gives_its_code_once() {
        let e = Error::Win32 { call: "CreateFileW", code: 5 };
        let text = e.to_string();
        assert!(text.starts_with("CreateFileW failed: ") && text.ends_with(" (Win32 error 5)"), "{text}");
        assert!(!text.contains("os error"), "{text}");
    }

    #[test]
    fn status_errors_read_as_sentences() {
        let e = Error::from_status(Request::Ioctl(rawnic_proto::IOCTL_RAWNIC_OPEN), NtStatus::OBJECT_NAME_NOT_FOUND);
        assert_eq!(
            e.to_string(),
            "opening the binding failed: no binding has that adapter name (STATUS_OBJECT_NAME_NOT_FOUND, 0xc0000034)"
        );
        assert_eq!(e.status(), Some(NtStatus::OBJECT_NAME_NOT_FOUND));
        let c = Error::from_status(Request::Read, NtStatus::CANCELLED);
        assert!(c.is_cancelled());
        assert_eq!(c.to_string(), "reading frames was cancelled");
    }

    #[test]
    fn unknown_status_shows_its_value() {
        let e = Error::from_status(Request::Write, NtStatus(0xC0DE_0001u32 as i32));
        assert!(e.to_string().starts_with("writing a frame failed: unexpected status (0xc0de0001)"), "{e}");
    }

    #[test]
    fn timeouts_and_sends_say_what_happened() {
        let e = Error::TimedOut {
            request: Request::Ioctl(rawnic_proto::IOCTL_RAWNIC_WAIT_BINDS_COMPLETE),
            after: Duration::from_millis(1500),
        };
        assert_eq!(e.to_string(), "waiting for NDIS to finish binding did not finish within 1.500 s and was cancelled");
        assert!(e.is_timeout());
        let s = Error::Send {
            sent: 3,
            source: Box::new(Error::from_status(
                Request::Ioctl(rawnic_proto::IOCTL_RAWNIC_SEND_BATCH),
                NtStatus::DEVICE_NOT_READY,
            )),
        };
        assert_eq!(s.to_string(), "sending stopped after 3 frames had been sent");
        assert_eq!(
            Report(&s).to_string(),
            "sending stopped after 3 frames had been sent: sending frames failed: the binding is not running (it is paused, restarting or closing) (STATUS_DEVICE_NOT_READY, 0xc00000a3)"
        );
        assert_eq!(s.status(), Some(NtStatus::DEVICE_NOT_READY));
    }

    #[test]
    fn no_error_repeats_its_source() {
        let io = Error::io("reading from /tmp/s", io::Error::new(io::ErrorKind::UnexpectedEof, "early eof"));
        assert_eq!(io.to_string(), "reading from /tmp/s");
        assert_eq!(Report(&io).to_string(), "reading from /tmp/s: early eof");
        let send = Error::Send { sent: 1, source: Box::new(io) };
        assert_eq!(
            Report(&send).to_string(),
            "sending stopped after 1 frame had been sent: reading from /tmp/s: early eof"
        );
        let mut e: Option<&(dyn std::error::Error + 'static)> = Some(&send);
        while let Some(x) = e {
            if let Some(s) = x.source() {
                assert!(!x.to_string().contains(&s.to_string()), "{x} repeats {s}");
            }
            e = x.source();
        }
    }

    #[test]
    fn durations() {
        assert_eq!(format_duration(Duration::from_millis(250)), "250 ms");
        assert_eq!(format_duration(Duration::from_secs(2)), "2 s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.500 s");
    }
}
