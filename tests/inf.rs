//! inf/rawnic.inf: the entries Windows needs, and names that agree with the
//! driver.

use rawnic_tests::inf::Inf;
use rawnic_tests::{package_dir, rawnic_sys, root};

fn source_inf() -> Inf {
    let text = std::fs::read_to_string(root().join("inf/rawnic.inf")).unwrap();
    Inf::parse(&text).unwrap_or_else(|e| panic!("rawnic.inf: {e}"))
}

fn packaged_inf() -> Inf {
    let text = std::fs::read_to_string(package_dir().join("rawnic.inf")).unwrap();
    Inf::parse(&text).unwrap_or_else(|e| panic!("packaged rawnic.inf: {e}"))
}

#[test]
fn version_section() {
    let inf = source_inf();
    assert_eq!(inf.value("Version", "Signature"), Some("$WINDOWS NT$"));
    assert_eq!(inf.value("Version", "Class"), Some("NetTrans"));
    assert_eq!(
        inf.value("Version", "ClassGuid").map(str::to_ascii_lowercase).as_deref(),
        Some("{4d36e975-e325-11ce-bfc1-08002be10318}")
    );
    assert_eq!(inf.value("Version", "PnpLockdown"), Some("1"));
    assert!(inf.value("Version", "CatalogFile").is_some());
    assert!(inf.value("Version", "DriverVer").is_some());
}

/// The models sections: (decoration, install section, component id), one
/// per decoration of the manufacturer line.
fn models(inf: &Inf) -> Vec<(String, String, String)> {
    let manufacturer = inf.section("Manufacturer").unwrap();
    assert_eq!(manufacturer.len(), 1, "one manufacturer");
    let values = &manufacturer[0].values;
    values[1..]
        .iter()
        .map(|decoration| {
            let section = format!("{}.{decoration}", values[0]);
            let lines = inf.section(&section).unwrap_or_else(|| panic!("no [{section}]"));
            assert_eq!(lines.len(), 1, "one model in [{section}]");
            (decoration.clone(), lines[0].values[0].clone(), lines[0].values[1].clone())
        })
        .collect()
}

/// DIRID 13 (run from the Driver Store) only where netcfg allows it, build
/// 25319 and later; DIRID 12 (System32\drivers) before ("Manufacturer
/// Section in a Network INF File").
#[test]
fn a_models_section_for_every_windows() {
    let inf = source_inf();
    let m = models(&inf);
    let decorations: Vec<&str> = m.iter().map(|(d, _, _)| d.as_str()).collect();
    assert_eq!(decorations, ["NTamd64", "NTamd64.10.0...25319"]);
    assert!(m.iter().all(|(_, _, id)| id == &m[0].2), "both install the same component: {m:?}");
    for (decoration, install, _) in &m {
        let dirid = if decoration.ends_with("...25319") { "13" } else { "12" };
        let add_service = inf.get(&format!("{install}.Services"), "AddService").expect("AddService");
        let binary = inf.value(&add_service[2], "ServiceBinary").unwrap();
        assert_eq!(binary, format!("%{dirid}%\\rawnic.sys"), "[{install}]");
        let copy = inf.value(install, "CopyFiles").unwrap();
        assert_eq!(inf.value("DestinationDirs", copy), Some(dirid), "[{copy}]");
    }
}

#[test]
fn ndi_keys_and_service() {
    let inf = source_inf();
    for (_, install, component_id) in models(&inf) {
        assert!(!component_id.is_empty());
        let add_reg = inf.value(&install, "AddReg").expect("AddReg");
        let ndi = inf.section(add_reg).expect("the AddReg section");
        let reg = |subkey: &str, name: &str| -> String {
            let l = ndi
                .iter()
                .find(|l| l.values[0] == "HKR" && l.values[1] == subkey && l.values[2] == name)
                .unwrap_or_else(|| panic!("no HKR,{subkey},{name}"));
            l.values[4].clone()
        };
        let ndi_service = reg("Ndi", "Service");
        assert!(!reg("Ndi", "HelpText").is_empty());
        assert_eq!(reg("Ndi\\Interfaces", "UpperRange"), "noupper");
        assert_eq!(reg("Ndi\\Interfaces", "LowerRange"), "ndis5,ndis4,ndis5_prot");

        let add_service = inf.get(&format!("{install}.Services"), "AddService").expect("AddService");
        let service_name = &add_service[0];
        let service_section = &add_service[2];
        assert!(
            ndi_service.eq_ignore_ascii_case(service_name),
            "Ndi Service {ndi_service} vs AddService {service_name}"
        );
        assert_eq!(inf.value(service_section, "ServiceType"), Some("1"));
        assert_eq!(inf.value(service_section, "StartType"), Some("3"));
        let binary = inf.value(service_section, "ServiceBinary").unwrap();

        // The names agree: the service is the protocol name the driver
        // registers, and the binary is the file the package ships and copies.
        assert!(service_name.eq_ignore_ascii_case(rawnic_proto::PROTOCOL_NAME));
        let file = binary.rsplit('\\').next().unwrap();
        assert_eq!(rawnic_sys().file_name().unwrap().to_str().unwrap(), file);
        let copy = inf.value(&install, "CopyFiles").unwrap();
        assert!(inf.section(copy).unwrap().iter().any(|l| l.values[0] == file));
        assert!(inf.value("SourceDisksFiles", file).is_some());
        let remove = inf.get(&format!("{install}.Remove.Services"), "DelService").expect("DelService");
        assert!(remove[0].eq_ignore_ascii_case(service_name));
    }
}

