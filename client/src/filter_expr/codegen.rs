//! The tests a filter expression is made of, and the classic BPF they
//! compile to: each test is straight-line code (loads and arithmetic into
//! A) ending in a conditional jump; `and`, `or` and `not` only wire the
//! jumps, so every jump goes forward. A load past the frame's end ends
//! the whole program with 0, as in libpcap's code: what matters is which
//! tests run before it, and the tests run in the order libpcap's do.

use super::Fail;
use rawnic_proto::BpfInsn;

/// What the program returns for a frame it takes (as `tcpdump -dd`).
pub const TAKE: u32 = 0x40000;

/// The conditional jump that ends a test: on A, against a constant or X.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Jump {
    Eq(u32),
    Gt(u32),
    Ge(u32),
    Set(u32),
    EqX,
    GtX,
    GeX,
}

/// A test: straight-line instructions, then the jump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Test {
    pub code: Vec<BpfInsn>,
    pub jump: Jump,
}

/// A boolean expression over tests, evaluated left to right with
/// short-circuits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Bool {
    Test(Test),
    And(Box<Bool>, Box<Bool>),
    Or(Box<Bool>, Box<Bool>),
    Not(Box<Bool>),
}

/// Dropped with a loop, as a long chain of `and`s nests deep.
impl Drop for Bool {
    fn drop(&mut self) {
        let mut stack = Vec::new();
        let take =
            |b: &mut Box<Bool>| std::mem::replace(&mut **b, Bool::Test(Test { code: Vec::new(), jump: Jump::Eq(0) }));
        match self {
            Bool::And(a, b) | Bool::Or(a, b) => stack.extend([take(a), take(b)]),
            Bool::Not(a) => stack.push(take(a)),
            Bool::Test(_) => return,
        }
        while let Some(mut b) = stack.pop() {
            match &mut b {
                Bool::And(x, y) | Bool::Or(x, y) => stack.extend([take(x), take(y)]),
                Bool::Not(x) => stack.push(take(x)),
                Bool::Test(_) => {}
            }
        }
    }
}

impl Bool {
    pub fn and(a: Bool, b: Bool) -> Bool {
        Bool::And(Box::new(a), Box::new(b))
    }
    pub fn or(a: Bool, b: Bool) -> Bool {
        Bool::Or(Box::new(a), Box::new(b))
    }
    pub fn not(a: Bool) -> Bool {
        Bool::Not(Box::new(a))
    }
    /// `a and b` where `a` may be absent.
    pub fn and_opt(a: Option<Bool>, b: Bool) -> Bool {
        match a {
            Some(a) => Bool::and(a, b),
            None => b,
        }
    }
}

// Opcodes (bpf.h).
pub(super) const LD_W_ABS: u16 = 0x20;
pub(super) const LD_H_ABS: u16 = 0x28;
pub(super) const LD_B_ABS: u16 = 0x30;
pub(super) const LD_W_IND: u16 = 0x40;
pub(super) const LD_H_IND: u16 = 0x48;
pub(super) const LD_B_IND: u16 = 0x50;
pub(super) const LD_IMM: u16 = 0x00;
pub(super) const LD_LEN: u16 = 0x80;
pub(super) const LDX_MEM: u16 = 0x61;
pub(super) const LDX_MSH: u16 = 0xb1;
pub(super) const ST: u16 = 0x02;
pub(super) const ALU_AND_K: u16 = 0x54;
pub(super) const ALU_ADD_X: u16 = 0x0c;
pub(super) const ALU_NEG: u16 = 0x84;
pub(super) const TAX: u16 = 0x07;
const JA: u16 = 0x05;
const RET_K: u16 = 0x06;

pub(super) fn insn(code: u16, k: u32) -> BpfInsn {
    BpfInsn::new(code, 0, 0, k)
}

/// The absolute load of `size` (1, 2, 4) bytes.
pub(super) fn ld_abs(size: u8, off: u32) -> BpfInsn {
    insn(
        match size {
            1 => LD_B_ABS,
            2 => LD_H_ABS,
            _ => LD_W_ABS,
        },
        off,
    )
}

/// The load of `size` bytes at X + `off`.
pub(super) fn ld_ind(size: u8, off: u32) -> BpfInsn {
    insn(
        match size {
            1 => LD_B_IND,
            2 => LD_H_IND,
            _ => LD_W_IND,
        },
        off,
    )
}

/// The `size` bytes at `off`, masked, compared by `jump`.
pub(super) fn cmp(size: u8, off: u32, mask: u32, jump: Jump) -> Bool {
    let mut code = vec![ld_abs(size, off)];
    if mask != u32::MAX {
        code.push(insn(ALU_AND_K, mask));
    }
    Bool::Test(Test { code, jump })
}

/// `cmp` for equality.
pub(super) fn eq(size: u8, off: u32, v: u32) -> Bool {
    cmp(size, off, u32::MAX, Jump::Eq(v))
}

/// Where a jump goes: a label, or the program's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    Label(usize),
    Take,
    Drop,
}

/// Code before jumps are resolved.
pub(super) enum Item {
    Insn(BpfInsn),
    Cond { code: u16, k: u32, t: Target, f: Target },
    Label(usize),
}

struct Emitter {
    items: Vec<Item>,
    labels: usize,
}

