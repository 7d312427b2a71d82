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

/// The models section for NTamd64 and its one install section.
fn install_section(inf: &Inf) -> (String, String) {
    let manufacturer = inf.section("Manufacturer").unwrap();
    let models = &manufacturer[0].values;
    assert!(models.iter().skip(1).any(|d| d.eq_ignore_ascii_case("NTamd64")), "no NTamd64 decoration: {models:?}");
    let section = format!("{}.NTamd64", models[0]);
    let model = &inf.section(&section).unwrap_or_else(|| panic!("no [{section}]"))[0];
    (model.values[0].clone(), model.values[1].clone())
}

#[test]
fn ndi_keys_and_service() {
    let inf = source_inf();
    let (install, component_id) = install_section(&inf);
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
    assert!(ndi_service.eq_ignore_ascii_case(service_name), "Ndi Service {ndi_service} vs AddService {service_name}");
    assert_eq!(inf.value(service_section, "ServiceType"), Some("1"));
    assert_eq!(inf.value(service_section, "StartType"), Some("3"));
    let binary = inf.value(service_section, "ServiceBinary").unwrap();
    assert_eq!(binary, "%13%\\rawnic.sys");
    assert_eq!(inf.value("DestinationDirs", "DefaultDestDir"), Some("13"));

    // The names agree: the service is the protocol name the driver
    // registers, and the binary is the file the package ships and copies.
    assert!(service_name.eq_ignore_ascii_case(proto::PROTOCOL_NAME));
    let file = binary.rsplit('\\').next().unwrap();
    assert_eq!(rawnic_sys().file_name().unwrap().to_str().unwrap(), file);
    let copy = inf.value(&install, "CopyFiles").unwrap();
    assert!(inf.section(copy).unwrap().iter().any(|l| l.values[0] == file));
    assert!(inf.value("SourceDisksFiles", file).is_some());
    assert_eq!(inf.value("DestinationDirs", copy), Some("13"));
    let remove = inf.get(&format!("{install}.Remove.Services"), "DelService").expect("DelService");
    assert!(remove[0].eq_ignore_ascii_case(service_name));
}

#[test]
fn the_image_registers_the_inf_service_name() {
    // The protocol name is a UTF-16 string in the image's read-only data.
    let image = std::fs::read(rawnic_sys()).unwrap();
    let wide: Vec<u8> = proto::PROTOCOL_NAME.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect();
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
