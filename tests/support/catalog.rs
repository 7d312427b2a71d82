//! Reads a catalog (`.cat`) back: the PKCS#7 wrapper with the `cms` crate,
//! the certificate trust list inside by walking its DER element by element.
//! Written from the catalog layout (makecat's version 2 catalogs, Samba's
//! mscat ASN.1), independently of the writer in `xtask/src/catalog.rs`.

use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use der::asn1::{Any, ObjectIdentifier as Oid};
use der::{Decode, Encode, Reader, SliceReader, Tag, Tagged};

pub const SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
pub const SZOID_CTL: &str = "1.3.6.1.4.1.311.10.1";
pub const CATALOG_LIST: &str = "1.3.6.1.4.1.311.12.1.1";
pub const CATALOG_LIST_MEMBER: &str = "1.3.6.1.4.1.311.12.1.2";
pub const CATALOG_LIST_MEMBER2: &str = "1.3.6.1.4.1.311.12.1.3";
pub const CAT_NAMEVALUE: &str = "1.3.6.1.4.1.311.12.2.1";
pub const SPC_INDIRECT_DATA: &str = "1.3.6.1.4.1.311.2.1.4";
pub const SPC_PE_IMAGE_DATA: &str = "1.3.6.1.4.1.311.2.1.15";
pub const SPC_CAB_DATA: &str = "1.3.6.1.4.1.311.2.1.25";
pub const SHA256: &str = "2.16.840.1.101.3.4.2.1";
pub const CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
pub const MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";

/// A name-value attribute (`CAT_NAMEVALUE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameValue {
    pub name: String,
    pub flags: u32,
    pub value: String,
}

/// One member of the trust list.
#[derive(Debug, Clone)]
pub struct Member {
    /// The subject identifier (the tag).
    pub tag: Vec<u8>,
    /// Every attribute's OID.
    pub attribute_oids: Vec<String>,
    /// The member's name-value attributes (`File`, `OSAttr`).
    pub names: Vec<NameValue>,
    /// SPC_INDIRECT_DATA: the type of data (PE image, flat file), the
    /// digest algorithm and the digest.
    pub data_type: String,
    pub digest_algorithm: String,
    pub digest: Vec<u8>,
}

impl Member {
    pub fn name(&self, name: &str) -> Option<&str> {
        self.names.iter().find(|n| n.name == name).map(|n| n.value.as_str())
    }
}

/// What a catalog holds.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub subject_usage: Vec<String>,
    pub list_identifier: Vec<u8>,
    /// `thisUpdate` as written (UTCTime text, `YYMMDDhhmmssZ`).
    pub this_update: String,
    pub subject_algorithm: String,
    pub members: Vec<Member>,
    /// The catalog-level attributes.
    pub attributes: Vec<NameValue>,
    /// The encoded certificate trust list's value (what the signature's
    /// message digest covers).
    pub ctl_value: Vec<u8>,
    /// The signers' digest algorithms and their signed attributes
    /// (contentType, messageDigest) as (OID, DER of the value).
    pub signers: Vec<Signer>,
    /// The certificates the SignedData carries, DER.
    pub certificates: Vec<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct Signer {
    pub digest_algorithm: String,
    pub content_type: Option<String>,
    pub message_digest: Option<Vec<u8>>,
}

fn err<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> String {
    move |e| format!("{what}: {e}")
}

/// The elements of a constructed value.
fn elements(value: &[u8]) -> Result<Vec<Any>, String> {
    let mut r = SliceReader::new(value).map_err(err("reading a constructed value"))?;
    let mut out = Vec::new();
    while !r.is_finished() {
        out.push(Any::decode(&mut r).map_err(err("reading an element"))?);
    }
    Ok(out)
}

fn expect_tag(any: &Any, tag: Tag, what: &str) -> Result<(), String> {
    if any.tag() != tag {
        return Err(format!("{what}: expected {tag}, found {}", any.tag()));
    }
    Ok(())
}

fn oid(any: &Any) -> Result<String, String> {
    Ok(any.decode_as::<Oid>().map_err(err("an OID"))?.to_string())
}

fn octets(any: &Any, what: &str) -> Result<Vec<u8>, String> {
    expect_tag(any, Tag::OctetString, what)?;
    Ok(any.value().to_vec())
}

fn utf16le(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes.chunks(2).map(|c| u16::from_le_bytes([c[0], *c.get(1).unwrap_or(&0)])).collect();
    String::from_utf16_lossy(&units).trim_end_matches('\0').to_string()
}

fn utf16be(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes.chunks(2).map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])).collect();
    String::from_utf16_lossy(&units)
}

/// CatNameValue ::= SEQUENCE { name BMPString, flags INTEGER, value OCTET STRING }
fn name_value(any: &Any) -> Result<NameValue, String> {
    expect_tag(any, Tag::Sequence, "a name-value")?;
    let e = elements(any.value())?;
    if e.len() != 3 {
        return Err(format!("a name-value has {} elements, not 3", e.len()));
    }
    expect_tag(&e[0], Tag::BmpString, "a name-value's name")?;
    let flags = e[1].decode_as::<u32>().map_err(err("a name-value's flags"))?;
    Ok(NameValue { name: utf16be(e[0].value()), flags, value: utf16le(&octets(&e[2], "a name-value's value")?) })
}

