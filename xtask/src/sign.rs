//! Authenticode signing (SHA-256) with osslsigncode, or on a Windows host
//! with the SDK's or WDK's signtool where it is found, and the test
//! code-signing certificate used when no real one is given.
//!
//! A real certificate and key come from the environment:
//! `RAWNIC_SIGN_CERT` (the certificate, with its chain, PEM or DER),
//! `RAWNIC_SIGN_KEY` (its private key, PEM or DER) and optionally
//! `RAWNIC_SIGN_KEY_PASSWORD_FILE` (a file holding the key's password).
//! Without them, a self-signed test certificate (RSA 3072, code signing) is
//! made once with openssl and kept in `target/signing/test-cert/`; the
//! package then carries its public part as `rawnic-test.cer`. signtool
//! reads a PFX, which openssl makes from the same certificate and key (in
//! `target/signing/signtool/`, with the key's password if it has one).
//!
//! Signing is skipped when the output is already the signature of the same
//! input with the same certificate (a stamp in `target/signing/stamps/`
//! records that), so packaging stays fast and leaves unchanged files alone.

use crate::discover::join;
use crate::kernel::clean_command;
use crate::toolchain::{self, SignTool};
use sha2::{Digest, Sha256};
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

/// The certificate (with its chain) to sign with, instead of the test one.
pub const CERT_ENV: &str = "RAWNIC_SIGN_CERT";
/// Its private key.
pub const KEY_ENV: &str = "RAWNIC_SIGN_KEY";
/// A file holding the private key's password, if it has one.
pub const PASSWORD_FILE_ENV: &str = "RAWNIC_SIGN_KEY_PASSWORD_FILE";
/// Every variable that changes how the package is signed.
pub const ENV_VARS: &[&str] = &[CERT_ENV, KEY_ENV, PASSWORD_FILE_ENV];

/// The name of the test certificate in the package.
pub const TEST_CER: &str = "rawnic-test.cer";
/// The test certificate's subject.
pub const TEST_SUBJECT: &str = "rawnic test signing (test machines only)";

/// What osslsigncode signs with.
#[derive(Debug, Clone)]
pub struct Signer {
    /// The certificate chain, PEM or DER.
    pub certs: PathBuf,
    pub key: PathBuf,
    pub password_file: Option<PathBuf>,
    /// The test certificate in DER, to ship as `rawnic-test.cer`; `None`
    /// for a real certificate.
    pub test_cer: Option<PathBuf>,
    /// Identifies the certificate and key, for the stamps.
    fingerprint: String,
}

/// `bytes` in lowercase hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(2 * bytes.len()), |mut s, b| {
        s.push_str(&format!("{b:02x}"));
        s
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn fingerprint(certs: &Path, key: &Path) -> Result<String, String> {
    let mut h = Sha256::new();
    h.update(read(certs)?);
    h.update(read(key)?);
    Ok(hex(&h.finalize()))
}

/// Where signing keeps its state.
pub fn signing_dir(root: &Path) -> PathBuf {
    join(root, &["target", "signing"])
}

/// The signer: the certificate named by the environment, else the test
/// certificate (made now if it does not exist yet).
pub fn signer(root: &Path) -> Result<Signer, String> {
    let cert = std::env::var_os(CERT_ENV).filter(|v| !v.is_empty()).map(PathBuf::from);
    let key = std::env::var_os(KEY_ENV).filter(|v| !v.is_empty()).map(PathBuf::from);
    match (cert, key) {
        (Some(certs), Some(key)) => {
            for p in [&certs, &key] {
                if !p.is_file() {
                    return Err(format!("{} is not a file (from {CERT_ENV} / {KEY_ENV})", p.display()));
                }
            }
            let password_file = std::env::var_os(PASSWORD_FILE_ENV).filter(|v| !v.is_empty()).map(PathBuf::from);
            if let Some(p) = &password_file {
                if !p.is_file() {
                    return Err(format!("{PASSWORD_FILE_ENV}={} is not a file", p.display()));
                }
            }
            let fingerprint = fingerprint(&certs, &key)?;
            Ok(Signer { certs, key, password_file, test_cer: None, fingerprint })
        }
        (None, None) => test_signer(root),
        _ => Err(format!(
            "set both {CERT_ENV} and {KEY_ENV} to sign with your own certificate, or neither to use the test certificate"
        )),
    }
}

