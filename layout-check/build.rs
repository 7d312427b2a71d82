//! Runs bindgen over the C headers and writes, for every structure that
//! ndis-sys and a header both declare, the table of checks that
//! `src/lib.rs` includes (see the crate documentation).
//!
//! - `$OUT_DIR/mingw.rs`: mingw-w64's `ddk/ntifs.h` (`ntddk.h` and more) and
//!   `ntddndis.h`, always. If libclang or the headers are missing, it says
//!   why (`UNAVAILABLE`) and has no checks; the test then fails with that
//!   reason, while the rest of the workspace still builds.
//! - `$OUT_DIR/wdk.rs` (feature `wdk`): the WDK's `ndis.h`, through
//!   wdk-build. Here a failure stops the build.

#[path = "src/model.rs"]
#[allow(dead_code)]
mod model;

use model::{Member, Model, SIZE_NOT_CHECKED, pair_members};
use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The headers read: `ntifs.h` is `ntddk.h` (which is `wdm.h` and more) plus
/// the security structures; `ntddndis.h` has the NDIS structures that user
/// mode shares. (mingw-w64's `ddk/ndis.h` is NDIS 5.1, has none of the NDIS 6
/// structures, and does not parse together with `ntddndis.h`.)
const MINGW_HEADERS: [&str; 2] = ["ddk/ntifs.h", "ntddndis.h"];

/// Where Debian's mingw-w64-x86-64-dev puts the headers.
const MINGW_INCLUDE: &str = "/usr/share/mingw-w64/include";

/// The clang arguments that make libclang lay structures out as the
/// Windows x64 compilers do, whatever the host: the MinGW target (LLP64),
/// MSVC's bitfield packing and Microsoft's extensions (anonymous members).
const WINDOWS_X64_ARGS: &[&str] = &["--target=x86_64-w64-windows-gnu", "-mms-bitfields", "-fms-extensions"];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/model.rs");
    println!("cargo:rerun-if-changed=src/wrong.rs");
    println!("cargo:rerun-if-env-changed=MINGW_INCLUDE");
    println!("cargo:rerun-if-env-changed=LIBCLANG_PATH");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let ours = Model::from_ndis_sys(ndis_sys::layout::all_types());

    let mingw = match mingw_bindings() {
        Ok(code) => {
            let theirs = parse_rust(&code);
            let roots = ndis_sys_roots(&theirs);
            let wrong = parse_rust(&std::fs::read_to_string("src/wrong.rs").expect("src/wrong.rs"));
            let wrong_roots: Vec<(String, String)> = wrong.records.keys().map(|k| (k.clone(), k.clone())).collect();
            format!(
                "{code}\n\npub const UNAVAILABLE: Option<&str> = None;\n\n\
                 /// ndis-sys against the mingw-w64 headers.\npub const CHECKS: &[crate::Check] = &[\n{}];\n\n\
                 /// `crate::wrong`'s deliberately wrong declarations against the same headers.\n\
                 pub const WRONG_CHECKS: &[crate::Check] = &[\n{}];\n",
                checks(&ours, "::ndis_sys", &theirs, &roots),
                checks(&wrong, "crate::wrong", &theirs, &wrong_roots),
            )
        }
        Err(why) => {
            println!("cargo:warning=layout-check: {why}");
            format!(
                "pub const UNAVAILABLE: Option<&str> = Some({why:?});\n\
                 pub const CHECKS: &[crate::Check] = &[];\npub const WRONG_CHECKS: &[crate::Check] = &[];\n"
            )
        }
    };
    std::fs::write(out.join("mingw.rs"), mingw).expect("write mingw.rs");

    #[cfg(feature = "wdk")]
    {
        let code = wdk::bindings();
        let theirs = parse_rust(&code);
        let roots = ndis_sys_roots(&theirs);
        let table = format!(
            "{code}\n\n/// ndis-sys against the WDK's ndis.h.\npub const CHECKS: &[crate::Check] = &[\n{}];\n",
            checks(&ours, "::ndis_sys", &theirs, &roots)
        );
        std::fs::write(out.join("wdk.rs"), table).expect("write wdk.rs");
    }
}

