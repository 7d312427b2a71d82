//! What every IRP gave back to its caller, in completion order
//! (`SimBuilder::record_outputs`, `Sim::outputs`), and where two such
//! records first differ.
//!
//! No single run can tell a byte the driver computed from one it copied out
//! of memory it never wrote: both are written. Two runs can. A
//! deterministic simulation replays the same interleaving from its seed, so
//! run twice with other garbage in what the driver never wrote
//! (`SimBuilder::garbage`: fresh pool, a fresh NBL's reserved words,
//! context data and preallocated data, the unwritten output of a buffered
//! request, the stack's paint), it must
//! give its callers the same statuses, lengths and bytes. Where it does
//! not, memory the driver never wrote reached user mode, or steered what
//! it did: on Windows, stale kernel memory handed to a process (an
//! information leak), or a branch on whatever was there.

/// One completed IRP, as its caller got it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The file object's number, in the order files were opened (1 on).
    pub file: u64,
    /// `IRP_MJ_*`.
    pub major: u8,
    /// The control code of an `IRP_MJ_DEVICE_CONTROL`, else 0.
    pub code: u32,
    pub status: i32,
    pub information: usize,
    /// How many bytes the caller got, and their FNV-1a hash.
    pub len: usize,
    pub hash: u64,
    /// The bytes themselves, while the simulation's record holds fewer
    /// than `KEEP` bytes in all (then only their hash).
    pub data: Option<Vec<u8>>,
}

/// Bytes of output a simulation's record keeps whole.
const KEEP: usize = 64 << 20;

/// A simulation's record.
#[derive(Debug, Default)]
pub(crate) struct Outputs {
    pub list: Vec<Output>,
    kept: usize,
}

impl Outputs {
    pub(crate) fn push(&mut self, file: u64, major: u8, code: u32, status: i32, information: usize, data: &[u8]) {
        let keep = self.kept + data.len() <= KEEP;
        if keep {
            self.kept += data.len();
        }
        self.list.push(Output {
            file,
            major,
            code,
            status,
            information,
            len: data.len(),
            hash: fnv1a(data),
            data: keep.then(|| data.to_vec()),
        });
    }
}

fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xCBF2_9CE4_8422_2325, |h, &x| (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01B3))
}

/// Where two runs' records first differ, said in a sentence (`None`: the
/// same).
pub fn first_difference(a: &[Output], b: &[Output]) -> Option<String> {
    let head = |o: &Output| (o.file, o.major, o.code, o.status, o.information, o.len, o.hash);
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        if head(x) == head(y) {
            continue;
        }
        let what = |o: &Output| {
            let op = super::irp::major_name(o.major);
            let code = if o.code != 0 { format!(" {:#010x}", o.code) } else { String::new() };
            format!(
                "{op}{code} on file {}: status {:#010x}, Information {}, {} bytes",
                o.file, o.status as u32, o.information, o.len
            )
        };
        let bytes = match (&x.data, &y.data) {
            (Some(p), Some(q)) if x.len == y.len && p != q => {
                let at = p.iter().zip(q).position(|(u, v)| u != v).unwrap_or(0);
                let end = (at + 16).min(p.len());
                format!(" (the bytes differ from offset {at}: {:02x?} against {:02x?})", &p[at..end], &q[at..end])
            }
            _ => String::new(),
        };
        return Some(format!("request {i} completed: {} in one run, {} in the other{bytes}", what(x), what(y)));
    }
    if a.len() != b.len() {
        return Some(format!("one run completed {} requests, the other {}", a.len(), b.len()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(data: &[u8]) -> Outputs {
        let mut o = Outputs::default();
        o.push(1, 14, 0x0012_0000, 0, data.len(), data);
        o
    }

    #[test]
    fn the_same_is_no_difference_and_a_byte_is_named() {
        let (a, b) = (rec(&[1, 2, 3, 4]), rec(&[1, 2, 3, 4]));
        assert_eq!(first_difference(&a.list, &b.list), None);
        let c = rec(&[1, 2, 9, 4]);
        let d = first_difference(&a.list, &c.list).expect("differs");
        assert!(d.contains("request 0") && d.contains("from offset 2"), "{d}");
        let mut e = rec(&[1, 2, 3, 4]);
        e.list[0].status = 0xC000_0001_u32 as i32;
        assert!(first_difference(&a.list, &e.list).expect("differs").contains("0xc0000001"));
        let mut f = rec(&[1, 2, 3, 4]);
        f.push(1, 3, 0, 0, 0, &[]);
        assert!(first_difference(&a.list, &f.list).expect("differs").contains("1 requests, the other 2"));
    }

    #[test]
    fn past_the_budget_only_hashes_are_kept() {
        let mut o = Outputs::default();
        o.push(1, 3, 0, 0, KEEP, &vec![0u8; KEEP]);
        o.push(1, 3, 0, 0, 1, &[7]);
        assert!(o.list[0].data.is_some() && o.list[1].data.is_none());
        let mut p = Outputs::default();
        p.push(1, 3, 0, 0, KEEP, &vec![0u8; KEEP]);
        p.push(1, 3, 0, 0, 1, &[8]);
        assert!(first_difference(&o.list, &p.list).is_some(), "told apart by the hash");
    }
}
