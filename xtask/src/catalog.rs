//! `rawnic.cat`: the driver package's catalog, and the Authenticode hash of a
//! PE image that it records for `rawnic.sys`.
//!
//! A catalog is a PKCS#7 SignedData whose content (of type szOID_CTL) is a
//! certificate trust list: a list of file hashes, each with attributes, plus
//! attributes for the whole catalog. This module writes the unsigned catalog
//! (the SignedData with the content and no signer) as DER; osslsigncode then
//! signs it like any other file, adding the signer info over the CTL.
//!
//! The layout follows what makecat writes for `CatalogVersion=2`
//! (SHA-256) and inf2cat for a driver package:
//!
//! ```text
//! CertificateTrustList ::= SEQUENCE {
//!     subjectUsage      SEQUENCE OF OBJECT IDENTIFIER, -- { szOID_CATALOG_LIST }
//!     listIdentifier    OCTET STRING,                  -- 16 bytes
//!     thisUpdate        UTCTime,                       -- the effective date
//!     subjectAlgorithm  AlgorithmIdentifier,           -- { szOID_CATALOG_LIST_MEMBER2, NULL }
//!     trustedSubjects   SEQUENCE OF SEQUENCE {
//!         subjectIdentifier OCTET STRING,              -- the member's tag: its hash
//!         attributes        SET OF Attribute },        -- File, OSAttr, member info, indirect data
//!     extensions [0] EXPLICIT SEQUENCE OF SEQUENCE {   -- catalog attributes
//!         id OBJECT IDENTIFIER, value OCTET STRING } } -- each a CAT_NAMEVALUE
//! ```
//!
//! In a version 2 catalog the tag is the SHA-256 itself (a version 1 catalog
//! writes the SHA-1 as UTF-16 hex text); tools show it as hex. A PE member's
//! indirect data is SPC_PE_IMAGE_DATA with the Authenticode hash, a flat
//! file's (the INF) is SPC_CAB_DATA's file link with the SHA-256 of the
//! whole file.

use der::asn1::{Any, BitString, BmpString, ContextSpecific, Null, ObjectIdentifier, OctetString, SetOfVec, UtcTime};
use der::{Decode, Encode, Sequence, Tag, TagMode, TagNumber, ValueOrd};
use sha2::{Digest, Sha256};
use spki::AlgorithmIdentifierOwned;
use std::time::Duration;

/// szOID_CTL: the content type of a catalog.
pub const SZOID_CTL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.10.1");
/// szOID_CATALOG_LIST: the CTL's subject usage.
pub const SZOID_CATALOG_LIST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.12.1.1");
/// szOID_CATALOG_LIST_MEMBER2: the subject algorithm of a version 2 catalog.
pub const SZOID_CATALOG_LIST_MEMBER2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.12.1.3");
/// CAT_NAMEVALUE_OBJID: a named attribute (File, OSAttr, HWID1, ...).
pub const CAT_NAMEVALUE_OBJID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.12.2.1");
/// CAT_MEMBERINFO2_OBJID: which subject interface package hashed a member.
pub const CAT_MEMBERINFO2_OBJID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.12.2.3");
/// SPC_INDIRECT_DATA_OBJID: a member's hash and what kind of file it is.
pub const SPC_INDIRECT_DATA_OBJID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.4");
/// SPC_PE_IMAGE_DATAOBJ: the member is a PE image, hashed the Authenticode way.
pub const SPC_PE_IMAGE_DATA_OBJID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.15");
/// SPC_CAB_DATA_OBJID: the type the flat-file subject interface package
/// gives a member hashed whole (an INF).
pub const SPC_CAB_DATA_OBJID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.25");
/// id-sha256.
pub const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
/// pkcs7-signedData.
pub const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");

/// CRYPTCAT_ATTR_AUTHENTICATED | CRYPTCAT_ATTR_DATAASCII | CRYPTCAT_ATTR_NAMEASCII,
/// the flags inf2cat gives every name-value attribute.
pub const NAMEVALUE_FLAGS: u32 = 0x1001_0001;

/// How a member was hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    /// A PE image: its Authenticode hash.
    Pe,
    /// Any other file: the SHA-256 of its bytes.
    Flat,
}

/// One file of the catalog.
#[derive(Debug, Clone)]
pub struct Member {
    /// The file name, as the INF names it.
    pub name: String,
    pub kind: MemberKind,
    /// SHA-256: the Authenticode hash for a PE image, else of the file.
    pub hash: [u8; 32],
}