/// The directives a declarative ("universal") INF may use in an install
/// section; infverif refuses the others (RegisterDlls, UpdateInis, ...).
const DECLARATIVE: &[&str] = &["AddReg", "Characteristics", "CopyFiles", "AddService", "DelService"];

/// What infverif checks that can be checked without Windows: every section
/// a directive names exists and every section is used; files copied are
/// listed in SourceDisksFiles on a disk of SourceDisksNames and each
/// CopyFiles section has a destination; only declarative directives, and
/// registry writes only under HKR; DriverVer is well formed; the class
/// GUID is NetTrans's. (Strings: the parser refuses a `%token%` without a
/// [Strings] entry.)
#[test]
fn infverif_rules_that_need_no_windows() {
    for inf in [source_inf(), packaged_inf()] {
        let mut used: Vec<String> =
            ["version", "manufacturer", "strings", "sourcedisksnames", "sourcedisksfiles", "destinationdirs"]
                .map(String::from)
                .to_vec();
        for (decoration, install, _) in models(&inf) {
            let mfg = inf.section("Manufacturer").unwrap()[0].values[0].clone();
            used.push(format!("{mfg}.{decoration}").to_ascii_lowercase());
            for section in [install.clone(), format!("{install}.Services"), format!("{install}.Remove.Services")] {
                let lines = inf.section(&section).unwrap_or_else(|| panic!("no [{section}]"));
                used.push(section.to_ascii_lowercase());
                for l in lines {
                    let key =
                        l.key.as_deref().unwrap_or_else(|| panic!("[{section}] line {}: a bare value", l.line_no));
                    assert!(
                        DECLARATIVE.iter().any(|d| d.eq_ignore_ascii_case(key)),
                        "[{section}]: {key} is not declarative"
                    );
                }
            }
            let add_reg = inf.value(&install, "AddReg").unwrap();
            used.push(add_reg.to_ascii_lowercase());
            for l in inf.section(add_reg).unwrap() {
                assert_eq!(l.values[0], "HKR", "[{add_reg}] line {}: only HKR", l.line_no);
            }
            let copy = inf.value(&install, "CopyFiles").unwrap();
            used.push(copy.to_ascii_lowercase());
            assert!(inf.value("DestinationDirs", copy).is_some(), "no DestinationDirs for [{copy}]");
            for l in inf.section(copy).unwrap() {
                let file = &l.values[0];
                let disk =
                    inf.value("SourceDisksFiles", file).unwrap_or_else(|| panic!("{file} not in SourceDisksFiles"));
                assert!(inf.get("SourceDisksNames", disk).is_some(), "disk {disk} not in SourceDisksNames");
            }
            for s in ["Services", "Remove.Services"] {
                let key = if s == "Services" { "AddService" } else { "DelService" };
                if let Some(v) = inf.get(&format!("{install}.{s}"), key) {
                    if let Some(svc) = v.get(2) {
                        assert!(inf.has_section(svc), "no [{svc}]");
                        used.push(svc.to_ascii_lowercase());
                    }
                }
            }
        }
        for name in inf.section_names() {
            assert!(used.iter().any(|u| u == name), "[{name}] is never used");
        }
        let ver = inf.get("Version", "DriverVer").unwrap();
        let date: Vec<&str> = ver[0].split('/').collect();
        assert!(
            date.len() == 3 && date[0].len() == 2 && date[1].len() == 2 && date[2].len() == 4,
            "DriverVer date {ver:?}"
        );
        let version: Vec<&str> = ver[1].split('.').collect();
        assert!(version.len() == 4 && version.iter().all(|p| p.parse::<u16>().is_ok()), "DriverVer version {ver:?}");
        assert_eq!(inf.value("Version", "CatalogFile"), Some("rawnic.cat"));
    }
}

#[test]
fn the_image_registers_the_inf_service_name() {
    // The protocol name is a UTF-16 string in the image's read-only data.
    let image = std::fs::read(rawnic_sys()).unwrap();
    let wide: Vec<u8> = rawnic_proto::PROTOCOL_NAME.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect();
    assert!(image.windows(wide.len()).any(|w| w == wide), "the image does not carry the protocol name");
}

#[test]
fn package_inf_has_a_stamped_driver_ver() {
    let inf = packaged_inf();
    let ver = inf.get("Version", "DriverVer").unwrap();
    let (date, version) = (&ver[0], &ver[1]);
    let parts: Vec<&str> = date.split('/').collect();
    assert_eq!(parts.len(), 3, "{date}");
    assert!(parts[2].parse::<u32>().unwrap() >= 2025, "the date is not stamped: {date}");
    assert_eq!(version, &format!("{}.0", env!("CARGO_PKG_VERSION")));
}