const TEST_CERT_CONFIG: &str = "\
[req]
distinguished_name = dn
x509_extensions = ext
prompt = no
[dn]
CN = rawnic test signing (test machines only)
O = rawnic project
[ext]
keyUsage = critical, digitalSignature
extendedKeyUsage = codeSigning
subjectKeyIdentifier = hash
";

/// Runs `cmd`; its output, or an error that quotes it.
pub fn run(cmd: &mut std::process::Command, what: &str) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("cannot run {what}: {e}"))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        return Err(format!("{what} failed ({}):\n{}", out.status, text.trim_end()));
    }
    Ok(text)
}

/// The test certificate: a self-signed RSA 3072 code-signing certificate,
/// made once with openssl (in a temporary directory renamed into place, so
/// an interrupted or concurrent build never leaves half of one).
fn test_signer(root: &Path) -> Result<Signer, String> {
    let dir = signing_dir(root).join("test-cert");
    let (certs, key, cer) = (dir.join("rawnic-test.pem"), dir.join("rawnic-test.key"), dir.join(TEST_CER));
    if !(certs.is_file() && key.is_file() && cer.is_file()) {
        let openssl = toolchain::locate_openssl()?;
        // What is left of an incomplete one goes (a rename cannot replace it).
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let tmp = signing_dir(root).join(format!("test-cert.tmp{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        let config = tmp.join("openssl.cnf");
        fs::write(&config, TEST_CERT_CONFIG).map_err(|e| format!("{}: {e}", config.display()))?;
        run(
            clean_command(&openssl)
                .args(["req", "-x509", "-newkey", "rsa:3072", "-sha256", "-days", "3650", "-nodes", "-config"])
                .arg(&config)
                .arg("-keyout")
                .arg(tmp.join("rawnic-test.key"))
                .arg("-out")
                .arg(tmp.join("rawnic-test.pem")),
            "openssl req (making the test certificate)",
        )?;
        run(
            clean_command(&openssl)
                .args(["x509", "-outform", "DER", "-in"])
                .arg(tmp.join("rawnic-test.pem"))
                .arg("-out")
                .arg(tmp.join(TEST_CER)),
            "openssl x509 (converting the test certificate to DER)",
        )?;
        let _ = fs::remove_file(&config);
        if fs::rename(&tmp, &dir).is_err() {
            // Another build made it first; use theirs.
            let _ = fs::remove_dir_all(&tmp);
            if !(certs.is_file() && key.is_file() && cer.is_file()) {
                return Err(format!("cannot put the test certificate in {}", dir.display()));
            }
        }
        eprintln!("signing: made a test code-signing certificate in {}", dir.display());
    }
    let fingerprint = fingerprint(&certs, &key)?;
    Ok(Signer { certs, key, password_file: None, test_cer: Some(cer), fingerprint })
}

/// The signing time osslsigncode writes: `SOURCE_DATE_EPOCH` when set (so a
/// reproducible build signs reproducibly), else now.
fn signing_time() -> Option<String> {
    std::env::var("SOURCE_DATE_EPOCH").ok().map(|s| s.trim().to_string()).filter(|s| s.parse::<u64>().is_ok())
}

/// Signs `input` (bytes of a PE image or an unsigned catalog named `name`)
/// with Authenticode SHA-256 and writes the result to `output`, unless the
/// stamp says `output` already is exactly that.
pub fn sign(root: &Path, signer: &Signer, name: &str, input: &[u8], output: &Path) -> Result<(), String> {
    let stamps = signing_dir(root).join("stamps");
    let stamp_path = stamps.join(format!("{name}.stamp"));
    let want = format!("input {}\nsigner {}\n", sha256_hex(input), signer.fingerprint);
    if let (Ok(stamp), Ok(current)) = (fs::read_to_string(&stamp_path), fs::read(output)) {
        if stamp == format!("{want}output {}\n", sha256_hex(&current)) {
            return Ok(());
        }
    }
    let tool = toolchain::locate_sign_tool()?;
    let work = signing_dir(root).join("work");
    fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    fs::create_dir_all(&stamps).map_err(|e| format!("{}: {e}", stamps.display()))?;
    // osslsigncode and signtool recognize some formats by extension: keep the name.
    let unsigned_dir = work.join(format!("unsigned.{}", std::process::id()));
    fs::create_dir_all(&unsigned_dir).map_err(|e| format!("{}: {e}", unsigned_dir.display()))?;
    let unsigned = unsigned_dir.join(name);
    fs::write(&unsigned, input).map_err(|e| format!("{}: {e}", unsigned.display()))?;
    let result = match &tool {
        SignTool::Osslsigncode(osslsigncode) => osslsigncode_sign(osslsigncode, signer, name, &unsigned, &work),
        // signtool signs in place.
        SignTool::Signtool(signtool) => pfx(root, signer).and_then(|(pfx, password)| {
            run(
                clean_command(signtool).args(signtool_args(&pfx, password.as_deref(), &unsigned)),
                &format!("signtool sign ({name})"),
            )?;
            read(&unsigned)
        }),
    };
    let _ = fs::remove_dir_all(&unsigned_dir);
    let bytes = result?;
    crate::kernel::write_if_changed(output, &bytes)?;
    fs::write(&stamp_path, format!("{want}output {}\n", sha256_hex(&bytes)))
        .map_err(|e| format!("{}: {e}", stamp_path.display()))
}

/// Signs `unsigned` with osslsigncode; the signed bytes.
fn osslsigncode_sign(
    osslsigncode: &Path,
    signer: &Signer,
    name: &str,
    unsigned: &Path,
    work: &Path,
) -> Result<Vec<u8>, String> {
    let signed = work.join(format!("{name}.signed.{}", std::process::id()));
    let _ = fs::remove_file(&signed);
    let mut cmd = clean_command(osslsigncode);
    cmd.arg("sign").arg("-certs").arg(&signer.certs).arg("-key").arg(&signer.key);
    if let Some(p) = &signer.password_file {
        cmd.arg("-readpass").arg(p);
    }
    cmd.args(["-h", "sha256", "-n", "rawnic"]);
    if let Some(t) = signing_time() {
        cmd.args(["-time", &t]);
    }
    cmd.arg("-in").arg(unsigned).arg("-out").arg(&signed);
    run(&mut cmd, &format!("osslsigncode sign ({name})"))?;
    let bytes = read(&signed);
    let _ = fs::remove_file(&signed);
    bytes
}

/// signtool's arguments to sign `file` in place as osslsigncode does:
/// Authenticode SHA-256 with the certificate and key in `pfx`, described as
/// "rawnic".
pub fn signtool_args(pfx: &Path, password: Option<&str>, file: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["sign", "/fd", "SHA256", "/f"].map(OsString::from).to_vec();
    args.push(pfx.into());
    if let Some(p) = password {
        args.extend(["/p".into(), p.into()]);
    }
    args.extend(["/d".into(), "rawnic".into(), file.into()]);
    args
}

/// The variable that hands the PFX's password to openssl (the same file
/// cannot be both `-passin` and `-passout`: openssl then reads two lines).
pub const PFX_PASSWORD_ENV: &str = "RAWNIC_PFX_PASSWORD";

/// `openssl pkcs12 -export`'s arguments for the PFX signtool reads:
/// `certs` (PEM) and `key`, protected by the key's password (none without
/// one; openssl reads it from `PFX_PASSWORD_ENV`) with SHA1-3DES, which
/// every Windows version reads (openssl 3's default, AES, is not read by
/// older ones).
pub fn pkcs12_args(certs: &Path, key: &Path, password_file: Option<&Path>, out: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["pkcs12", "-export", "-in"].map(OsString::from).to_vec();
    args.push(certs.into());
    args.push("-inkey".into());
    args.push(key.into());
    args.push("-out".into());
    args.push(out.into());
    args.extend(["-keypbe", "PBE-SHA1-3DES", "-certpbe", "PBE-SHA1-3DES", "-macalg", "sha1"].map(OsString::from));
    match password_file {
        Some(p) => {
            let file = |p: &Path| {
                let mut s = OsString::from("file:");
                s.push(p);
                s
            };
            args.extend(["-passin".into(), file(p), "-passout".into(), format!("env:{PFX_PASSWORD_ENV}").into()]);
        }
        None => args.extend(["-passout", "pass:"].map(OsString::from)),
    }
    args
}

/// The first line of a password file, as openssl reads it.
fn password(path: &Path) -> Result<String, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text.lines().next().unwrap_or("").to_string())
}