impl Member {
    /// A member for `name` with the contents `data`, hashed as `kind` asks.
    pub fn new(name: &str, kind: MemberKind, data: &[u8]) -> Result<Member, String> {
        let hash = match kind {
            MemberKind::Pe => authenticode_sha256(data).map_err(|e| format!("{name}: {e}"))?,
            MemberKind::Flat => Sha256::digest(data).into(),
        };
        Ok(Member { name: name.to_string(), kind, hash })
    }
}

/// What the catalog says about itself and its members.
#[derive(Debug, Clone)]
pub struct CatalogInfo {
    /// `OSAttr`: the Windows versions the package is for ("2:10.0" is
    /// Windows 10 and later, NT platform).
    pub os_attr: String,
    /// `OS`: inf2cat's name for the same list ("_v100_X64").
    pub os: String,
    /// `HWID1`, `HWID2`, ...: the IDs of the INF's models, lowercased.
    pub hwids: Vec<String>,
    /// The effective date (seconds since 1970).
    pub this_update: u64,
}

#[derive(Sequence)]
struct CertificateTrustList {
    subject_usage: Vec<ObjectIdentifier>,
    list_identifier: OctetString,
    this_update: UtcTime,
    subject_algorithm: AlgorithmIdentifierOwned,
    trusted_subjects: Vec<TrustedSubject>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    extensions: Option<Vec<CatalogAttribute>>,
}

#[derive(Sequence)]
struct TrustedSubject {
    subject_identifier: OctetString,
    attributes: SetOfVec<Attribute>,
}

#[derive(Clone, Sequence, ValueOrd)]
struct Attribute {
    oid: ObjectIdentifier,
    values: SetOfVec<Any>,
}

/// A catalog-level attribute: an extension whose value is the DER of a
/// CAT_NAMEVALUE.
#[derive(Sequence)]
struct CatalogAttribute {
    oid: ObjectIdentifier,
    value: OctetString,
}

#[derive(Sequence)]
struct NameValue {
    name: BmpString,
    flags: u32,
    value: OctetString,
}

#[derive(Sequence)]
struct SpcIndirectDataContent {
    data: SpcAttributeTypeAndOptionalValue,
    message_digest: DigestInfo,
}

#[derive(Sequence)]
struct SpcAttributeTypeAndOptionalValue {
    kind: ObjectIdentifier,
    value: Any,
}

#[derive(Sequence)]
struct DigestInfo {
    algorithm: AlgorithmIdentifierOwned,
    digest: OctetString,
}

#[derive(Sequence)]
struct SpcPeImageData {
    flags: BitString,
    file: Any,
}

fn der_err(what: &str) -> impl Fn(der::Error) -> String + '_ {
    move |e| format!("encoding {what}: {e}")
}

/// UTF-16LE with a terminating NUL, as CAT_NAMEVALUE values are stored.
fn utf16le_z(s: &str) -> Vec<u8> {
    s.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect()
}

fn name_value(name: &str, value: &str) -> Result<NameValue, String> {
    Ok(NameValue {
        name: BmpString::from_utf8(name).map_err(der_err(name))?,
        flags: NAMEVALUE_FLAGS,
        value: OctetString::new(utf16le_z(value)).map_err(der_err(name))?,
    })
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, String> {
    Ok(Attribute { oid, values: SetOfVec::try_from(vec![value]).map_err(der_err("an attribute"))? })
}

fn name_value_attribute(name: &str, value: &str) -> Result<Attribute, String> {
    attribute(CAT_NAMEVALUE_OBJID, Any::encode_from(&name_value(name, value)?).map_err(der_err(name))?)
}

fn sha256_algorithm() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned { oid: ID_SHA256, parameters: Some(Any::from(Null)) }
}

/// SpcLink `file` (`[2] EXPLICIT SpcString`), the string `unicode`
/// (`[0] IMPLICIT BMPString`).
fn spc_file_link(text: &str) -> Result<ContextSpecific<ContextSpecific<BmpString>>, String> {
    let unicode = ContextSpecific {
        tag_number: TagNumber::N0,
        tag_mode: TagMode::Implicit,
        value: BmpString::from_utf8(text).map_err(der_err("a file link"))?,
    };
    Ok(ContextSpecific { tag_number: TagNumber::N2, tag_mode: TagMode::Explicit, value: unicode })
}

