//! The freshly built rawnic.sys is a well-formed x64 kernel driver.

use object::LittleEndian as LE;
use object::pe;
use object::read::pe::{ImageNtHeaders, ImageOptionalHeader, PeFile64};
use rawnic_tests::pe::{header_checksum, imports, map_symbol_rva, pe_checksum};
use rawnic_tests::{images_dir, rawnic_sys};

fn image() -> Vec<u8> {
    std::fs::read(rawnic_sys()).unwrap()
}

#[test]
fn machine_subsystem_and_dll_characteristics() {
    let data = image();
    let file = PeFile64::parse(&*data).unwrap();
    let nt = file.nt_headers();
    assert_eq!(nt.file_header().machine.get(LE), pe::IMAGE_FILE_MACHINE_AMD64);
    let opt = nt.optional_header();
    assert_eq!(opt.subsystem(), pe::IMAGE_SUBSYSTEM_NATIVE);
    let dll = opt.dll_characteristics();
    for (flag, name) in [
        (pe::IMAGE_DLLCHARACTERISTICS_NX_COMPAT, "NX_COMPAT"),
        (pe::IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE, "DYNAMIC_BASE"),
        (pe::IMAGE_DLLCHARACTERISTICS_FORCE_INTEGRITY, "FORCE_INTEGRITY"),
    ] {
        assert!(dll & flag != 0, "DllCharacteristics {dll:#x} lacks {name}");
    }
    // Memory integrity (HVCI) loads only images whose sections start on
    // page boundaries (it maps each section with its own protection).
    let align = opt.section_alignment();
    assert!(align >= 0x1000 && align % 0x1000 == 0, "SectionAlignment {align:#x} is not a multiple of a page");
    for s in file.section_table().iter() {
        let rva = s.virtual_address.get(LE);
        assert_eq!(rva % 0x1000, 0, "a section at RVA {rva:#x} does not start a page");
    }
}

#[test]
fn entry_point_is_driver_entry() {
    let data = image();
    let file = PeFile64::parse(&*data).unwrap();
    let entry = file.nt_headers().optional_header().address_of_entry_point();
    let map = std::fs::read_to_string(images_dir().join("rawnic.map")).expect("the linker map");
    let rva = map_symbol_rva(&map, "DriverEntry").expect("DriverEntry is in the map");
    assert_eq!(entry, rva, "AddressOfEntryPoint is not DriverEntry");
    // The image the tests use is the one the map describes, with its
    // Authenticode signature appended (which changes only the checksum and
    // the certificate table's directory entry, outside the hash).
    let built = std::fs::read(images_dir().join("rawnic.sys")).unwrap();
    assert_eq!(rawnic_tests::pe::certificate_table(&data).map(|(at, _)| at), Some(built.len()), "signature position");
    assert_eq!(rawnic_tests::pe::authenticode_sha256(&built), rawnic_tests::pe::authenticode_sha256(&data));
    // A driver exports nothing and is not a DLL.
    assert!(file.export_table().unwrap().is_none(), "the image has an export table");
    let chars = file.nt_headers().file_header().characteristics.get(LE);
    assert!(chars & pe::IMAGE_FILE_DLL == 0, "the image is marked as a DLL");
}

#[test]
fn checksum_is_valid() {
    let data = image();
    let file = PeFile64::parse(&*data).unwrap();
    let stored = header_checksum(&file);
    assert_ne!(stored, 0, "no checksum: kernel images need one");
    assert_eq!(stored, pe_checksum(&data), "the stored checksum does not match the file");
}

