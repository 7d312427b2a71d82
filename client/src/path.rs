//! Where the device is: [`DevicePath`], parsed from `--device` or
//! `RAWNIC_DEVICE`, and what to say when it cannot be opened.

use crate::error::{Error, Result};
use rawnic_proto::USER_PATH;

/// The environment variable that names the default device.
pub const ENV_DEVICE: &str = "RAWNIC_DEVICE";

/// Where a device is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevicePath {
    /// ndisim's device bridge: `unix:PATH`.
    Bridge(std::path::PathBuf),
    /// A Windows device path such as `\\.\RawNic`.
    Native(String),
}

impl DevicePath {
    /// `unix:PATH` is the bridge; a path that starts with `\\` is a
    /// Windows device path. Anything else is refused with a sentence that
    /// says what to write instead, rather than reaching `CreateFileW` as a
    /// file name whose failure would read as "the driver is not installed".
    pub fn parse(text: &str) -> Result<DevicePath> {
        let bad = |s: String| Err(Error::InvalidArgument(s));
        if text.contains('\0') {
            return bad(format!(
                "the device path {} contains a NUL character, which would cut it short; remove it",
                text.escape_debug()
            ));
        }
        if let Some(p) = text.strip_prefix("unix:") {
            if p.is_empty() {
                return bad("the device path \"unix:\" names no socket; write unix:PATH".into());
            }
            return Ok(DevicePath::Bridge(p.into()));
        }
        if text.is_empty() {
            return bad("the device path is empty".into());
        }
        let Some(rest) = text.strip_prefix("\\\\") else {
            return bad(format!(
                "\"{text}\" is not a device path: a Windows device path starts with \\\\ (the rawnic driver's is \
                 {USER_PATH}), and a socket of ndisim's device bridge is written unix:{text}"
            ));
        };
        // `\\.\NAME\MORE` opens MORE inside the device NAME; rawnic's
        // device refuses any name below it.
        if let Some((name, _)) = rest.strip_prefix(".\\").and_then(|r| r.split_once(['\\', '/'])) {
            let device = format!("\\\\.\\{name}");
            let ours = if device.eq_ignore_ascii_case(USER_PATH) {
                String::new()
            } else {
                format!(" (the rawnic driver's is {USER_PATH})")
            };
            return bad(format!(
                "\"{text}\" names something inside the device {device}, which is opened by its name alone: \
                 write {device}{ours}"
            ));
        }
        Ok(DevicePath::Native(text.to_string()))
    }
}

/// The parenthesis that explains why the Windows device `path` was not
/// found.
#[cfg_attr(not(windows), allow(dead_code))]
pub(crate) fn native_not_found_hint(path: &str) -> String {
    if path.eq_ignore_ascii_case(USER_PATH) {
        " (the device does not exist: is the rawnic driver installed and bound? `netcfg -l rawnic.inf -c p -i RAWNIC`)"
            .into()
    } else {
        format!(" (no device has that name; the rawnic driver's device is {USER_PATH})")
    }
}

/// The device to use when none is given: `RAWNIC_DEVICE`, else
/// `\\.\RawNic` on Windows; `None` elsewhere.
pub fn default_path() -> Option<String> {
    match std::env::var(ENV_DEVICE) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => cfg!(windows).then(|| USER_PATH.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(text: &str) -> String {
        match DevicePath::parse(text) {
            Err(Error::InvalidArgument(m)) => m,
            other => panic!("{text:?} gave {other:?}"),
        }
    }

    #[test]
    fn device_paths_and_sockets_are_told_apart() {
        assert_eq!(DevicePath::parse("unix:/tmp/rawnic.sock").unwrap(), DevicePath::Bridge("/tmp/rawnic.sock".into()));
        assert_eq!(DevicePath::parse("unix:rel.sock").unwrap(), DevicePath::Bridge("rel.sock".into()));
        for native in [USER_PATH, "\\\\.\\rawnic", "\\\\?\\GLOBALROOT\\Device\\RawNic", "\\\\.\\Other"] {
            assert_eq!(DevicePath::parse(native).unwrap(), DevicePath::Native(native.into()));
        }
    }

    #[test]
    fn a_nul_is_refused_rather_than_cutting_the_path_short() {
        for text in ["\\\\.\\RawNic\0x", "unix:/tmp/a\0b", "\0"] {
            let m = refusal(text);
            assert!(m.contains("NUL character") && m.contains("\\0"), "{m}");
        }
    }

    #[test]
    fn what_is_no_device_path_says_what_to_write() {
        assert!(refusal("").contains("empty"));
        assert!(refusal("unix:").contains("write unix:PATH"));
        // A bare name or a file path: never "the driver is not installed".
        for (text, socket) in [("RawNic", "unix:RawNic"), ("/tmp/x", "unix:/tmp/x"), (".\\RawNic", "unix:.\\RawNic")] {
            let m = refusal(text);
            assert!(m.contains("is not a device path") && m.contains(USER_PATH) && m.contains(socket), "{m}");
            assert!(!m.contains("installed"), "{m}");
        }
        // A name below a device, which rawnic's device refuses to open.
        let m = refusal("\\\\.\\RawNic\\x");
        assert!(m.contains("inside the device \\\\.\\RawNic") && m.ends_with("write \\\\.\\RawNic"), "{m}");
        let m = refusal("\\\\.\\rawnic/x");
        assert!(m.ends_with("write \\\\.\\rawnic"), "{m}");
        let m = refusal("\\\\.\\Other\\x");
        assert!(m.contains("write \\\\.\\Other") && m.contains(&format!("the rawnic driver's is {USER_PATH}")), "{m}");
    }

    #[test]
    fn refusals_are_one_line() {
        for text in ["RawNic", "\\\\.\\RawNic\\x", "\\\\.\\Other\\x", "", "unix:", "a\0"] {
            let m = refusal(text);
            assert!(!m.contains('\n') && !m.contains("  "), "{m:?}");
        }
    }

    #[test]
    fn a_device_that_is_not_found_is_explained() {
        assert!(native_not_found_hint(USER_PATH).contains("installed"));
        assert!(native_not_found_hint("\\\\.\\rawnic").contains("installed"));
        let h = native_not_found_hint("\\\\.\\RawNick");
        assert!(h.contains("no device has that name") && h.contains(USER_PATH) && !h.contains("installed"), "{h}");
    }
}
