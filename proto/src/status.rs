//! NTSTATUS values of the interface, with the sentence a user reads.

/// An NTSTATUS.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NtStatus(pub i32);

macro_rules! statuses {
    ($($name:ident = $value:expr, $text:literal;)*) => {
        impl NtStatus {
            $(pub const $name: NtStatus = NtStatus($value as u32 as i32);)*

            /// Every status of the interface.
            pub const ALL: &'static [NtStatus] = &[$(Self::$name),*];

            /// The constant's name, if it is one of the interface's.
            pub fn name(self) -> Option<&'static str> {
                match self { $(Self::$name => Some(stringify!($name)),)* _ => None }
            }

            /// What the status means to a user of rawnic.
            pub fn describe(self) -> &'static str {
                match self { $(Self::$name => $text,)* _ => "unexpected status" }
            }
        }
    };
}

statuses! {
    SUCCESS = 0x0000_0000u32, "success";
    PENDING = 0x0000_0103u32, "the request is pending";
    BUFFER_OVERFLOW = 0x8000_0005u32, "the output buffer was too small for all of the data; what fit was returned";
    DEVICE_BUSY = 0x8000_0011u32, "the handle's earlier multicast list set is still on its way (one at a time)";
    UNSUCCESSFUL = 0xC000_0001u32, "the operation failed";
    INVALID_HANDLE = 0xC000_0008u32, "the handle is not an open handle of rawnic's device";
    INFO_LENGTH_MISMATCH = 0xC000_0004u32, "the request's length does not match the lengths it declares";
    INVALID_PARAMETER = 0xC000_000Du32, "a parameter of the request is out of range or unknown";
    INVALID_DEVICE_REQUEST = 0xC000_0010u32, "the driver does not know this request";
    ACCESS_DENIED = 0xC000_0022u32, "access denied: only SYSTEM and Administrators may open rawnic, and OID sets are limited to an allow-list";
    BUFFER_TOO_SMALL = 0xC000_0023u32, "the buffer is too small for the request's fixed part";
    OBJECT_NAME_INVALID = 0xC000_0033u32, "the adapter name is not valid UTF-8";
    OBJECT_NAME_NOT_FOUND = 0xC000_0034u32, "no binding has that adapter name";
    REVISION_MISMATCH = 0xC000_0059u32, "the request's wire-format version is not one the driver speaks";
    INTEGER_OVERFLOW = 0xC000_0095u32, "a count or length in the request overflows";
    INSUFFICIENT_RESOURCES = 0xC000_009Au32, "the driver is out of memory or send buffers";
    DEVICE_NOT_READY = 0xC000_00A3u32, "the binding is not running (it is paused, restarting or closing)";
    NOT_SUPPORTED = 0xC000_00BBu32, "not supported";
    CANCELLED = 0xC000_0120u32, "the request was cancelled";
    INVALID_DEVICE_STATE = 0xC000_0184u32, "the handle is in the wrong state for this request (open a binding first, or it is already open; the handle was closed; or it has no rings attached)";
    INVALID_BUFFER_SIZE = 0xC000_0206u32, "a frame is shorter than 14 bytes or longer than the binding's MTU plus 14";
    DEVICE_REMOVED = 0xC000_02B6u32, "the binding was removed (the adapter was unbound)";
}

impl NtStatus {
    /// `NT_SUCCESS`: success and informational values.
    pub fn is_success(self) -> bool {
        self.0 >= 0
    }

    /// `NT_ERROR`: the top two bits are set.
    pub fn is_error(self) -> bool {
        (self.0 as u32) >> 30 == 3
    }
}

impl core::fmt::Debug for NtStatus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.name() {
            Some(n) => write!(f, "STATUS_{n} ({:#010x})", self.0 as u32),
            None => write!(f, "NTSTATUS {:#010x}", self.0 as u32),
        }
    }
}

impl core::fmt::Display for NtStatus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({self:?})", self.describe())
    }
}

/// Why a buffer was refused. Each maps to one NTSTATUS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Shorter than the fixed part.
    Truncated,
    /// An unknown wire-format version.
    Version,
    /// The buffer's length and the lengths it declares disagree.
    LengthMismatch,
    /// A count or length overflows.
    Overflow,
    /// A frame is shorter than an Ethernet header or longer than MTU + 14.
    FrameLength,
    /// A field has a value out of range, or reserved bits set.
    InvalidParameter,
    /// A name is not UTF-8.
    BadName,
}

impl Error {
    pub fn status(self) -> NtStatus {
        match self {
            Error::Truncated => NtStatus::BUFFER_TOO_SMALL,
            Error::Version => NtStatus::REVISION_MISMATCH,
            Error::LengthMismatch => NtStatus::INFO_LENGTH_MISMATCH,
            Error::Overflow => NtStatus::INTEGER_OVERFLOW,
            Error::FrameLength => NtStatus::INVALID_BUFFER_SIZE,
            Error::InvalidParameter => NtStatus::INVALID_PARAMETER,
            Error::BadName => NtStatus::OBJECT_NAME_INVALID,
        }
    }
}

impl From<Error> for NtStatus {
    fn from(e: Error) -> Self {
        e.status()
    }
}
