//! Which member of a header's structure is which member of ndis-sys's.
//!
//! Both sides are reduced to names: for every record (struct or union), its
//! members in order with the Rust type each is declared with. ndis-sys's
//! side comes from its field tables (`ndis_sys::layout`); the header side
//! from the Rust that bindgen generated. The walk pairs every member that
//! ndis-sys declares with the header member of the same C name, looking
//! through anonymous members on both sides as C does (ndis-sys names them
//! `anon*`, bindgen `__bindgen_anon_*`). It produces Rust field paths, which
//! the build script turns into `offset!` and `member_size!` expressions; no
//! number is computed here.
//!
//! This file is compiled twice: into the library (its tests) and, through
//! `#[path]`, into the build script that generates the checks.

use std::collections::BTreeMap;

/// ndis-sys members that have no C member name, so nothing in a header can
/// be paired with them, each with its reason. The structure that holds them
/// is still compared as a whole (its size, and every other member).
pub const NOT_IN_C: &[(&str, &str, &str)] = &[
    ("KDPC", "Opaque", "ndis-sys declares KDPC opaque: the driver never touches its members"),
    ("KAPC", "Opaque", "ndis-sys declares KAPC opaque: the driver never touches its members"),
    (
        "WAIT_CONTEXT_BLOCK",
        "Opaque",
        "ndis-sys declares WAIT_CONTEXT_BLOCK opaque: the driver never touches its members",
    ),
    (
        "KDEVICE_QUEUE_BUSY",
        "Bits",
        "the storage of C's anonymous `Reserved:8, Hint:56` bitfield, which has no member name",
    ),
];

/// ndis-sys structures whose total size is deliberately not the header's.
pub const SIZE_NOT_CHECKED: &[(&str, &str)] = &[
    ("NET_BUFFER_LIST", "NDIS allocates NBLs and NetBufferListInfo grew between Windows versions (layout/README.md)"),
    ("ACCESS_STATE", "ndis-sys declares ACCESS_STATE up to SubjectSecurityContext, the part rawnic reads"),
];

/// A member as one side declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    /// The Rust type as written (`IRP_TAIL`, `* mut _MDL`, `[PVOID ; 4usize]`).
    pub ty: String,
}

/// One side's records by Rust name, and its type aliases (typedefs).
#[derive(Debug, Clone, Default)]
pub struct Model {
    pub records: BTreeMap<String, Vec<Member>>,
    pub aliases: BTreeMap<String, String>,
}

/// True for a member that C declares without a name.
pub fn is_anonymous(name: &str) -> bool {
    name.starts_with("anon") || name.starts_with("__bindgen_anon_")
}

/// True for an ndis-sys member that exists only to spell out C's implicit
/// padding (`_pad0`).
pub fn is_padding(name: &str) -> bool {
    name.starts_with("_pad")
}

impl Model {
    /// ndis-sys's side, from its field tables.
    pub fn from_ndis_sys<'a>(types: impl IntoIterator<Item = &'a ndis_sys::layout::TypeInfo>) -> Self {
        let mut model = Model::default();
        for t in types {
            let members = t.fields.iter().map(|f| Member { name: f.name.to_string(), ty: f.ty.to_string() }).collect();
            model.records.insert(t.rust.to_string(), members);
        }
        model
    }

    /// The record `ty` names, directly or through aliases, with its Rust name.
    pub fn record(&self, ty: &str) -> Option<(&str, &[Member])> {
        let mut name = ty.trim();
        for _ in 0..16 {
            if let Some((k, members)) = self.records.get_key_value(name) {
                return Some((k.as_str(), members.as_slice()));
            }
            name = self.aliases.get(name)?.trim();
        }
        None
    }

    /// The member of record `rec` whose C name is `name`, looking through
    /// anonymous members: its Rust path relative to `rec` and its type.
    pub fn find(&self, rec: &str, name: &str) -> Option<(Vec<String>, String)> {
        let (_, members) = self.record(rec)?;
        if let Some(m) = members.iter().find(|m| m.name == name) {
            return Some((vec![m.name.clone()], m.ty.clone()));
        }
        for m in members.iter().filter(|m| is_anonymous(&m.name)) {
            if let Some((mut path, ty)) = self.find(&m.ty, name) {
                path.insert(0, m.name.clone());
                return Some((path, ty));
            }
        }
        None
    }
}

/// One member of an ndis-sys structure and, where the header has it, the
/// header's member of the same C name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// The C member path (`Tail.Overlay.Thread`).
    pub c_path: String,
    /// The Rust field path in ndis-sys's structure (`Tail.Overlay.anon.Thread`).
    pub ours: Vec<String>,
    /// The Rust field path in bindgen's structure, if the header declares the member.
    pub theirs: Option<Vec<String>>,
}