#[test]
fn imports_only_from_the_kernel_modules() {
    let data = image();
    let file = PeFile64::parse(&*data).unwrap();
    let imports = imports(&file);
    assert!(!imports.is_empty());
    for (dll, name) in &imports {
        assert!(["ndis.sys", "ntoskrnl.exe", "HAL.dll"].contains(&dll.as_str()), "{name} is imported from {dll}");
        let declared = ndis_sys::imports::ALL.iter().any(|(d, names)| d == dll && names.contains(&name.as_str()))
            || ndis_sys::imports::VARIADIC.iter().any(|(d, n)| d == dll && n == name);
        assert!(declared, "{dll}!{name} is not declared in ndis-sys");
    }
    assert!(imports.iter().any(|(d, n)| d == "ndis.sys" && n == "NdisRegisterProtocolDriver"));
}

#[test]
fn no_tls_and_no_writable_code() {
    let data = image();
    let file = PeFile64::parse(&*data).unwrap();
    let dirs = file.data_directories();
    let tls = dirs.get(pe::IMAGE_DIRECTORY_ENTRY_TLS);
    assert!(tls.is_none_or(|d| d.virtual_address.get(LE) == 0 && d.size.get(LE) == 0), "the image has a TLS directory");
    for s in file.section_table().iter() {
        let c = s.characteristics.get(LE);
        let name = String::from_utf8_lossy(s.raw_name()).trim_end_matches('\0').to_string();
        assert!(
            !(c & pe::IMAGE_SCN_MEM_WRITE != 0 && c & pe::IMAGE_SCN_MEM_EXECUTE != 0),
            "section {name} is writable and executable"
        );
    }
}

#[test]
fn nothing_pageable_but_a_discardable_init() {
    let data = image();
    let file = PeFile64::parse(&*data).unwrap();
    let mut saw_init = false;
    for s in file.section_table().iter() {
        let c = s.characteristics.get(LE);
        let name = String::from_utf8_lossy(s.raw_name()).trim_end_matches('\0').to_string();
        assert!(!name.to_ascii_uppercase().starts_with("PAGE"), "pageable section {name}");
        let discardable = c & pe::IMAGE_SCN_MEM_DISCARDABLE != 0;
        if name == "INIT" {
            saw_init = true;
            assert!(discardable, "INIT is not discardable");
            continue;
        }
        if name == ".reloc" {
            // Relocations are applied at load and discarded: not code or data.
            assert!(discardable);
            continue;
        }
        assert!(!discardable, "{name} is discardable");
        assert!(c & pe::IMAGE_SCN_MEM_NOT_PAGED != 0, "{name} ({c:#x}) is not marked non-pageable");
    }
    assert!(saw_init, "DriverEntry's INIT section is missing");
}

#[test]
fn llvm_readobj_shows_a_native_driver_with_allowed_imports() {
    let out = std::process::Command::new("llvm-readobj-19")
        .args(["--file-headers", "--coff-imports"])
        .arg(rawnic_sys())
        .output()
        .expect("llvm-readobj-19 runs (installed by `cargo make setup`)");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("IMAGE_SUBSYSTEM_NATIVE"), "{text}");
    for line in text.lines().filter(|l| l.trim_start().starts_with("Name: ")) {
        let dll = line.trim_start().trim_start_matches("Name: ").trim();
        assert!(["ndis.sys", "ntoskrnl.exe", "HAL.dll"].contains(&dll), "imports from {dll}");
    }
}

/// One function's stack frame, from its prologue.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Frame {
    /// The whole frame: what `sub rsp` reserves, the registers pushed
    /// before it and the return address.
    bytes: u64,
    /// What `sub rsp` reserves (locals, spills, outgoing arguments).
    reserved: u64,
    name: String,
}

