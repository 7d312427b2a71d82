//! `DriverVer` stamping, as stampinf does on Windows.

use rawnic_proto::time::civil_from_days;
use std::time::{SystemTime, UNIX_EPOCH};

/// The build date: `SOURCE_DATE_EPOCH` when set (reproducible builds), else
/// today, in UTC.
pub fn build_date() -> (i64, u32, u32) {
    civil_from_days(build_day_start().div_euclid(86_400))
}

/// The start (00:00 UTC, seconds since 1970) of the build date: the
/// catalog's effective date, so that it agrees with `DriverVer`.
pub fn build_day_start() -> i64 {
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0));
    secs - secs.rem_euclid(86_400)
}

/// `MM/DD/YYYY,a.b.c.d` from a semver `a.b.c` (the fourth part is 0).
pub fn driver_ver(version: &str, date: (i64, u32, u32)) -> Result<String, String> {
    let core = version.split(['-', '+']).next().unwrap_or(version);
    let parts: Vec<u16> = core
        .split('.')
        .map(|p| p.parse::<u16>().map_err(|_| format!("version {version:?} is not a.b.c with parts below 65536")))
        .collect::<Result<_, _>>()?;
    if parts.len() != 3 {
        return Err(format!("version {version:?} is not a.b.c"));
    }
    let (y, m, d) = date;
    Ok(format!("{m:02}/{d:02}/{y:04},{}.{}.{}.0", parts[0], parts[1], parts[2]))
}

/// Replaces the value of `DriverVer` in the `[Version]` section of `inf`.
/// The source INF must have the key, as stampinf requires.
pub fn stamp_inf(inf: &str, driver_ver: &str) -> Result<String, String> {
    let mut out = String::with_capacity(inf.len() + 32);
    let mut in_version = false;
    let mut stamped = false;
    for line in inf.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            in_version = trimmed.to_ascii_lowercase().starts_with("[version]");
        }
        let key = trimmed.split('=').next().unwrap_or("").trim();
        if in_version && !stamped && trimmed.contains('=') && key.eq_ignore_ascii_case("DriverVer") {
            let eol = if line.ends_with("\r\n") { "\r\n" } else { "\n" };
            out.push_str(&format!("DriverVer   = {driver_ver}{eol}"));
            stamped = true;
        } else {
            out.push_str(line);
        }
    }
    if !stamped {
        return Err("the INF has no DriverVer key in [Version] to stamp".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_ver_format() {
        assert_eq!(driver_ver("0.1.0", (2026, 11, 2)).unwrap(), "11/02/2026,0.1.0.0");
        assert!(driver_ver("1.2", (2026, 1, 1)).is_err());
        assert!(driver_ver("1.2.70000", (2026, 1, 1)).is_err());
    }

    #[test]
    fn stamps_only_version_section() {
        let inf = "[Version]\r\nSignature = \"$WINDOWS NT$\"\r\nDriverVer = 01/01/1970,0.0.0.0\r\n[Other]\r\nDriverVer = keep\r\n";
        let s = stamp_inf(inf, "11/22/2026,0.1.0.0").unwrap();
        assert!(s.contains("DriverVer   = 11/22/2026,0.1.0.0\r\n"));
        assert!(s.contains("DriverVer = keep"));
        assert!(stamp_inf("[Version]\nSignature=x\n", "x").is_err());
    }
}
