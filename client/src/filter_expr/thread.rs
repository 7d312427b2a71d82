//! The part of libpcap's optimizer that decides which loads a frame
//! reaches: a jump to a test whose outcome an earlier test on every path
//! already decided goes straight on (the same test, or `jeq` of another
//! constant after a `jeq` that held), and a test whose two jumps meet is
//! skipped. Loads past a short frame's end end the program, so without
//! this a frame too short for a load whose value cannot change the
//! answer would be dropped where tcpdump takes it. Each test's code is
//! self-contained, so tests with the same code compute the same value.

use super::codegen::{Item, Target};
use rawnic_proto::BpfInsn;

/// A test: its code, its jump (opcode and constant), where it goes.
struct Node {
    code: Vec<BpfInsn>,
    op: u16,
    k: u32,
    t: Target,
    f: Target,
}

const JEQ_K: u16 = 0x15;
const LD_IMM: u16 = 0x00;

/// Items (tests, with labels between them) with the jumps threaded, and
/// how many labels they use; or, when no test is needed, the answer.
pub(super) fn thread(items: Vec<Item>, labels: usize) -> Result<(Vec<Item>, usize), Target> {
    // The tests, and the test each label lands on.
    let mut nodes: Vec<Node> = Vec::new();
    let mut label_node = vec![0usize; labels];
    let mut code = Vec::new();
    for item in items {
        match item {
            Item::Insn(i) => code.push(i),
            Item::Label(l) => label_node[l] = nodes.len(),
            Item::Cond { code: op, k, t, f } => {
                nodes.push(Node { code: std::mem::take(&mut code), op, k, t, f });
            }
        }
    }
    for n in &mut nodes {
        for t in [&mut n.t, &mut n.f] {
            if let Target::Label(l) = *t {
                *t = Target::Label(label_node[l]);
            }
        }
    }
    let n = nodes.len();
    let words = (2 * n).div_ceil(64);
    // Where the program starts: the first test, unless it is skipped.
    // (libpcap's `opt_root` keeps the code of a first test it skips,
    // but its later passes often drop those loads; dropping them always
    // agrees with its optimized code more often.)
    let mut entry = Target::Label(0);
    loop {
        while let Target::Label(s) = entry {
            let next = if nodes[s].t == nodes[s].f {
                Some(nodes[s].t)
            } else {
                decided(&nodes, &[], s).map(|yes| if yes { nodes[s].t } else { nodes[s].f })
            };
            match next {
                Some(x) => entry = x,
                None => break,
            }
        }
        let Target::Label(first) = entry else {
            return Err(entry);
        };
        // Reachable tests, and the edges (2 per test: true, false) that
        // dominate each test's entry, in order (every jump goes forward).
        let mut reach = vec![false; n];
        let mut dom: Vec<Option<Vec<u64>>> = vec![None; n];
        reach[first] = true;
        dom[first] = Some(vec![0; words]);
        for i in 0..n {
            if !reach[i] {
                continue;
            }
            let here = dom[i].clone().expect("reached");
            for (sense, t) in [(0, nodes[i].t), (1, nodes[i].f)] {
                if let Target::Label(s) = t {
                    reach[s] = true;
                    let mut d = here.clone();
                    let e = 2 * i + sense;
                    d[e / 64] |= 1 << (e % 64);
                    dom[s] = Some(match dom[s].take() {
                        None => d,
                        Some(old) => old.iter().zip(&d).map(|(a, b)| a & b).collect(),
                    });
                }
            }
        }
        let mut changed = false;
        for i in (0..n).filter(|&i| reach[i]) {
            for sense in 0..2 {
                let mut d = dom[i].clone().expect("reached");
                let e = 2 * i + sense;
                d[e / 64] |= 1 << (e % 64);
                let start = if sense == 0 { nodes[i].t } else { nodes[i].f };
                let mut to = start;
                while let Target::Label(s) = to {
                    let next = if nodes[s].t == nodes[s].f {
                        Some(nodes[s].t)
                    } else {
                        decided(&nodes, &d, s).map(|yes| if yes { nodes[s].t } else { nodes[s].f })
                    };
                    match next {
                        Some(x) => to = x,
                        None => break,
                    }
                }
                if to != start {
                    if sense == 0 {
                        nodes[i].t = to;
                    } else {
                        nodes[i].f = to;
                    }
                    changed = true;
                }
            }
        }
        if !changed {
            let mut out = Vec::new();
            for (i, node) in nodes.into_iter().enumerate() {
                if reach[i] {
                    out.push(Item::Label(i));
                    out.extend(node.code.into_iter().map(Item::Insn));
                    out.push(Item::Cond { code: node.op, k: node.k, t: node.t, f: node.f });
                }
            }
            return Ok((out, n));
        }
    }
}

/// Test `s`'s outcome when the edges `d` were all taken, if they decide
/// it (as libpcap's `fold_edge` does).
fn decided(nodes: &[Node], d: &[u64], s: usize) -> Option<bool> {
    let node = &nodes[s];
    // A constant compared with a constant (`17 >= 69`).
    if let [BpfInsn { code: LD_IMM, k: a, .. }] = node.code[..] {
        let k = node.k;
        match node.op {
            0x15 => return Some(a == k),
            0x25 => return Some(a > k),
            0x35 => return Some(a >= k),
            0x45 => return Some(a & k != 0),
            _ => {}
        }
    }
    for (w, &bits) in d.iter().enumerate() {
        let mut x = bits;
        while x != 0 {
            let e = w * 64 + x.trailing_zeros() as usize;
            x &= x - 1;
            let (q, held) = (&nodes[e / 2], e % 2 == 0);
            if q.op != node.op || q.code != node.code {
                continue;
            }
            if q.k == node.k {
                return Some(held);
            }
            if held && node.op == JEQ_K {
                return Some(false);
            }
        }
    }
    None
}