/// Pairs every member of ndis-sys's record `ours_root` (nested records
/// included, padding and `NOT_IN_C` members left out) with the header's
/// record `theirs_root`.
pub fn pair_members(ours: &Model, ours_root: &str, theirs: &Model, theirs_root: &str) -> Vec<Pair> {
    let mut out = Vec::new();
    walk(ours, ours_root, &[], theirs, theirs_root, &[], "", &mut out);
    out
}

#[allow(clippy::too_many_arguments)]
fn walk(
    ours: &Model,
    ours_rec: &str,
    ours_prefix: &[String],
    theirs: &Model,
    theirs_rec: &str,
    theirs_prefix: &[String],
    c_prefix: &str,
    out: &mut Vec<Pair>,
) {
    let Some((ours_name, members)) = ours.record(ours_rec) else { return };
    for m in members {
        if is_padding(&m.name) || NOT_IN_C.iter().any(|(t, f, _)| *t == ours_name && *f == m.name) {
            continue;
        }
        let mut ours_path = ours_prefix.to_vec();
        ours_path.push(m.name.clone());
        if is_anonymous(&m.name) {
            // C reaches an anonymous member's members by their own names.
            walk(ours, &m.ty, &ours_path, theirs, theirs_rec, theirs_prefix, c_prefix, out);
            continue;
        }
        let c_path = format!("{c_prefix}{}", m.name);
        match theirs.find(theirs_rec, &m.name) {
            None => out.push(Pair { c_path, ours: ours_path, theirs: None }),
            Some((rel, their_ty)) => {
                let mut theirs_path = theirs_prefix.to_vec();
                theirs_path.extend(rel);
                out.push(Pair { c_path: c_path.clone(), ours: ours_path.clone(), theirs: Some(theirs_path.clone()) });
                if ours.record(&m.ty).is_some() && theirs.record(&their_ty).is_some() {
                    walk(ours, &m.ty, &ours_path, theirs, &their_ty, &theirs_path, &format!("{c_path}."), out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(records: &[(&str, &[(&str, &str)])], aliases: &[(&str, &str)]) -> Model {
        Model {
            records: records
                .iter()
                .map(|(n, ms)| {
                    (n.to_string(), ms.iter().map(|(m, t)| Member { name: m.to_string(), ty: t.to_string() }).collect())
                })
                .collect(),
            aliases: aliases.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
        }
    }

    #[test]
    fn pairs_through_anonymous_members_and_aliases_on_both_sides() {
        let ours = model(
            &[
                ("S", &[("A", "u32"), ("_pad0", "u32"), ("anon", "S_U"), ("N", "S_N")]),
                ("S_U", &[("B", "u8"), ("C", "u16")]),
                ("S_N", &[("D", "u8"), ("E", "u8")]),
            ],
            &[],
        );
        let theirs = model(
            &[
                ("_S", &[("A", "ULONG"), ("__bindgen_anon_1", "_S__bindgen_ty_1"), ("N", "N_T")]),
                ("_S__bindgen_ty_1", &[("B", "u8"), ("__bindgen_anon_1", "_S__bindgen_ty_2")]),
                ("_S__bindgen_ty_2", &[("C", "u16")]),
                ("_N", &[("D", "u8")]),
            ],
            &[("S", "_S"), ("N_T", "_N")],
        );
        let (root, _) = theirs.record("S").unwrap();
        let pairs = pair_members(&ours, "S", &theirs, root);
        let got: Vec<(String, String, Option<String>)> =
            pairs.into_iter().map(|p| (p.c_path, p.ours.join("."), p.theirs.map(|t| t.join(".")))).collect();
        let want = [
            ("A", "A", Some("A")),
            ("B", "anon.B", Some("__bindgen_anon_1.B")),
            ("C", "anon.C", Some("__bindgen_anon_1.__bindgen_anon_1.C")),
            ("N", "N", Some("N")),
            ("N.D", "N.D", Some("N.D")),
            ("N.E", "N.E", None),
        ];
        let want: Vec<(String, String, Option<String>)> =
            want.iter().map(|(c, o, t)| (c.to_string(), o.to_string(), t.map(str::to_string))).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn the_exception_lists_name_what_ndis_sys_declares() {
        let ours = Model::from_ndis_sys(ndis_sys::layout::all_types());
        for (ty, field, _) in NOT_IN_C {
            let (_, members) = ours.record(ty).unwrap_or_else(|| panic!("NOT_IN_C: ndis-sys declares no {ty}"));
            assert!(members.iter().any(|m| m.name == *field), "NOT_IN_C: {ty} has no member {field}");
        }
        for (c, _) in SIZE_NOT_CHECKED {
            assert!(ndis_sys::layout::all_types().any(|t| t.c == *c), "SIZE_NOT_CHECKED: ndis-sys declares no {c}");
        }
    }
}