fn member(any: &Any) -> Result<Member, String> {
    expect_tag(any, Tag::Sequence, "a member")?;
    let e = elements(any.value())?;
    let tag = octets(e.first().ok_or("a member has no tag")?, "a member's tag")?;
    let mut m = Member {
        tag,
        attribute_oids: Vec::new(),
        names: Vec::new(),
        data_type: String::new(),
        digest_algorithm: String::new(),
        digest: Vec::new(),
    };
    let Some(attrs) = e.get(1) else { return Ok(m) };
    expect_tag(attrs, Tag::Set, "a member's attributes")?;
    for attr in elements(attrs.value())? {
        // Attribute ::= SEQUENCE { type OBJECT IDENTIFIER, values SET OF ANY }
        let a = elements(attr.value())?;
        let kind = oid(a.first().ok_or("an attribute has no type")?)?;
        let values = a.get(1).ok_or("an attribute has no values")?;
        expect_tag(values, Tag::Set, "an attribute's values")?;
        let values = elements(values.value())?;
        if kind == CAT_NAMEVALUE {
            for v in &values {
                m.names.push(name_value(v)?);
            }
        } else if kind == SPC_INDIRECT_DATA {
            // SpcIndirectDataContent ::= SEQUENCE {
            //     data SEQUENCE { type OBJECT IDENTIFIER, value ANY },
            //     messageDigest SEQUENCE { AlgorithmIdentifier, OCTET STRING } }
            let content = elements(values.first().ok_or("indirect data without a value")?.value())?;
            let data = elements(content.first().ok_or("indirect data without data")?.value())?;
            m.data_type = oid(data.first().ok_or("indirect data without a type")?)?;
            let digest = elements(content.get(1).ok_or("indirect data without a digest")?.value())?;
            let algorithm = elements(digest.first().ok_or("a digest without an algorithm")?.value())?;
            m.digest_algorithm = oid(algorithm.first().ok_or("an empty algorithm identifier")?)?;
            m.digest = octets(digest.get(1).ok_or("a digest without its value")?, "a digest")?;
        }
        m.attribute_oids.push(kind);
    }
    Ok(m)
}

/// Parses a catalog file.
pub fn parse(data: &[u8]) -> Result<Catalog, String> {
    let info = ContentInfo::from_der(data).map_err(err("the catalog is not a PKCS#7 ContentInfo"))?;
    if info.content_type.to_string() != SIGNED_DATA {
        return Err(format!("the catalog's content type is {}, not signedData", info.content_type));
    }
    let signed = SignedData::from_der(&info.content.to_der().map_err(err("re-encoding"))?)
        .map_err(err("the catalog's SignedData"))?;
    let content_type = signed.encap_content_info.econtent_type.to_string();
    if content_type != SZOID_CTL {
        return Err(format!("the SignedData holds {content_type}, not a certificate trust list (szOID_CTL)"));
    }
    let ctl = signed.encap_content_info.econtent.as_ref().ok_or("the SignedData has no content")?;
    expect_tag(ctl, Tag::Sequence, "the certificate trust list")?;
    let e = elements(ctl.value())?;
    if e.len() < 5 {
        return Err(format!("the certificate trust list has {} elements", e.len()));
    }
    // The optional version and sequence number are absent in catalogs.
    let subject_usage = elements(e[0].value())?.iter().map(oid).collect::<Result<_, _>>()?;
    let list_identifier = octets(&e[1], "the list identifier")?;
    expect_tag(&e[2], Tag::UtcTime, "thisUpdate")?;
    let this_update = String::from_utf8_lossy(e[2].value()).to_string();
    let subject_algorithm = oid(elements(e[3].value())?.first().ok_or("an empty subject algorithm")?)?;
    expect_tag(&e[4], Tag::Sequence, "the trusted subjects")?;
    let members = elements(e[4].value())?.iter().map(member).collect::<Result<_, _>>()?;
    let mut attributes = Vec::new();
    if let Some(ext) = e.get(5) {
        // [0] EXPLICIT SEQUENCE OF SEQUENCE { OID, OCTET STRING (a name-value's DER) }
        let inner = elements(ext.value())?;
        for x in elements(inner.first().ok_or("empty catalog attributes")?.value())? {
            let x = elements(x.value())?;
            if oid(x.first().ok_or("a catalog attribute without a type")?)? == CAT_NAMEVALUE {
                let value = octets(x.last().ok_or("a catalog attribute without a value")?, "a catalog attribute")?;
                attributes.push(name_value(&Any::from_der(&value).map_err(err("a catalog attribute's value"))?)?);
            }
        }
    }
    let mut signers = Vec::new();
    for si in signed.signer_infos.0.iter() {
        let mut s =
            Signer { digest_algorithm: si.digest_alg.oid.to_string(), content_type: None, message_digest: None };
        for attr in si.signed_attrs.iter().flat_map(|a| a.iter()) {
            let value = attr.values.iter().next();
            match attr.oid.to_string().as_str() {
                CONTENT_TYPE => s.content_type = value.map(oid).transpose()?,
                MESSAGE_DIGEST => s.message_digest = value.map(|v| octets(v, "messageDigest")).transpose()?,
                _ => {}
            }
        }
        signers.push(s);
    }
    let mut certificates = Vec::new();
    for c in signed.certificates.iter().flat_map(|set| set.0.iter()) {
        certificates.push(c.to_der().map_err(err("a certificate"))?);
    }
    Ok(Catalog {
        subject_usage,
        list_identifier,
        this_update,
        subject_algorithm,
        members,
        attributes,
        ctl_value: ctl.value().to_vec(),
        signers,
        certificates,
    })
}