/// `(Rust name, C name)` of every ndis-sys type that the header declares
/// under its C name. The others are ndis-sys's names for C's nested and
/// anonymous records, compared as members of these, or types the header
/// lacks.
fn ndis_sys_roots(theirs: &Model) -> Vec<(String, String)> {
    ndis_sys::layout::all_types()
        .filter(|t| theirs.record(t.c).is_some())
        .map(|t| (t.rust.to_string(), t.c.to_string()))
        .collect()
}

/// bindgen over mingw-w64's WDM and NDIS headers, or why it could not run.
fn mingw_bindings() -> Result<String, String> {
    let include = env::var("MINGW_INCLUDE").unwrap_or_else(|_| MINGW_INCLUDE.to_string());
    for h in MINGW_HEADERS {
        if !Path::new(&include).join(h).is_file() {
            return Err(format!(
                "{include}/{h} is missing: install mingw-w64-x86-64-dev (`cargo make setup`) or set MINGW_INCLUDE"
            ));
        }
    }
    let resource_dir = clang_resource_dir()?;
    let mut builder = bindgen::Builder::default()
        .header_contents("rawnic-layout-check.h", &MINGW_HEADERS.map(|h| format!("#include <{h}>\n")).concat())
        .clang_args(WINDOWS_X64_ARGS)
        .clang_arg(format!("-resource-dir={}", resource_dir.display()))
        .clang_arg(format!("-isystem{include}"))
        .clang_arg(format!("-isystem{include}/ddk"))
        .clang_arg("-fno-builtin");
    builder = common_options(builder);
    let bindings = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| builder.generate()))
        .map_err(|_| "bindgen panicked: is libclang installed (libclang1-19, `cargo make setup`)?".to_string())?
        .map_err(|e| format!("bindgen could not read the mingw-w64 headers: {e}"))?;
    Ok(bindings.to_string())
}

/// clang's own headers (`stddef.h`, `mm_malloc.h`) for the libclang that
/// bindgen loads. libclang does not find them by itself when it is loaded
/// from outside LLVM's tree (Debian's `/usr/lib/x86_64-linux-gnu`).
fn clang_resource_dir() -> Result<PathBuf, String> {
    println!("cargo:rerun-if-env-changed=CLANG_RESOURCE_DIR");
    if let Some(dir) = env::var_os("CLANG_RESOURCE_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let version = std::panic::catch_unwind(bindgen::clang_version).map_err(|_| {
        "libclang was not found: install libclang1-19 (`cargo make setup`) or set LIBCLANG_PATH".to_string()
    })?;
    let (major, _) = version.parsed.ok_or_else(|| format!("unknown libclang version {:?}", version.full))?;
    let candidates = [format!("/usr/lib/llvm-{major}/lib/clang/{major}"), format!("/usr/lib/clang/{major}")];
    candidates.iter().map(PathBuf::from).find(|d| d.join("include/stddef.h").is_file()).ok_or_else(|| {
        format!(
            "clang {major}'s own headers are not in {}: install libclang-common-{major}-dev (`cargo make setup`) \
             or set CLANG_RESOURCE_DIR",
            candidates.join(" or ")
        )
    })
}

/// What both header sets are read with: only the structures ndis-sys
/// declares (and what they use), as plain `#[repr(C)]` Rust with LLP64
/// integer types, bindgen's own layout assertions included.
fn common_options(mut builder: bindgen::Builder) -> bindgen::Builder {
    for t in ndis_sys::layout::all_types() {
        builder = builder.allowlist_type(regex_escape(t.c));
    }
    builder
        .rust_target(bindgen::RustTarget::stable(85, 0).expect("a Rust version bindgen knows"))
        .use_core()
        .ctypes_prefix("crate::llp64")
        .layout_tests(true)
        .derive_debug(false)
        .derive_default(false)
        .generate_comments(false)
        .formatter(bindgen::Formatter::None)
        .detect_include_paths(false)
}

fn regex_escape(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c.to_string() } else { format!("\\{c}") }).collect()
}

