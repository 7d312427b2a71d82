//! Interface aliases on Windows ("Ethernet 2"): IP Helper turns the
//! adapter's `\DEVICE\{GUID}` name into an interface LUID
//! (`ConvertInterfaceGuidToLuid`), then into its alias
//! (`ConvertInterfaceLuidToAlias`). The GUID parsing is here for every
//! platform (and tested on Linux); the calls only on Windows.

/// The GUID of a `\DEVICE\{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}` name:
/// (Data1, Data2, Data3, Data4).
pub(crate) fn device_guid(name: &str) -> Option<(u32, u16, u16, [u8; 8])> {
    let braced = name.get(..8).filter(|p| p.eq_ignore_ascii_case("\\DEVICE\\")).map(|_| &name[8..])?;
    let g = braced.strip_prefix('{')?.strip_suffix('}')?;
    let parts: Vec<&str> = g.split('-').collect();
    let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
    if lens != [8, 4, 4, 4, 12] || !g.chars().all(|c| c == '-' || c.is_ascii_hexdigit()) {
        return None;
    }
    let d1 = u32::from_str_radix(parts[0], 16).ok()?;
    let d2 = u16::from_str_radix(parts[1], 16).ok()?;
    let d3 = u16::from_str_radix(parts[2], 16).ok()?;
    let tail = format!("{}{}", parts[3], parts[4]);
    let mut d4 = [0u8; 8];
    for (i, b) in d4.iter_mut().enumerate() {
        *b = u8::from_str_radix(&tail[2 * i..2 * i + 2], 16).ok()?;
    }
    Some((d1, d2, d3, d4))
}

/// The alias of the interface behind `device_name`, if it has one.
#[cfg(windows)]
pub(crate) fn alias(device_name: &str) -> Option<String> {
    use windows_sys::Win32::NetworkManagement::IpHelper::{ConvertInterfaceGuidToLuid, ConvertInterfaceLuidToAlias};
    use windows_sys::Win32::NetworkManagement::Ndis::NET_LUID_LH;
    use windows_sys::core::GUID;
    let (data1, data2, data3, data4) = device_guid(device_name)?;
    let guid = GUID { data1, data2, data3, data4 };
    let mut luid = NET_LUID_LH { Value: 0 };
    // SAFETY: both pointers are to live locals of the right types.
    if unsafe { ConvertInterfaceGuidToLuid(&guid, &mut luid) } != 0 {
        return None;
    }
    // NDIS_IF_MAX_STRING_SIZE (256) characters and the NUL.
    let mut buf = [0u16; 257];
    // SAFETY: `buf` holds `buf.len()` UTF-16 units, the length passed.
    if unsafe { ConvertInterfaceLuidToAlias(&luid, buf.as_mut_ptr(), buf.len()) } != 0 {
        return None;
    }
    let n = buf.iter().position(|&c| c == 0)?;
    (n > 0).then(|| String::from_utf16_lossy(&buf[..n]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_give_their_guid() {
        assert_eq!(
            device_guid("\\DEVICE\\{5E1A0D15-0001-4E44-9A11-000052454E45}"),
            Some((0x5E1A_0D15, 0x0001, 0x4E44, [0x9A, 0x11, 0x00, 0x00, 0x52, 0x45, 0x4E, 0x45]))
        );
        assert_eq!(device_guid("\\Device\\{00000000-0000-0000-0000-000000000001}").map(|g| g.3[7]), Some(1));
        for bad in [
            "{5E1A0D15-0001-4E44-9A11-000052454E45}",
            "\\DEVICE\\5E1A0D15-0001-4E44-9A11-000052454E45",
            "\\DEVICE\\{5E1A0D15-0001-4E44-9A11-000052454E4}",
            "\\DEVICE\\{5E1A0D15-0001-4E44-9A11-000052454E4G}",
            "\\DEVICE\\{5E1A0D150001-4E44-9A11-000052454E45-}",
            "\\DEV",
        ] {
            assert_eq!(device_guid(bad), None, "{bad}");
        }
    }
}
