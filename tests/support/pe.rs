//! Facts about a PE image, read with the `object` crate.

use object::LittleEndian as LE;
use object::pe;
use object::read::pe::{ImageNtHeaders, PeFile64};

/// The PE checksum as the loader computes it: 16-bit one's-complement-style
/// sum of the file with the checksum field taken as zero, plus the length.
pub fn pe_checksum(data: &[u8]) -> u32 {
    let pe_off = u32::from_le_bytes(data[0x3c..0x40].try_into().unwrap()) as usize;
    let field = pe_off + 4 + 20 + 64;
    let mut sum: u64 = 0;
    let mut i = 0;
    while i < data.len() {
        if i == field || i == field + 2 {
            i += 2;
            continue;
        }
        let lo = data[i] as u64;
        let hi = if i + 1 < data.len() { data[i + 1] as u64 } else { 0 };
        sum += lo | (hi << 8);
        sum = (sum & 0xffff) + (sum >> 16);
        i += 2;
    }
    sum = (sum & 0xffff) + (sum >> 16);
    (sum as u32).wrapping_add(data.len() as u32)
}

/// The header checksum field.
pub fn header_checksum(file: &PeFile64<'_>) -> u32 {
    file.nt_headers().optional_header().check_sum.get(LE)
}

/// (dll, function) for every import, names as the table spells them.
pub fn imports(file: &PeFile64<'_>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let table = file.import_table().unwrap().expect("the image imports something");
    let mut descs = table.descriptors().unwrap();
    while let Some(d) = descs.next().unwrap() {
        let dll = String::from_utf8_lossy(table.name(d.name.get(LE)).unwrap()).to_string();
        let thunk = d.original_first_thunk.get(LE);
        let thunk = if thunk == 0 { d.first_thunk.get(LE) } else { thunk };
        let mut thunks = table.thunks(thunk).unwrap();
        while let Some(t) = thunks.next::<pe::ImageNtHeaders64>().unwrap() {
            let name = match table.import::<pe::ImageNtHeaders64>(t).unwrap() {
                object::read::pe::Import::Name(_, n) => String::from_utf8_lossy(n).to_string(),
                object::read::pe::Import::Ordinal(o) => format!("#{o}"),
            };
            out.push((dll.clone(), name));
        }
    }
    out
}

/// The RVA of `name` in an lld-link `/MAP` file ("Publics by Value",
/// whose third column is RVA + preferred base).
pub fn map_symbol_rva(map: &str, name: &str) -> Option<u32> {
    let base = map
        .lines()
        .find_map(|l| l.trim().strip_prefix("Preferred load address is "))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())?;
    map.lines().find_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        if cols.len() >= 3 && cols[1] == name {
            let va = u64::from_str_radix(cols[2], 16).ok()?;
            Some((va - base) as u32)
        } else {
            None
        }
    })
}

/// The Authenticode SHA-256 of a PE32+ image, computed as the Authenticode
/// specification describes it (not as xtask does): the headers up to
/// SizeOfHeaders less the CheckSum field and the certificate table's data
/// directory entry, then each section's raw data in file order, then any
/// data after the last section that is not the certificate table.
pub fn authenticode_sha256(data: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let file = PeFile64::parse(data).expect("a PE32+ image");
    let nt_offset = u32::from_le_bytes(data[0x3c..0x40].try_into().unwrap()) as usize;
    let optional = nt_offset + 4 + std::mem::size_of::<pe::ImageFileHeader>();
    let checksum = optional + std::mem::offset_of!(pe::ImageOptionalHeader64, check_sum);
    let cert_entry = optional
        + std::mem::size_of::<pe::ImageOptionalHeader64>()
        + pe::IMAGE_DIRECTORY_ENTRY_SECURITY * std::mem::size_of::<pe::ImageDataDirectory>();
    let headers = file.nt_headers().optional_header().size_of_headers.get(LE) as usize;
    let cert_size =
        file.data_directories().get(pe::IMAGE_DIRECTORY_ENTRY_SECURITY).map(|d| d.size.get(LE) as usize).unwrap_or(0);
    let mut h = Sha256::new();
    h.update(&data[..checksum]);
    h.update(&data[checksum + 4..cert_entry]);
    h.update(&data[cert_entry + 8..headers]);
    let mut sections: Vec<(usize, usize)> = file
        .section_table()
        .iter()
        .map(|s| (s.pointer_to_raw_data.get(LE) as usize, s.size_of_raw_data.get(LE) as usize))
        .filter(|&(_, size)| size > 0)
        .collect();
    sections.sort();
    let mut hashed = headers;
    for (at, size) in sections {
        h.update(&data[at..at + size]);
        hashed += size;
    }
    let extra = data.len() - cert_size;
    if extra > hashed {
        h.update(&data[hashed..extra]);
    }
    h.finalize().into()
}

/// The certificate table (Authenticode signatures): its file offset and
/// size, if the image has one.
pub fn certificate_table(data: &[u8]) -> Option<(usize, usize)> {
    let file = PeFile64::parse(data).ok()?;
    let dir = file.data_directories().get(pe::IMAGE_DIRECTORY_ENTRY_SECURITY)?;
    let (at, size) = (dir.virtual_address.get(LE) as usize, dir.size.get(LE) as usize);
    (size > 0).then_some((at, size))
}

/// The byte ranges of an image that a link writes afresh each time, whatever
/// the sources: the file header's time stamp, the optional header's
/// checksum, and for each debug directory entry its time stamp and, for a
/// CodeView record, the PDB's id and age (the PDB records the build's paths
/// and rustc's temporary files). Everything else of two builds of one
/// commit must match (`tests/reproducible.rs`).
pub fn link_fields(data: &[u8]) -> Vec<std::ops::Range<usize>> {
    let file = PeFile64::parse(data).expect("a PE32+ image");
    let pe_off = u32::from_le_bytes(data[0x3c..0x40].try_into().unwrap()) as usize;
    let mut out = vec![pe_off + 8..pe_off + 12, pe_off + 24 + 64..pe_off + 24 + 68];
    let Some(dir) = file.data_directory(pe::IMAGE_DIRECTORY_ENTRY_DEBUG) else { return out };
    let (start, size) = dir.file_range(&file.section_table()).expect("the debug directory lies in a section");
    let (start, size) = (start as usize, size as usize);
    let entry = std::mem::size_of::<pe::ImageDebugDirectory>();
    for e in (start..start + size).step_by(entry) {
        out.push(e + 4..e + 8);
        let kind = u32::from_le_bytes(data[e + 12..e + 16].try_into().unwrap());
        let raw = u32::from_le_bytes(data[e + 24..e + 28].try_into().unwrap()) as usize;
        if kind == pe::IMAGE_DEBUG_TYPE_CODEVIEW && data.get(raw..raw + 4) == Some(b"RSDS") {
            out.push(raw + 4..raw + 24);
        }
    }
    out
}
