//! The hand-written FFI against the x64 layouts from Windows' own symbols
//! (`ndis-sys/layout/ndis-x64-layout.tsv`, see its README): every struct that ndis-sys
//! declares and the table lists must have the table's size and every listed
//! field at the table's offset (and, where the table gives one, size).

use ndis_sys::layout::{Field, TypeInfo, all_types};
use rawnic_tests::root;
use std::collections::BTreeMap;

#[derive(Debug)]
struct Row {
    field: String,
    offset: Option<usize>,
    size: Option<usize>,
    line: usize,
}

fn num(s: &str) -> Option<usize> {
    let s = s.trim();
    if s == "-" {
        return None;
    }
    let hex = s.strip_prefix("0x").expect("hex number");
    Some(usize::from_str_radix(hex, 16).expect("hex number"))
}

fn rows() -> BTreeMap<String, Vec<Row>> {
    let path = root().join("ndis-sys/layout/ndis-x64-layout.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        assert!(cols.len() >= 4, "line {}: {line:?}", i + 1);
        if cols[1].starts_with("Padding_") {
            continue;
        }
        out.entry(cols[0].to_string()).or_default().push(Row {
            field: cols[1].to_string(),
            offset: num(cols[2]),
            size: num(cols[3]),
            line: i + 1,
        });
    }
    out
}

fn type_by_rust_name(name: &str) -> Option<&'static TypeInfo> {
    all_types().find(|t| t.rust == name)
}

/// Finds `name` among `ty`'s fields, looking through members C declares
/// anonymously (`anon*`). Returns the field and its offset in `ty`.
fn find_field(ty: &TypeInfo, name: &str) -> Option<(Field, usize)> {
    if let Some(f) = ty.fields.iter().find(|f| f.name == name) {
        return Some((*f, f.offset));
    }
    for f in ty.fields.iter().filter(|f| f.name.starts_with("anon")) {
        if let Some(inner) = type_by_rust_name(f.ty) {
            if let Some((g, off)) = find_field(inner, name) {
                return Some((g, f.offset + off));
            }
        }
    }
    None
}

/// Resolves a dotted path; returns (offset, size).
fn resolve(ty: &TypeInfo, path: &str) -> Result<(usize, usize), String> {
    let mut cur = ty;
    let mut offset = 0;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        // `Name[29]` keeps its count in the table; the Rust field is `Name`.
        let name = part.split('[').next().unwrap();
        let (f, off) =
            find_field(cur, name).ok_or_else(|| format!("{} has no field {name} (path {path})", cur.rust))?;
        offset += off;
        if i + 1 == parts.len() {
            return Ok((offset, f.size));
        }
        cur = type_by_rust_name(f.ty)
            .ok_or_else(|| format!("{}.{name} has type {} which is not declared", cur.rust, f.ty))?;
    }
    unreachable!()
}

#[test]
fn ffi_matches_windows_symbol_layouts() {
    let rows = rows();
    assert!(!rows.is_empty(), "the layout table has no rows");
    let mut checked_structs = 0;
    let mut checked_fields = 0;
    let mut failures = Vec::new();
    for ty in all_types() {
        let Some(rows) = rows.get(ty.c) else { continue };
        checked_structs += 1;
        for row in rows {
            if row.field == "*" {
                // NET_BUFFER_LIST grew between Windows versions; its total
                // size is never relied on (layout/README.md).
                if ty.c == "NET_BUFFER_LIST" {
                    continue;
                }
                let want = row.size.unwrap();
                if ty.size != want {
                    failures
                        .push(format!("line {}: sizeof({}) = {:#x}, Windows says {want:#x}", row.line, ty.c, ty.size));
                }
                continue;
            }
            if let Some((name, _bit)) = row.field.split_once(':') {
                // A bitfield: its storage must cover the offset.
                let off = row.offset.unwrap();
                let covered = ty.fields.iter().any(|f| f.offset <= off && off < f.offset + f.size.max(1));
                if !covered {
                    failures
                        .push(format!("line {}: no field of {} covers bitfield {name} at {off:#x}", row.line, ty.c));
                }
                checked_fields += 1;
                continue;
            }
            match resolve(ty, &row.field) {
                Ok((off, size)) => {
                    checked_fields += 1;
                    if Some(off) != row.offset {
                        failures.push(format!(
                            "line {}: {}.{} at {off:#x}, Windows says {:#x}",
                            row.line,
                            ty.c,
                            row.field,
                            row.offset.unwrap()
                        ));
                    }
                    if let Some(want) = row.size {
                        if size != want {
                            failures.push(format!(
                                "line {}: {}.{} is {size:#x} bytes, Windows says {want:#x}",
                                row.line, ty.c, row.field
                            ));
                        }
                    }
                }
                Err(e) => failures.push(format!("line {}: {e}", row.line)),
            }
        }
    }
    assert!(failures.is_empty(), "{} layout mismatches:\n{}", failures.len(), failures.join("\n"));
    assert!(checked_structs >= 40, "only {checked_structs} structs matched the table");
    assert!(checked_fields >= 400, "only {checked_fields} fields were checked");
    eprintln!("checked {checked_structs} structs and {checked_fields} fields");
}

#[test]
fn every_listed_struct_the_driver_uses_is_declared() {
    let rows = rows();
    let declared: Vec<&str> = all_types().map(|t| t.c).collect();
    let missing: Vec<&String> = rows.keys().filter(|k| !declared.contains(&k.as_str())).collect();
    assert!(missing.is_empty(), "structs in the table that ndis-sys does not declare: {missing:?}");
}

/// The `NetBufferListInfo` indices ndis-sys declares against the enum
/// table (`ndis-sys/layout/ndis-x64-enums.tsv`).
#[test]
fn net_buffer_list_info_indices_match_the_enum_table() {
    let path = root().join("ndis-sys/layout/ndis-x64-enums.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let table: BTreeMap<&str, usize> = text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (c.len() >= 3 && c[0] == "NDIS_NET_BUFFER_LIST_INFO").then(|| (c[1], c[2].parse().expect("a number")))
        })
        .collect();
    let declared = [
        ("TcpIpChecksumNetBufferListInfo", ndis_sys::TcpIpChecksumNetBufferListInfo),
        ("Ieee8021QNetBufferListInfo", ndis_sys::Ieee8021QNetBufferListInfo),
        ("NetBufferListCancelId", ndis_sys::NetBufferListCancelId),
        ("NetBufferListFrameType", ndis_sys::NetBufferListFrameType),
        ("NetBufferListHashValue", ndis_sys::NetBufferListHashValue),
        ("TcpReceiveBytesTransferred", ndis_sys::TcpReceiveBytesTransferred),
        ("UdpRecvSegCoalesceOffloadInfo", ndis_sys::UdpRecvSegCoalesceOffloadInfo),
        ("TcpRecvSegCoalesceInfo", ndis_sys::TcpRecvSegCoalesceInfo),
        ("RscTcpTimestampDelta", ndis_sys::RscTcpTimestampDelta),
        ("MaxNetBufferListInfo", ndis_sys::MAX_NET_BUFFER_LIST_INFO),
    ];
    for (name, value) in declared {
        assert_eq!(table.get(name), Some(&value), "{name}");
    }
}
