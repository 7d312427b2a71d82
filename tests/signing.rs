//! The package's signatures and catalog: osslsigncode verifies the
//! Authenticode signatures of rawnic.sys and rawnicctl.exe against the test
//! certificate the package carries, and refuses a changed byte; an
//! independent reader (tests/support/catalog.rs) takes rawnic.cat apart and
//! its hashes match hashes recomputed here from the files.

use rawnic_tests::catalog::{self, Catalog};
use rawnic_tests::inf::Inf;
use rawnic_tests::signing::{pem_certificate, scratch, verify};
use rawnic_tests::{package_dir, pe, rawnic_sys};
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};

fn read(name: &str) -> Vec<u8> {
    fs::read(package_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The test certificate as PEM, in a scratch directory, for -CAfile.
fn ca_file(test: &str) -> PathBuf {
    let dir = scratch(test);
    let pem = dir.join("rawnic-test.pem");
    fs::write(&pem, pem_certificate(&read("rawnic-test.cer"))).unwrap();
    pem
}

fn verify_ok(file: &Path, ca: &Path) -> String {
    let (ok, out) = verify(&[Path::new("-CAfile"), ca, Path::new("-in"), file]);
    assert!(ok, "osslsigncode verify {}:\n{out}", file.display());
    assert!(out.contains("Signature verification: ok"), "{out}");
    out
}

fn the_catalog() -> Catalog {
    catalog::parse(&read("rawnic.cat")).unwrap_or_else(|e| panic!("rawnic.cat: {e}"))
}

/// The hex digest after `label` in osslsigncode's output.
fn printed_digest(out: &str, label: &str) -> String {
    let line = out.lines().find(|l| l.trim_start().starts_with(label)).unwrap_or_else(|| panic!("no {label}:\n{out}"));
    line.split(':').nth(1).unwrap().split_whitespace().next().unwrap().to_ascii_lowercase()
}

#[test]
fn the_driver_and_rawnicctl_are_signed_with_the_test_certificate() {
    let ca = ca_file("signed");
    let out = verify_ok(&rawnic_sys(), &ca);
    // osslsigncode's Authenticode hash of the image is the one computed here.
    let ours = hex(&pe::authenticode_sha256(&read("rawnic.sys")));
    assert_eq!(printed_digest(&out, "Calculated message digest"), ours);
    assert_eq!(printed_digest(&out, "Current message digest"), ours);
    assert!(out.contains("SHA256"), "not a SHA-256 signature:\n{out}");
    // Signing keeps the image's checksum right (tests/pe.rs checks the rest).
    let image = read("rawnic.sys");
    let file = object::read::pe::PeFile64::parse(&image[..]).unwrap();
    assert_eq!(pe::header_checksum(&file), pe::pe_checksum(&image), "the signed image's checksum");
    assert!(pe::certificate_table(&image).is_some(), "rawnic.sys has no certificate table");
    let exe = package_dir().join("rawnicctl.exe");
    if exe.is_file() {
        let out = verify_ok(&exe, &ca);
        assert_eq!(
            printed_digest(&out, "Calculated message digest"),
            hex(&pe::authenticode_sha256(&read("rawnicctl.exe")))
        );
    } else {
        eprintln!("rawnicctl.exe is not in the package (built by `cargo make package`); not checked");
    }
    let _ = fs::remove_dir_all(ca.parent().unwrap());
}

#[test]
fn one_changed_byte_fails_verification() {
    let ca = ca_file("changed");
    let image = read("rawnic.sys");
    let file = object::read::pe::PeFile64::parse(&image[..]).unwrap();
    let text = file.section_table().iter().find(|s| &s.name == b".text\0\0\0").expect("a .text section");
    let at = text.pointer_to_raw_data.get(object::LittleEndian) as usize + 0x40;
    let mut changed = image.clone();
    changed[at] ^= 0x01;
    let path = ca.with_file_name("rawnic.sys");
    fs::write(&path, &changed).unwrap();
    let (ok, out) = verify(&[Path::new("-CAfile"), &ca, Path::new("-in"), &path]);
    assert!(!ok && out.contains("MISMATCH"), "a changed rawnic.sys still verifies:\n{out}");
    let cat = package_dir().join("rawnic.cat");
    let (ok, out) = verify(&[Path::new("-CAfile"), &ca, Path::new("-catalog"), &cat, Path::new("-in"), &path]);
    assert!(!ok, "a changed rawnic.sys is still in the catalog:\n{out}");
    // The unchanged image is in the catalog.
    let (ok, out) = verify(&[Path::new("-CAfile"), &ca, Path::new("-catalog"), &cat, Path::new("-in"), &rawnic_sys()]);
    assert!(ok, "osslsigncode verify -catalog rawnic.cat -in rawnic.sys:\n{out}");
    let _ = fs::remove_dir_all(ca.parent().unwrap());
}

#[test]
fn the_catalog_is_signed_with_the_test_certificate() {
    let ca = ca_file("catalog");
    verify_ok(&package_dir().join("rawnic.cat"), &ca);
    let cat = the_catalog();
    assert_eq!(cat.signers.len(), 1, "one signer");
    let signer = &cat.signers[0];
    assert_eq!(signer.digest_algorithm, catalog::SHA256);
    assert_eq!(signer.content_type.as_deref(), Some(catalog::SZOID_CTL), "the signed content type");
    // The signature covers the trust list: its message digest is the
    // SHA-256 of the list's contents octets (PKCS#7 for content that is not
    // `data`).
    assert_eq!(signer.message_digest.as_deref(), Some(&Sha256::digest(&cat.ctl_value)[..]));
    assert!(cat.certificates.contains(&read("rawnic-test.cer")), "the catalog does not carry rawnic-test.cer");
    let _ = fs::remove_dir_all(ca.parent().unwrap());
}

#[test]
fn the_catalog_lists_the_driver_and_the_inf_with_their_hashes() {
    let cat = the_catalog();
    assert_eq!(cat.subject_usage, [catalog::CATALOG_LIST]);
    assert_eq!(cat.subject_algorithm, catalog::CATALOG_LIST_MEMBER2, "a version 2 (SHA-256) catalog");
    assert_eq!(cat.list_identifier.len(), 16);
    let mut names: Vec<&str> = cat.members.iter().filter_map(|m| m.name("File")).collect();
    names.sort();
    assert_eq!(names, ["rawnic.inf", "rawnic.sys"]);
    for m in &cat.members {
        let file = m.name("File").unwrap();
        let (want, kind) = match file {
            "rawnic.sys" => (pe::authenticode_sha256(&read(file)).to_vec(), catalog::SPC_PE_IMAGE_DATA),
            _ => (Sha256::digest(read(file)).to_vec(), catalog::SPC_CAB_DATA),
        };
        assert_eq!(hex(&m.digest), hex(&want), "{file}'s hash in the catalog");
        assert_eq!(m.tag, want, "{file}'s tag is its hash");
        assert_eq!(m.data_type, kind, "{file}'s subject type");
        assert_eq!(m.digest_algorithm, catalog::SHA256);
        assert_eq!(m.name("OSAttr"), Some("2:10.0"), "{file}'s OSAttr");
        assert!(m.names.iter().all(|n| n.flags == 0x1001_0001), "{file}: {:?}", m.names);
    }
    // Members are sorted by tag, as makecat writes them.
    assert!(cat.members.windows(2).all(|w| w[0].tag < w[1].tag));
}

#[test]
fn the_catalog_is_for_windows_10_x64_and_the_inf_component() {
    let cat = the_catalog();
    let attr = |name: &str| cat.attributes.iter().find(|a| a.name == name).map(|a| a.value.as_str());
    assert_eq!(attr("OSAttr"), Some("2:10.0"), "Windows 10 and later");
    assert_eq!(attr("OS"), Some("_v100_X64"));
    let inf = Inf::parse(&String::from_utf8(read("rawnic.inf")).unwrap()).unwrap();
    assert_eq!(inf.value("Version", "CatalogFile"), Some("rawnic.cat"));
    let manufacturer = &inf.section("Manufacturer").unwrap()[0].values;
    let id =
        inf.section(&format!("{}.{}", manufacturer[0], manufacturer[1])).unwrap()[0].values[1].to_ascii_lowercase();
    assert_eq!(attr("HWID1"), Some(id.as_str()));
    assert_eq!(attr("HWID2"), None, "both models sections install the same component");
    // The effective date is the INF's DriverVer date.
    let driver_ver = inf.value("Version", "DriverVer").unwrap();
    let (m, rest) = driver_ver.split_once('/').unwrap();
    let (d, rest) = rest.split_once('/').unwrap();
    let y = &rest[2..4];
    assert_eq!(cat.this_update, format!("{y}{m}{d}000000Z"));
}

#[test]
fn the_test_certificate_is_for_code_signing() {
    let cer = read("rawnic-test.cer");
    assert_eq!(cer[0], 0x30, "rawnic-test.cer is not DER");
    // id-kp-codeSigning, 1.3.6.1.5.5.7.3.3, as DER.
    let code_signing = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];
    assert!(cer.windows(code_signing.len()).any(|w| w == code_signing), "no code-signing extended key usage");
    assert!(String::from_utf8_lossy(&cer).contains(xtask::sign::TEST_SUBJECT));
}

#[test]
fn sha256sums_list_every_file_of_the_package() {
    let sums = String::from_utf8(read("SHA256SUMS")).unwrap();
    let listed: Vec<&str> = sums.lines().map(|l| l.split_once("  ").unwrap().1).collect();
    for file in xtask::package::FILES.iter().filter(|f| **f != "SHA256SUMS") {
        if *file == "rawnicctl.exe" && !package_dir().join(file).is_file() {
            continue;
        }
        assert!(listed.contains(file), "SHA256SUMS lacks {file}");
    }
}

#[test]
fn openssl_reads_the_catalog() {
    let cat = package_dir().join("rawnic.cat");
    for args in
        [&["asn1parse", "-inform", "DER", "-in"][..], &["pkcs7", "-inform", "DER", "-print", "-noout", "-in"][..]]
    {
        let out = std::process::Command::new("openssl").args(args).arg(&cat).output().expect("openssl runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains("1.3.6.1.4.1.311.10.1"), "openssl {args:?} does not show szOID_CTL:\n{text}");
    }
}