/// Every function's stack frame, largest first, named from the linker map.
fn stack_frames() -> Vec<Frame> {
    let out = std::process::Command::new("llvm-objdump-19")
        .args(["-d", "--no-show-raw-insn", "--x86-asm-syntax=intel"])
        .arg(images_dir().join("rawnic.sys"))
        .output()
        .expect("llvm-objdump-19 runs (installed by `cargo make setup`)");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let map = std::fs::read_to_string(images_dir().join("rawnic.map")).expect("the linker map");
    let base = map
        .lines()
        .find_map(|l| l.trim().strip_prefix("Preferred load address is "))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .expect("the map's load address");
    let symbols = ndisim::pe::parse_map(&map);
    let function_of = |va: u64| {
        let rva = va.checked_sub(base)? as usize;
        symbols.iter().rev().find(|s| s.rva <= rva).map(|s| (s.rva, s.name.clone()))
    };
    let mut frames: Vec<Frame> = Vec::new();
    // (function start, pushes so far, frame already seen)
    let mut current: Option<(usize, u64, bool)> = None;
    for line in text.lines() {
        let Some((addr, insn)) = line.split_once(":") else { continue };
        let Ok(va) = u64::from_str_radix(addr.trim(), 16) else { continue };
        let insn = insn.trim();
        let Some((start, name)) = function_of(va) else { continue };
        if current.is_none_or(|(s, _, _)| s != start) {
            current = Some((start, 0, false));
        }
        let Some((_, pushes, seen)) = current.as_mut() else { continue };
        if *seen {
            continue;
        }
        if insn.starts_with("push") {
            *pushes += 1;
        } else if let Some(hex) = insn.strip_prefix("sub\trsp, 0x").or_else(|| insn.strip_prefix("sub rsp, 0x")) {
            let v = u64::from_str_radix(hex.split_whitespace().next().unwrap_or(""), 16).unwrap_or(0);
            let name = format!("{:#}", rustc_demangle::demangle(&name));
            frames.push(Frame { bytes: v + 8 * *pushes + 8, reserved: v, name });
            *seen = true;
        }
    }
    frames.sort_by(|a, b| b.cmp(a));
    frames
}

#[test]
fn no_function_needs_a_large_kernel_stack_frame() {
    // Kernel stacks are 24 KiB on x64 and the receive path already runs
    // deep inside NDIS; ndisim holds rawnic's whole call chains to a budget
    // of 8 KiB of it (rule stack-budget, measured in
    // `tests/driver_stack.rs`). No single function may reserve more than
    // 3 KiB of that for its locals; a frame of 4 KiB or more would also
    // need __chkstk, which the image must not import.
    let limit = 3 * 1024;
    let frames = stack_frames();
    assert!(frames.len() > 10, "found only {} stack frames: the disassembly format changed?", frames.len());
    eprintln!("the largest stack frames of rawnic.sys (whole frame, reserved by sub rsp):");
    for f in frames.iter().take(8) {
        eprintln!("  {:>5} {:>5} bytes  {}", f.bytes, f.reserved, f.name);
    }
    let largest = frames.iter().max_by_key(|f| f.reserved).expect("frames");
    assert!(
        largest.reserved <= limit,
        "{} reserves {} bytes of stack in its own frame (limit {limit})",
        largest.name,
        largest.reserved
    );
    assert!(frames.iter().any(|f| f.name.contains("DriverEntry")), "DriverEntry's frame is named");
    let imports = imports(&PeFile64::parse(&*image()).unwrap());
    assert!(!imports.iter().any(|(_, n)| n == "__chkstk"), "a frame over 4 KiB: rawnic.sys imports __chkstk");
}

/// What an instruction of x64 kernel code may not touch without saving it
/// first (the DDK's "Using Floating Point in a WDM Driver" and "Using
/// extended processor features"): the x87/MMX registers are not for x64
/// kernel code at all, and AVX's (YMM, ZMM, VEX or EVEX encodings) need
/// `KeSaveExtendedProcessorState`, which rawnic does not import. SSE is
/// the x64 compiler's own and is saved for it. `None`: the line is fine.
fn forbidden_state(line: &str) -> Option<&'static str> {
    let insn = instruction(line)?;
    let (mnemonic, operands) = insn.split_once(|c: char| c.is_whitespace()).unwrap_or((insn, ""));
    let register = |prefix: &str| {
        operands
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| w.strip_prefix(prefix).is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())))
    };
    if mnemonic.starts_with('f') || mnemonic == "emms" || operands.contains("st(") {
        Some("x87")
    } else if register("mm") {
        Some("MMX")
    } else if register("ymm") || register("zmm") || (mnemonic.starts_with('v') && !["verr", "verw"].contains(&mnemonic))
    {
        Some("AVX")
    } else {
        None
    }
}