impl Emitter {
    fn label(&mut self) -> usize {
        self.labels += 1;
        self.labels - 1
    }

    /// The code of `b`, jumping to `t` when it holds and `f` when not; a
    /// loop over a stack, as a long chain of `and`s nests deep.
    fn emit(&mut self, b: &Bool, t: Target, f: Target) {
        enum Work<'b> {
            Emit(&'b Bool, Target, Target),
            Label(usize),
        }
        let mut work = vec![Work::Emit(b, t, f)];
        while let Some(w) = work.pop() {
            let (b, t, f) = match w {
                Work::Label(l) => {
                    self.items.push(Item::Label(l));
                    continue;
                }
                Work::Emit(b, t, f) => (b, t, f),
            };
            match b {
                Bool::Test(test) => {
                    self.items.extend(test.code.iter().map(|&i| Item::Insn(i)));
                    let (code, k) = match test.jump {
                        Jump::Eq(k) => (0x15, k),
                        Jump::Gt(k) => (0x25, k),
                        Jump::Ge(k) => (0x35, k),
                        Jump::Set(k) => (0x45, k),
                        Jump::EqX => (0x1d, 0),
                        Jump::GtX => (0x2d, 0),
                        Jump::GeX => (0x3d, 0),
                    };
                    self.items.push(Item::Cond { code, k, t, f });
                }
                // `a`, then (at label l) `b`: in that order off the stack.
                Bool::And(a, b) => {
                    let l = self.label();
                    work.extend([Work::Emit(b, t, f), Work::Label(l), Work::Emit(a, Target::Label(l), f)]);
                }
                Bool::Or(a, b) => {
                    let l = self.label();
                    work.extend([Work::Emit(b, t, f), Work::Label(l), Work::Emit(a, t, Target::Label(l))]);
                }
                Bool::Not(a) => work.push(Work::Emit(a, f, t)),
            }
        }
    }
}

/// The program for `b` (`None`: every frame): returns `TAKE` for a frame
/// `b` holds for, 0 for the others. A conditional jump reaches 255
/// instructions at most; one that must go farther jumps to an `ja`.
pub(super) fn program(b: Option<&Bool>) -> Result<Vec<BpfInsn>, Fail> {
    let Some(b) = b else { return Ok(vec![insn(RET_K, TAKE)]) };
    let mut e = Emitter { items: Vec::new(), labels: 0 };
    e.emit(b, Target::Take, Target::Drop);
    (e.items, e.labels) = match super::thread::thread(e.items, e.labels) {
        Ok(threaded) => threaded,
        // No test is needed.
        Err(answer) => return Ok(vec![insn(RET_K, if answer == Target::Take { TAKE } else { 0 })]),
    };
    // The length of each conditional jump: 1, or 3 when it needs `ja`s.
    let mut long = vec![false; e.items.len()];
    loop {
        // Where each item and label lands.
        let mut at = vec![0usize; e.items.len() + 1];
        let mut label_at = vec![0usize; e.labels];
        for (i, item) in e.items.iter().enumerate() {
            at[i + 1] = at[i]
                + match item {
                    Item::Insn(_) => 1,
                    Item::Cond { .. } => 1 + 2 * usize::from(long[i]),
                    Item::Label(l) => {
                        label_at[*l] = at[i];
                        0
                    }
                };
        }
        let end = at[e.items.len()];
        let target = |t: Target| match t {
            Target::Label(l) => label_at[l],
            Target::Take => end,
            Target::Drop => end + 1,
        };
        let mut grew = false;
        for (i, item) in e.items.iter().enumerate() {
            let far = match item {
                Item::Cond { t, f, .. } => target(*t) - at[i] - 1 > 255 || target(*f) - at[i] - 1 > 255,
                _ => false,
            };
            if far && !long[i] {
                long[i] = true;
                grew = true;
            }
        }
        if grew {
            continue;
        }
        let mut out = Vec::with_capacity(end + 2);
        for (i, item) in e.items.iter().enumerate() {
            match *item {
                Item::Insn(x) => out.push(x),
                Item::Cond { code, k, t, f } if long[i] => {
                    out.push(BpfInsn::new(code, 0, 1, k));
                    out.push(insn(JA, (target(t) - at[i] - 2) as u32));
                    out.push(insn(JA, (target(f) - at[i] - 3) as u32));
                }
                Item::Cond { code, k, t, f } => {
                    out.push(BpfInsn::new(code, (target(t) - at[i] - 1) as u8, (target(f) - at[i] - 1) as u8, k));
                }
                Item::Label(_) => {}
            }
        }
        out.push(insn(RET_K, TAKE));
        out.push(insn(RET_K, 0));
        if out.len() > rawnic_proto::MAX_PROGRAM_INSNS {
            return Err(Fail::whole(format!(
                "the expression compiles to {} instructions; a capture program has at most {}",
                out.len(),
                rawnic_proto::MAX_PROGRAM_INSNS
            )));
        }
        return Ok(out);
    }
}

/// `tcpdump -ddd`'s form of a program: the count, then `code jt jf k` per
/// line (what `parse_program` reads back).
pub fn format_ddd(insns: &[BpfInsn]) -> String {
    let mut s = format!("{}\n", insns.len());
    for i in insns {
        s.push_str(&format!("{} {} {} {}\n", i.code, i.jt, i.jf, i.k));
    }
    s
}