/// The SPC_INDIRECT_DATA of a member.
fn indirect_data(member: &Member) -> Result<Any, String> {
    let data = match member.kind {
        MemberKind::Pe => {
            // What signtool and osslsigncode write for a PE image: flags
            // { includeResources }, and the obsolete file link.
            let file = ContextSpecific {
                tag_number: TagNumber::N0,
                tag_mode: TagMode::Explicit,
                value: spc_file_link("<<<Obsolete>>>")?,
            };
            let image = SpcPeImageData {
                flags: BitString::new(7, vec![0x80]).map_err(der_err("SpcPeImageData"))?,
                file: Any::encode_from(&file).map_err(der_err("SpcPeImageData"))?,
            };
            SpcAttributeTypeAndOptionalValue {
                kind: SPC_PE_IMAGE_DATA_OBJID,
                value: Any::encode_from(&image).map_err(der_err("SpcPeImageData"))?,
            }
        }
        MemberKind::Flat => SpcAttributeTypeAndOptionalValue {
            kind: SPC_CAB_DATA_OBJID,
            value: Any::encode_from(&spc_file_link("")?).map_err(der_err("a flat file's link"))?,
        },
    };
    let content = SpcIndirectDataContent {
        data,
        message_digest: DigestInfo {
            algorithm: sha256_algorithm(),
            digest: OctetString::new(member.hash.to_vec()).map_err(der_err("a digest"))?,
        },
    };
    Any::encode_from(&content).map_err(der_err("SpcIndirectDataContent"))
}

/// CAT_MEMBERINFO2: `[0]` for the PE subject interface package, `[2]` for
/// the flat-file one (as makecat writes them in a version 2 catalog).
fn member_info(kind: MemberKind) -> Result<Any, String> {
    let number = match kind {
        MemberKind::Pe => TagNumber::N0,
        MemberKind::Flat => TagNumber::N2,
    };
    Any::new(Tag::ContextSpecific { constructed: false, number }, Vec::new()).map_err(der_err("member info"))
}

fn trusted_subject(member: &Member, info: &CatalogInfo) -> Result<TrustedSubject, String> {
    let attributes = vec![
        name_value_attribute("File", &member.name)?,
        name_value_attribute("OSAttr", &info.os_attr)?,
        attribute(CAT_MEMBERINFO2_OBJID, member_info(member.kind)?)?,
        attribute(SPC_INDIRECT_DATA_OBJID, indirect_data(member)?)?,
    ];
    Ok(TrustedSubject {
        subject_identifier: OctetString::new(member.hash.to_vec()).map_err(der_err("a tag"))?,
        attributes: SetOfVec::try_from(attributes).map_err(der_err("a member's attributes"))?,
    })
}

fn catalog_attribute(name: &str, value: &str) -> Result<CatalogAttribute, String> {
    let der = name_value(name, value)?.to_der().map_err(der_err(name))?;
    Ok(CatalogAttribute { oid: CAT_NAMEVALUE_OBJID, value: OctetString::new(der).map_err(der_err(name))? })
}

/// The DER of the certificate trust list. Members are sorted by tag, as
/// makecat sorts them; the list identifier is derived from the tags, so the
/// same files give the same catalog.
pub fn ctl_der(members: &[Member], info: &CatalogInfo) -> Result<Vec<u8>, String> {
    if members.is_empty() {
        return Err("a catalog needs at least one member".into());
    }
    let mut sorted: Vec<&Member> = members.iter().collect();
    sorted.sort_by_key(|a| a.hash);
    let mut id = Sha256::new();
    for m in &sorted {
        id.update(m.hash);
        id.update(m.name.as_bytes());
    }
    let list_identifier = id.finalize()[..16].to_vec();
    let mut extensions = vec![catalog_attribute("OSAttr", &info.os_attr)?, catalog_attribute("OS", &info.os)?];
    for (i, hwid) in info.hwids.iter().enumerate() {
        extensions.push(catalog_attribute(&format!("HWID{}", i + 1), hwid)?);
    }
    let ctl = CertificateTrustList {
        subject_usage: vec![SZOID_CATALOG_LIST],
        list_identifier: OctetString::new(list_identifier).map_err(der_err("the list identifier"))?,
        this_update: UtcTime::from_unix_duration(Duration::from_secs(info.this_update))
            .map_err(der_err("the effective date"))?,
        subject_algorithm: AlgorithmIdentifierOwned {
            oid: SZOID_CATALOG_LIST_MEMBER2,
            parameters: Some(Any::from(Null)),
        },
        trusted_subjects: sorted.iter().map(|m| trusted_subject(m, info)).collect::<Result<_, _>>()?,
        extensions: Some(extensions),
    };
    ctl.to_der().map_err(der_err("the certificate trust list"))
}