/// The instruction of one line of `llvm-objdump -d`'s output
/// (`140001006:     \tmovdqa\txmmword ptr [rsp], xmm6`), if it has one.
fn instruction(line: &str) -> Option<&str> {
    let (addr, insn) = line.split_once(':')?;
    u64::from_str_radix(addr.trim(), 16).ok()?;
    Some(insn.trim()).filter(|i| !i.is_empty())
}

#[test]
fn forbidden_state_tells_sse_from_x87_mmx_and_avx() {
    let at = |i: &str| format!("140001006:     \t{i}");
    for ok in [
        "movdqa\txmmword ptr [rsp], xmm6",
        "pshufd\txmm1, xmm0, 0x50",
        "mov\trax, qword ptr [rcx + 0x8]",
        "movq\trax, xmm0",
        "verw\tword ptr [rax]",
        "prefetcht0\tbyte ptr [rdx]",
    ] {
        assert_eq!(forbidden_state(&at(ok)), None, "{ok}");
    }
    for (bad, what) in [
        ("fld\tqword ptr [rax]", "x87"),
        ("fxsave\t[rcx]", "x87"),
        ("fstp\tst(1)", "x87"),
        ("emms", "x87"),
        ("movq\tmm0, rax", "MMX"),
        ("paddb\tmm1, mm2", "MMX"),
        ("vmovdqa\tymm0, ymmword ptr [rcx]", "AVX"),
        ("vpxor\txmm0, xmm0, xmm0", "AVX"),
        ("vzeroupper", "AVX"),
        ("movaps\tzmm3, zmm4", "AVX"),
    ] {
        assert_eq!(forbidden_state(&at(bad)), Some(what), "{bad}");
    }
}

#[test]
fn no_x87_mmx_or_avx_instructions() {
    let out = std::process::Command::new("llvm-objdump-19")
        .args(["-d", "--no-show-raw-insn", "--x86-asm-syntax=intel"])
        .arg(rawnic_sys())
        .output()
        .expect("llvm-objdump-19 runs (installed by `cargo make setup`)");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().filter(|l| instruction(l).is_some()).collect();
    assert!(lines.len() > 10_000, "only {} instructions: the disassembly format changed?", lines.len());
    assert!(lines.iter().any(|l| l.contains("xmm")), "the image uses SSE registers: the format changed?");
    let bad: Vec<String> =
        lines.iter().filter_map(|l| forbidden_state(l).map(|what| format!("{what}: {}", l.trim()))).take(10).collect();
    assert!(
        bad.is_empty(),
        "rawnic.sys uses processor state x64 kernel code may not touch unsaved:\n{}",
        bad.join("\n")
    );
}

#[test]
fn rawnicctl_exe_is_a_windows_console_program() {
    let path = rawnic_tests::package_dir().join("rawnicctl.exe");
    let data = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run `cargo make package` first; `cargo make test` does)", path.display()));
    let file = PeFile64::parse(&*data).unwrap();
    let nt = file.nt_headers();
    assert_eq!(nt.file_header().machine.get(LE), pe::IMAGE_FILE_MACHINE_AMD64);
    assert_eq!(nt.optional_header().subsystem(), pe::IMAGE_SUBSYSTEM_WINDOWS_CUI);
    let imports = imports(&file);
    assert!(
        imports.iter().any(|(d, n)| d.eq_ignore_ascii_case("kernel32.dll") && n == "DeviceIoControl"),
        "rawnicctl.exe does not call DeviceIoControl"
    );
}