/// The records (structs and unions, by Rust name, members in order) and the
/// type aliases of a Rust source file: bindgen's output or `src/wrong.rs`.
fn parse_rust(code: &str) -> Model {
    let file = syn::parse_file(code).unwrap_or_else(|e| panic!("parse generated Rust: {e}"));
    let mut model = Model::default();
    for item in file.items {
        let (name, fields) = match item {
            syn::Item::Struct(s) => match s.fields {
                syn::Fields::Named(f) => (s.ident, f.named),
                _ => (s.ident, Default::default()),
            },
            syn::Item::Union(u) => (u.ident, u.fields.named),
            syn::Item::Type(t) => {
                if let Some(target) = path_name(&t.ty) {
                    model.aliases.insert(t.ident.to_string(), target);
                }
                continue;
            }
            _ => continue,
        };
        let members = fields
            .iter()
            .filter_map(|f| {
                let name = f.ident.as_ref()?.to_string();
                Some(Member { name, ty: path_name(&f.ty).unwrap_or_default() })
            })
            .collect();
        model.records.insert(name.to_string(), members);
    }
    model
}

/// The last segment of a path type (`IRP_TAIL`, `_IRP__bindgen_ty_1`);
/// `None` for pointers, arrays and the rest, which are never records.
fn path_name(ty: &syn::Type) -> Option<String> {
    match ty {
        syn::Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    }
}

/// The `Check` items for every root `(ours, C name)`: size and alignment,
/// then each member's offset and size. `theirs` is read in the module the
/// table is written to, where the header's names are in scope.
fn checks(ours: &Model, ours_mod: &str, theirs: &Model, roots: &[(String, String)]) -> String {
    let mut s = String::new();
    let mut check = |c: &str, member: &str, what: &str, ours: String, theirs: Option<String>| {
        let label = if member.is_empty() { format!("{c}: {what}") } else { format!("{c}.{member}: {what}") };
        let theirs = theirs.map_or("None".to_string(), |t| format!("Some({t})"));
        writeln!(
            s,
            "    crate::Check {{ c_type: {c:?}, member: {member:?}, what: crate::What::{what}, ours: {ours}, \
             theirs: {theirs}, label: {label:?} }},"
        )
        .unwrap();
    };
    for (rust, c) in roots {
        let (their_root, _) = theirs.record(c).expect("roots are declared by the header");
        let ours_ty = format!("{ours_mod}::{rust}");
        if !SIZE_NOT_CHECKED.iter().any(|(t, _)| t == c) {
            let size = |t: &str| format!("::core::mem::size_of::<{t}>()");
            let align = |t: &str| format!("::core::mem::align_of::<{t}>()");
            check(c, "", "Size", size(&ours_ty), Some(size(c)));
            check(c, "", "Align", align(&ours_ty), Some(align(c)));
        }
        for pair in pair_members(ours, rust, theirs, their_root) {
            let ours_path = pair.ours.join(".");
            let theirs_path = pair.theirs.map(|t| t.join("."));
            check(
                c,
                &pair.c_path,
                "Offset",
                format!("offset!({ours_ty}, {ours_path})"),
                theirs_path.as_ref().map(|t| format!("offset!({c}, {t})")),
            );
            if let Some(t) = theirs_path {
                check(
                    c,
                    &pair.c_path,
                    "MemberSize",
                    format!("member_size!({ours_ty}, {ours_path})"),
                    Some(format!("member_size!({c}, {t})")),
                );
            }
        }
    }
    s
}

/// The WDK's `ndis.h` for NDIS 6.30, read on a Windows host.
#[cfg(feature = "wdk")]
mod wdk {
    use wdk_build::{BuilderExt, Config, DriverConfig};

    /// The headers, as a WDM NDIS 6.30 protocol driver includes them
    /// (`ntifs.h` for the security structures, as on the mingw side).
    const HEADER: &str = "#define NDIS630 1\n#define NDIS_WDM 1\n#include <ntifs.h>\n#include <ndis.h>\n";

    pub fn bindings() -> String {
        let mut config = Config::new();
        config.driver_config = DriverConfig::Wdm;
        let builder = bindgen::Builder::wdk_default(&config)
            .unwrap_or_else(|e| panic!("wdk-build could not configure bindgen (is the WDK installed?): {e}"))
            .header_contents("rawnic-layout-check.h", HEADER);
        super::common_options(builder)
            .generate()
            .unwrap_or_else(|e| panic!("bindgen could not read the WDK's ndis.h: {e}"))
            .to_string()
    }
}