/// The unsigned catalog: a PKCS#7 SignedData (version 1) whose content is
/// the CTL itself (not wrapped in an OCTET STRING, as in every catalog),
/// with no digest algorithms, certificates or signers yet.
pub fn unsigned_catalog(members: &[Member], info: &CatalogInfo) -> Result<Vec<u8>, String> {
    use cms::content_info::{CmsVersion, ContentInfo};
    use cms::signed_data::{EncapsulatedContentInfo, SignedData, SignerInfos};
    let ctl = Any::from_der(&ctl_der(members, info)?).map_err(der_err("the CTL"))?;
    let signed = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::new(),
        encap_content_info: EncapsulatedContentInfo { econtent_type: SZOID_CTL, econtent: Some(ctl) },
        certificates: None,
        crls: None,
        signer_infos: SignerInfos(SetOfVec::new()),
    };
    let info = ContentInfo {
        content_type: ID_SIGNED_DATA,
        content: Any::encode_from(&signed).map_err(der_err("SignedData"))?,
    };
    info.to_der().map_err(der_err("the catalog"))
}

fn read_u16(data: &[u8], at: usize) -> Result<u16, String> {
    data.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]])).ok_or_else(|| "the file is too short".into())
}

fn read_u32(data: &[u8], at: usize) -> Result<u32, String> {
    data.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| "the file is too short".into())
}

/// The Authenticode SHA-256 of a PE image: the file's bytes less the
/// optional header's CheckSum, the certificate table's data directory entry
/// and the certificate table itself (which must be at the end of the file,
/// as signing puts it).
pub fn authenticode_sha256(data: &[u8]) -> Result<[u8; 32], String> {
    if data.get(..2) != Some(b"MZ") {
        return Err("not a PE image (no MZ header)".into());
    }
    let pe = read_u32(data, 0x3c)? as usize;
    if data.get(pe..pe + 4) != Some(b"PE\0\0") {
        return Err("not a PE image (no PE signature)".into());
    }
    let opt = pe + 4 + 20;
    let (count_at, dirs_at) = match read_u16(data, opt)? {
        0x10b => (opt + 92, opt + 96),
        0x20b => (opt + 108, opt + 112),
        magic => return Err(format!("unknown optional header magic {magic:#x}")),
    };
    if read_u32(data, count_at)? < 5 {
        return Err("the image has no certificate table directory entry".into());
    }
    let checksum = opt + 64;
    let cert_dir = dirs_at + 4 * 8;
    let (cert_at, cert_len) = (read_u32(data, cert_dir)? as usize, read_u32(data, cert_dir + 4)? as usize);
    let end = if cert_len == 0 {
        data.len()
    } else if cert_at.checked_add(cert_len) == Some(data.len()) {
        cert_at
    } else {
        return Err("the certificate table is not at the end of the file".into());
    };
    if end < cert_dir + 8 {
        return Err("the certificate table overlaps the headers".into());
    }
    let mut h = Sha256::new();
    h.update(&data[..checksum]);
    h.update(&data[checksum + 4..cert_dir]);
    h.update(&data[cert_dir + 8..end]);
    Ok(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> CatalogInfo {
        CatalogInfo {
            os_attr: "2:10.0".into(),
            os: "_v100_X64".into(),
            hwids: vec!["rawnic".into()],
            this_update: 1_700_000_000,
        }
    }

    #[test]
    fn the_same_members_give_the_same_catalog_in_any_order() {
        let a = Member { name: "a.inf".into(), kind: MemberKind::Flat, hash: [1; 32] };
        let b = Member { name: "b.inf".into(), kind: MemberKind::Flat, hash: [2; 32] };
        let one = unsigned_catalog(&[a.clone(), b.clone()], &info()).unwrap();
        let two = unsigned_catalog(&[b, a], &info()).unwrap();
        assert_eq!(one, two);
        assert!(unsigned_catalog(&[], &info()).is_err());
    }

    #[test]
    fn name_values_are_utf16le_with_a_terminator() {
        assert_eq!(utf16le_z("ab"), vec![b'a', 0, b'b', 0, 0, 0]);
        let der = name_value("File", "x").unwrap().to_der().unwrap();
        // SEQUENCE { BMPString "File", INTEGER 0x10010001, OCTET STRING "x\0" }
        let want = [
            0x30, 0x16, 0x1e, 0x08, 0, b'F', 0, b'i', 0, b'l', 0, b'e', 0x02, 0x04, 0x10, 0x01, 0x00, 0x01, 0x04, 0x04,
            b'x', 0, 0, 0,
        ];
        assert_eq!(der, want);
    }

    #[test]
    fn authenticode_hash_refuses_what_is_not_a_pe_image() {
        assert!(authenticode_sha256(b"not a PE image").is_err());
        assert!(authenticode_sha256(b"MZ").is_err());
    }
}
