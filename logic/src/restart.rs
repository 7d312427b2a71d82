//! Reading what a restart notification carries.

use alloc::string::String;
use alloc::vec::Vec;

/// Why the filter module names could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamesError {
    /// The buffer is malformed: a length is odd or runs past the buffer.
    Malformed,
    /// Memory ran out.
    NoMemory,
}

/// The filter module names of `NDIS_PROTOCOL_RESTART_PARAMETERS`: each is a
/// `USHORT` byte length followed by that many bytes of UTF-16LE. Every
/// allocation is fallible (a kernel caller must not panic on low memory).
pub fn filter_module_names(buf: &[u8]) -> Result<Vec<String>, NamesError> {
    let mut names = Vec::new();
    let mut off = 0;
    while off < buf.len() {
        if buf.len() - off < 2 {
            return Err(NamesError::Malformed);
        }
        let len = usize::from(u16::from_le_bytes([buf[off], buf[off + 1]]));
        off += 2;
        if len % 2 != 0 || buf.len() - off < len {
            return Err(NamesError::Malformed);
        }
        let units = buf[off..off + len].chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
        let mut name = String::new();
        // UTF-8 takes at most 3 bytes per UTF-16 unit.
        name.try_reserve(len / 2 * 3).map_err(|_| NamesError::NoMemory)?;
        name.extend(char::decode_utf16(units).map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER)));
        names.try_reserve(1).map_err(|_| NamesError::NoMemory)?;
        names.push(name);
        off += len;
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    fn enc(names: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for n in names {
            let units: Vec<u16> = n.encode_utf16().collect();
            out.extend_from_slice(&((units.len() * 2) as u16).to_le_bytes());
            for u in units {
                out.extend_from_slice(&u.to_le_bytes());
            }
        }
        out
    }

    #[test]
    fn reads_names_in_order() {
        let b = enc(&["WFP Native MAC Layer LightWeight Filter", "QoS Packet Scheduler", ""]);
        assert_eq!(
            filter_module_names(&b).unwrap(),
            vec!["WFP Native MAC Layer LightWeight Filter", "QoS Packet Scheduler", ""]
        );
        assert_eq!(filter_module_names(&[]).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn refuses_bad_lengths() {
        let mut b = enc(&["abc"]);
        b.truncate(b.len() - 1);
        assert!(filter_module_names(&b).is_err());
        assert!(filter_module_names(&[3, 0, 0x41, 0, 0]).is_err());
        assert!(filter_module_names(&[1]).is_err());
    }
}