/// The signer's certificate and key as a PFX for signtool (made once per
/// certificate and key), and its password.
fn pfx(root: &Path, signer: &Signer) -> Result<(PathBuf, Option<String>), String> {
    let dir = join(&signing_dir(root), &["signtool"]);
    let id = &signer.fingerprint[..16];
    let pfx = dir.join(format!("{id}.pfx"));
    let pass = signer.password_file.as_deref().map(password).transpose()?;
    if pfx.is_file() {
        return Ok((pfx, pass));
    }
    let openssl = toolchain::locate_openssl()?;
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // pkcs12 reads PEM certificates; a DER file holds just one.
    let certs = if read(&signer.certs)?.windows(11).any(|w| w == b"-----BEGIN ") {
        signer.certs.clone()
    } else {
        let pem = dir.join(format!("{id}.pem"));
        run(
            clean_command(&openssl).args(["x509", "-inform", "DER", "-in"]).arg(&signer.certs).arg("-out").arg(&pem),
            "openssl x509 (the certificate as PEM, for signtool)",
        )?;
        pem
    };
    let tmp = dir.join(format!("{id}.pfx.tmp{}", std::process::id()));
    run(
        clean_command(&openssl)
            .args(pkcs12_args(&certs, &signer.key, signer.password_file.as_deref(), &tmp))
            .env(PFX_PASSWORD_ENV, pass.as_deref().unwrap_or("")),
        "openssl pkcs12 (the PFX signtool reads)",
    )?;
    fs::rename(&tmp, &pfx).map_err(|e| format!("{}: {e}", pfx.display()))?;
    Ok((pfx, pass))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: Vec<OsString>) -> Vec<String> {
        args.into_iter().map(|a| a.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn signtool_signs_sha256_with_the_pfx() {
        let args = strings(signtool_args(Path::new("k.pfx"), None, Path::new("rawnic.sys")));
        assert_eq!(args, ["sign", "/fd", "SHA256", "/f", "k.pfx", "/d", "rawnic", "rawnic.sys"]);
        let args = strings(signtool_args(Path::new("k.pfx"), Some("pw"), Path::new("rawnic.cat")));
        assert_eq!(args, ["sign", "/fd", "SHA256", "/f", "k.pfx", "/p", "pw", "/d", "rawnic", "rawnic.cat"]);
    }

    #[test]
    fn the_pfx_keeps_the_keys_password() {
        let args = strings(pkcs12_args(Path::new("c.pem"), Path::new("k.key"), None, Path::new("o.pfx")));
        assert_eq!(&args[..8], ["pkcs12", "-export", "-in", "c.pem", "-inkey", "k.key", "-out", "o.pfx"]);
        assert!(args.ends_with(&["-passout".to_string(), "pass:".to_string()]));
        assert!(args.windows(2).any(|w| w == ["-keypbe", "PBE-SHA1-3DES"]));
        let args = strings(pkcs12_args(Path::new("c.pem"), Path::new("k.key"), Some(Path::new("pw")), Path::new("o")));
        assert!(args.ends_with(&["-passin", "file:pw", "-passout", "env:RAWNIC_PFX_PASSWORD"].map(String::from)));
    }
}
