//! The PE loader: maps a kernel image with each section's own protection
//! (no page is ever writable and executable), applies DIR64 base
//! relocations, resolves imports by name against the emulated exports, and
//! later makes the discardable sections inaccessible.

use object::LittleEndian as LE;
use object::pe;
use object::read::pe::{ImageNtHeaders, ImageOptionalHeader, PeFile64};
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

const PAGE: usize = 4096;

/// Why an image did not load.
#[derive(Debug)]
pub enum LoadError {
    Io(String),
    Format(String),
    /// Imports no emulated export provides: every one, as `dll!name`.
    Unresolved(Vec<String>),
    Map(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io(e) => write!(f, "cannot read the image: {e}"),
            LoadError::Format(e) => write!(f, "not a loadable x64 kernel image: {e}"),
            LoadError::Unresolved(names) => {
                write!(f, "{} unresolved import(s): {}", names.len(), names.join(", "))
            }
            LoadError::Map(e) => write!(f, "cannot map the image: {e}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// One mapped section.
#[derive(Debug, Clone)]
pub struct Section {
    pub name: String,
    pub rva: usize,
    /// Mapped size, rounded up to whole pages.
    pub size: usize,
    pub prot: i32,
    pub discardable: bool,
    pub executable: bool,
}

/// A symbol from the linker map.
#[derive(Debug, Clone)]
pub struct Symbol {
    pub rva: usize,
    pub name: String,
}

/// A mapped image.
#[derive(Debug)]
pub struct Image {
    pub name: String,
    pub base: usize,
    pub size: usize,
    pub preferred_base: u64,
    pub entry_rva: usize,
    pub sections: Vec<Section>,
    /// Symbols from `<image>.map` beside the file, sorted by RVA.
    pub symbols: Vec<Symbol>,
    registry_slot: usize,
}

impl Image {
    /// Reads, maps and links `path`. `resolve(dll, name)` gives the address
    /// of an emulated export. `force_base` asks for that load address.
    pub fn load(
        path: &Path,
        resolve: &dyn Fn(&str, &str) -> Option<usize>,
        force_base: Option<usize>,
    ) -> Result<Image, LoadError> {
        let data = std::fs::read(path).map_err(|e| LoadError::Io(format!("{}: {e}", path.display())))?;
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let mut img = Self::map(&name, &data, resolve, force_base)?;
        let map_path = path.with_extension("map");
        if let Ok(text) = std::fs::read_to_string(&map_path) {
            img.symbols = parse_map(&text);
        }
        Ok(img)
    }

    fn map(
        name: &str,
        data: &[u8],
        resolve: &dyn Fn(&str, &str) -> Option<usize>,
        force_base: Option<usize>,
    ) -> Result<Image, LoadError> {
        let fmt = |e: object::Error| LoadError::Format(e.to_string());
        let file = PeFile64::parse(data).map_err(fmt)?;
        let nt = file.nt_headers();
        if nt.file_header().machine.get(LE) != pe::IMAGE_FILE_MACHINE_AMD64 {
            return Err(LoadError::Format("machine is not AMD64".into()));
        }
        let opt = nt.optional_header();
        let size = (opt.size_of_image() as usize).div_ceil(PAGE) * PAGE;
        if (opt.section_alignment() as usize) % PAGE != 0 {
            return Err(LoadError::Format(format!(
                "section alignment {:#x} is not a multiple of the page size",
                opt.section_alignment()
            )));
        }
        if let Some(b) = force_base {
            if b % (64 * 1024) != 0 {
                return Err(LoadError::Map(format!("image base {b:#x} is not 64 KiB aligned")));
            }
        }
        let hint = force_base.unwrap_or(0) as *mut libc::c_void;
        let flags =
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | if force_base.is_some() { libc::MAP_FIXED_NOREPLACE } else { 0 };
        // SAFETY: an anonymous private mapping; with MAP_FIXED_NOREPLACE the
        // kernel refuses to replace anything already mapped there.
        let base = unsafe { libc::mmap(hint, size, libc::PROT_READ | libc::PROT_WRITE, flags, -1, 0) };
        if base == libc::MAP_FAILED {
            return Err(LoadError::Map(format!("mmap of {size:#x} bytes failed: {}", std::io::Error::last_os_error())));
        }
        if let Some(b) = force_base {
            if base as usize != b {
                // SAFETY: unmapping what was just mapped.
                unsafe { libc::munmap(base, size) };
                return Err(LoadError::Map(format!("could not map at {b:#x}")));
            }
        }
        let base = base as usize;
        let mut img = Image {
            name: name.to_string(),
            base,
            size,
            preferred_base: opt.image_base(),
            entry_rva: opt.address_of_entry_point() as usize,
            sections: Vec::new(),
            symbols: Vec::new(),
            registry_slot: usize::MAX,
        };
        // From here on `img` unmaps on error (Drop).
        // SAFETY: `base..base+size` is our fresh read-write mapping.
        let mem = unsafe { std::slice::from_raw_parts_mut(base as *mut u8, size) };
        let hdr = (opt.size_of_headers() as usize).min(data.len()).min(size);
        mem[..hdr].copy_from_slice(&data[..hdr]);
        for s in file.section_table().iter() {
            let sname = String::from_utf8_lossy(s.raw_name()).trim_end_matches('\0').to_string();
            let rva = s.virtual_address.get(LE) as usize;
            let vsize = (s.virtual_size.get(LE) as usize).max(s.size_of_raw_data.get(LE) as usize);
            let c = s.characteristics.get(LE);
            if rva % PAGE != 0 || rva + vsize > size {
                return Err(LoadError::Format(format!("section {sname} at {rva:#x}+{vsize:#x} is misplaced")));
            }
            let raw_off = s.pointer_to_raw_data.get(LE) as usize;
            let raw_len = (s.size_of_raw_data.get(LE) as usize).min(vsize);
            if raw_len > 0 {
                let src = data
                    .get(raw_off..raw_off + raw_len)
                    .ok_or_else(|| LoadError::Format(format!("section {sname} raw data out of the file")))?;
                mem[rva..rva + raw_len].copy_from_slice(src);
            }
            let r = c & pe::IMAGE_SCN_MEM_READ != 0;
            let w = c & pe::IMAGE_SCN_MEM_WRITE != 0;
            let x = c & pe::IMAGE_SCN_MEM_EXECUTE != 0;
            if w && x {
                return Err(LoadError::Format(format!(
                    "section {sname} is writable and executable; ndisim maps no RWX pages"
                )));
            }
            let mut prot = 0;
            if r || w || x {
                prot |= libc::PROT_READ;
            }
            if w {
                prot |= libc::PROT_WRITE;
            }
            if x {
                prot |= libc::PROT_EXEC;
            }
            img.sections.push(Section {
                name: sname,
                rva,
                size: vsize.div_ceil(PAGE) * PAGE,
                prot,
                discardable: c & pe::IMAGE_SCN_MEM_DISCARDABLE != 0,
                executable: x,
            });
        }
        // Base relocations.
        let delta = (base as u64).wrapping_sub(opt.image_base());
        let sections = file.section_table();
        if let Some(mut blocks) = file.data_directories().relocation_blocks(data, &sections).map_err(fmt)? {
            while let Some(block) = blocks.next().map_err(fmt)? {
                for r in block {
                    let at = r.virtual_address as usize;
                    match r.typ {
                        pe::IMAGE_REL_BASED_ABSOLUTE => {}
                        pe::IMAGE_REL_BASED_DIR64 => {
                            let slot = mem
                                .get_mut(at..at + 8)
                                .ok_or_else(|| LoadError::Format(format!("relocation at {at:#x} outside the image")))?;
                            let v = u64::from_le_bytes(slot.try_into().unwrap()).wrapping_add(delta);
                            slot.copy_from_slice(&v.to_le_bytes());
                        }
                        t => return Err(LoadError::Format(format!("unsupported relocation type {t} at {at:#x}"))),
                    }
                }
            }
        } else if delta != 0 && nt.file_header().characteristics.get(LE) & pe::IMAGE_FILE_RELOCS_STRIPPED != 0 {
            return Err(LoadError::Format("the image has no relocations and cannot be moved".into()));
        }
        // Imports, by name.
        let mut missing = Vec::new();
        if let Some(table) = file.import_table().map_err(fmt)? {
            let mut descs = table.descriptors().map_err(fmt)?;
            while let Some(d) = descs.next().map_err(fmt)? {
                let dll = String::from_utf8_lossy(table.name(d.name.get(LE)).map_err(fmt)?).to_string();
                let iat = d.first_thunk.get(LE) as usize;
                let lookup = match d.original_first_thunk.get(LE) {
                    0 => d.first_thunk.get(LE),
                    t => t,
                };
                let mut thunks = table.thunks(lookup).map_err(fmt)?;
                let mut i = 0;
                while let Some(t) = thunks.next::<pe::ImageNtHeaders64>().map_err(fmt)? {
                    let fname = match table.import::<pe::ImageNtHeaders64>(t).map_err(fmt)? {
                        object::read::pe::Import::Name(_, n) => String::from_utf8_lossy(n).to_string(),
                        object::read::pe::Import::Ordinal(o) => {
                            missing.push(format!("{dll}!#{o} (import by ordinal)"));
                            i += 1;
                            continue;
                        }
                    };
                    match resolve(&dll, &fname) {
                        Some(addr) => {
                            let at = iat + i * 8;
                            let slot = mem
                                .get_mut(at..at + 8)
                                .ok_or_else(|| LoadError::Format(format!("IAT slot {at:#x} outside the image")))?;
                            slot.copy_from_slice(&(addr as u64).to_le_bytes());
                        }
                        None => missing.push(format!("{dll}!{fname}")),
                    }
                    i += 1;
                }
            }
        }
        if !missing.is_empty() {
            return Err(LoadError::Unresolved(missing));
        }
        // Protections: headers read-only, each section its own.
        // SAFETY: the header pages are part of our mapping.
        unsafe { protect(base, PAGE, libc::PROT_READ)? };
        for s in &img.sections {
            // SAFETY: each section lies inside our mapping (checked above).
            unsafe { protect(base + s.rva, s.size, s.prot)? };
        }
        img.registry_slot = register(&img);
        Ok(img)
    }

    /// Makes every discardable section (INIT, .reloc) inaccessible, as the
    /// kernel frees them after `DriverEntry`.
    pub fn discard_init(&self) -> Result<(), LoadError> {
        for s in self.sections.iter().filter(|s| s.discardable) {
            // SAFETY: the section lies inside our mapping.
            unsafe { protect(self.base + s.rva, s.size, libc::PROT_NONE)? };
        }
        mark_discarded(self.registry_slot);
        Ok(())
    }

    /// The address of RVA `rva`.
    pub fn va(&self, rva: usize) -> usize {
        self.base + rva
    }

    /// True when `addr` is inside an executable, non-discarded section.
    pub fn is_code(&self, addr: usize, discarded: bool) -> bool {
        self.sections.iter().any(|s| {
            s.executable
                && (!discarded || !s.discardable)
                && addr >= self.base + s.rva
                && addr < self.base + s.rva + s.size
        })
    }

    /// `symbol+0xoff` for an address in the image, from the linker map.
    pub fn symbolize(&self, addr: usize) -> String {
        symbolize_in(self.base, self.size, &self.symbols, addr)
    }
}

fn symbolize_in(base: usize, size: usize, symbols: &[Symbol], addr: usize) -> String {
    if addr < base || addr >= base + size {
        return format!("{addr:#x}");
    }
    let rva = addr - base;
    match symbols.iter().rev().find(|s| s.rva <= rva) {
        Some(s) => format!("{}+{:#x} (rva {rva:#x})", s.name, rva - s.rva),
        None => format!("rva {rva:#x}"),
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        unregister(self.registry_slot);
        // SAFETY: the mapping is ours; nothing runs driver code any more
        // (the simulation joins its threads before dropping the image).
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.size) };
    }
}

/// # Safety
/// `addr..addr+len` is part of one of our image mappings.
unsafe fn protect(addr: usize, len: usize, prot: i32) -> Result<(), LoadError> {
    if len == 0 {
        return Ok(());
    }
    // SAFETY: per the caller.
    if unsafe { libc::mprotect(addr as *mut libc::c_void, len, prot) } != 0 {
        return Err(LoadError::Map(format!(
            "mprotect({addr:#x}, {len:#x}) failed: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// Parses an lld-link `/MAP` file's "Publics by Value" into (rva, name),
/// sorted by RVA.
pub fn parse_map(text: &str) -> Vec<Symbol> {
    let base = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Preferred load address is "))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok());
    let Some(base) = base else { return Vec::new() };
    let mut out: Vec<Symbol> = text
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            if cols.len() >= 3 && cols[0].contains(':') && cols[2].len() == 16 {
                let va = u64::from_str_radix(cols[2], 16).ok()?;
                let rva = va.checked_sub(base)? as usize;
                Some(Symbol { rva, name: cols[1].to_string() })
            } else {
                None
            }
        })
        .collect();
    out.sort_by_key(|s| s.rva);
    out
}

// ---------------------------------------------------------------------------
// A registry of mapped images that the fault handler can read without locks.
// ---------------------------------------------------------------------------

const SLOTS: usize = 64;
const MAX_SECTIONS: usize = 16;

struct Slot {
    base: AtomicUsize,
    size: AtomicUsize,
    /// Bit i: section i is discardable.
    discardable: AtomicUsize,
    discarded: AtomicUsize,
    sec_start: [AtomicUsize; MAX_SECTIONS],
    sec_end: [AtomicUsize; MAX_SECTIONS],
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY_SLOT: Slot = Slot {
    base: AtomicUsize::new(0),
    size: AtomicUsize::new(0),
    discardable: AtomicUsize::new(0),
    discarded: AtomicUsize::new(0),
    sec_start: [const { AtomicUsize::new(0) }; MAX_SECTIONS],
    sec_end: [const { AtomicUsize::new(0) }; MAX_SECTIONS],
};

static REGISTRY: [Slot; SLOTS] = [EMPTY_SLOT; SLOTS];

fn register(img: &Image) -> usize {
    for (i, s) in REGISTRY.iter().enumerate() {
        if s.base.compare_exchange(0, usize::MAX, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            let mut mask = 0;
            for (j, sec) in img.sections.iter().take(MAX_SECTIONS).enumerate() {
                s.sec_start[j].store(img.base + sec.rva, Ordering::Relaxed);
                s.sec_end[j].store(img.base + sec.rva + sec.size, Ordering::Relaxed);
                if sec.discardable {
                    mask |= 1 << j;
                }
            }
            s.discardable.store(mask, Ordering::Relaxed);
            s.discarded.store(0, Ordering::Relaxed);
            s.size.store(img.size, Ordering::Relaxed);
            s.base.store(img.base, Ordering::Release);
            return i;
        }
    }
    usize::MAX
}

fn mark_discarded(slot: usize) {
    if let Some(s) = REGISTRY.get(slot) {
        s.discarded.store(1, Ordering::Release);
    }
}

fn unregister(slot: usize) {
    if let Some(s) = REGISTRY.get(slot) {
        s.base.store(0, Ordering::Release);
    }
}

/// What the fault handler knows of an address.
pub(crate) enum Where {
    Outside,
    /// In a loaded image, at this RVA.
    Image {
        base: usize,
        rva: usize,
        discarded_section: bool,
    },
}

/// Looks `addr` up without locking or allocating (signal-safe).
pub(crate) fn locate(addr: usize) -> Where {
    for s in REGISTRY.iter() {
        let base = s.base.load(Ordering::Acquire);
        if base == 0 || base == usize::MAX {
            continue;
        }
        let size = s.size.load(Ordering::Relaxed);
        if addr >= base && addr < base + size {
            let mut in_discarded = false;
            if s.discarded.load(Ordering::Acquire) != 0 {
                let mask = s.discardable.load(Ordering::Relaxed);
                for j in 0..MAX_SECTIONS {
                    if mask & (1 << j) != 0
                        && addr >= s.sec_start[j].load(Ordering::Relaxed)
                        && addr < s.sec_end[j].load(Ordering::Relaxed)
                    {
                        in_discarded = true;
                    }
                }
            }
            return Where::Image { base, rva: addr - base, discarded_section: in_discarded };
        }
    }
    Where::Outside
}
