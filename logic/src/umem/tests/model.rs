//! Kicks and completions as the driver makes them (`TxRun::take` writing
//! entries ahead, NBLs of a few frames each completed in any order, posted
//! by `CompRun::complete_ahead` when they may be, else `complete_each`)
//! against a plain model: the completion ring holds exactly the frames
//! posted, in the order they were posted (a refused descriptor at its
//! kick, an NBL's frames at its completion).

use super::*;
use proptest::prelude::*;

/// Frames an NBL carries at most here (the driver's 32, made small so
/// that a kick makes several).
const PER_NBL: usize = 3;

/// One step of the user, the driver or NDIS.
#[derive(Debug, Clone)]
enum Step {
    /// The user posts descriptors (`true`: a valid one) and kicks; the
    /// driver refuses those of `refuse` (as the filler does when a frame
    /// does not lie in one frame).
    Kick { descs: Vec<bool>, refuse: Vec<bool> },
    /// NDIS gives back the outstanding NBL at this place (modulo how
    /// many there are), sent or failed.
    Complete { which: usize, ok: bool },
    /// The user consumes up to this many published completions.
    Consume(u32),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (
            proptest::collection::vec(proptest::bool::weighted(0.85), 1..9),
            proptest::collection::vec(proptest::bool::weighted(0.15), 9)
        )
            .prop_map(|(descs, refuse)| Step::Kick { descs, refuse }),
        (0usize..8, proptest::bool::weighted(0.8)).prop_map(|(which, ok)| Step::Complete { which, ok }),
        (0u32..9).prop_map(Step::Consume),
    ]
}

/// An NBL the driver made: its frames' offsets, and where their entries
/// were written ahead if they were one after another (no refusal in its
/// kick).
struct Nbl {
    addrs: Vec<u64>,
    ahead: Option<u64>,
}

proptest! {
    /// (From any base: the indices across their wrap, the completion
    /// count across 2^32 or 2^33.)
    #[test]
    fn completions_written_ahead_post_exactly_what_was_completed(
        steps in proptest::collection::vec(step(), 1..60),
        b in super::wrap::base(),
    ) {
        let (l, m, mut s) = super::wrap::attached_at(b);
        // The driver's pool bound: frames out at most the smaller ring.
        let limit = l.tx.size.min(l.completion.size);
        let mut out: Vec<Nbl> = Vec::new();
        // Every entry posted, in order (free-running index = the base plus
        // its position).
        let mut posted: Vec<u64> = Vec::new();
        let mut cons = b.comp(0);
        let mut next_frame = 0u64;
        // Descriptors on the tx ring not taken yet.
        let mut pending: std::collections::VecDeque<TxDesc> = std::collections::VecDeque::new();
        for st in steps {
            match st {
                Step::Kick { descs, refuse } => {
                    // The user posts only as much as its tx ring has room
                    // for (the driver's consumer is published).
                    let tx_cons = m.load_u32(l.tx.consumer());
                    let tx_prod = m.load_u32(l.tx.producer());
                    let room = l.tx.size - tx_prod.wrapping_sub(tx_cons);
                    let ds: Vec<TxDesc> = descs
                        .iter()
                        .take(room as usize)
                        .map(|&valid| {
                            let addr = frame(&l, next_frame % u64::from(l.frame_count));
                            next_frame += 1;
                            TxDesc { addr, len: if valid { 60 } else { 0 }, flags: 0 }
                        })
                        .collect();
                    tx(&l, &m, &ds);
                    pending.extend(ds);
                    let in_flight: u32 = out.iter().map(|n| n.addrs.len() as u32).sum();
                    let n = s.tx_refresh(&s.tx_side(&m), limit - in_flight);
                    let side = s.tx_side(&m);
                    let mut r = s.tx_run();
                    let ahead = r.ahead();
                    let mut sent = Vec::new();
                    let mut at = 0usize;
                    let (k, invalid) = r.take(&side, n, 1518, |d, _, _, _| {
                        let ok = !refuse[at % refuse.len()];
                        at += 1;
                        if ok {
                            sent.push(d.addr);
                        }
                        ok
                    });
                    drop(r);
                    prop_assert_eq!(k, n);
                    // The model: the descriptors taken, in order; each
                    // invalid or refused one is posted at once.
                    let mut called = 0usize;
                    let mut model_sent = Vec::new();
                    for d in pending.drain(..n as usize) {
                        let goes = d.len != 0 && {
                            called += 1;
                            !refuse[(called - 1) % refuse.len()]
                        };
                        if goes {
                            model_sent.push(d.addr);
                        } else {
                            posted.push(d.addr);
                        }
                    }
                    prop_assert_eq!(&sent, &model_sent);
                    prop_assert_eq!(invalid as usize, n as usize - sent.len());
                    for (j, chunk) in sent.chunks(PER_NBL).enumerate() {
                        let start = ahead.wrapping_add((j * PER_NBL) as u64);
                        out.push(Nbl { addrs: chunk.to_vec(), ahead: (invalid == 0).then_some(start) });
                    }
                    s.publish(&m);
                }
                Step::Complete { which, ok } => {
                    if out.is_empty() {
                        continue;
                    }
                    let nbl = out.remove(which % out.len());
                    let mut c = s.comp_run();
                    let k = nbl.addrs.len() as u32;
                    if !nbl.ahead.is_some_and(|at| c.complete_ahead(at, k, ok)) {
                        let side = TxSide::new(c.layout(), &m);
                        c.complete_each(&side, nbl.addrs.iter().copied(), ok);
                    }
                    drop(c);
                    posted.extend(&nbl.addrs);
                    s.publish(&m);
                }
                Step::Consume(k) => {
                    let (_, prod) = s.producers();
                    cons = cons.wrapping_add(k.min(prod.wrapping_sub(cons)));
                    m.store_u32(l.completion.consumer(), cons);
                }
            }
            // What the user can read (everything it has not consumed) is
            // what was posted there.
            let (_, prod) = s.producers();
            prop_assert_eq!(prod.wrapping_sub(b.comp(0)) as usize, posted.len());
            prop_assert_eq!(s.comp_prod, b.comp.wrapping_add(posted.len() as u64));
            for i in cons.wrapping_sub(b.comp(0))..prod.wrapping_sub(b.comp(0)) {
                prop_assert_eq!(m.load_u64(l.completion.entry_at(b.comp(i))), posted[i as usize], "entry {}", i);
            }
            prop_assert_eq!(s.counters.bad_index, 0);
        }
    }
}
