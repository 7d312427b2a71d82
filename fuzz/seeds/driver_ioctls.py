#!/usr/bin/env python3
"""Writes the seed inputs of the `driver_ioctls` fuzz target to
seeds/driver_ioctls/: a few whole programs (open a binding, send, receive,
read; a UMEM attached and used; OIDs; a capture program; a wait cancelled
by an NDIS event; threads racing a close; requests after the cleanup and
cancelled at dispatch; refused allocations) that a fuzzer starting from
nothing reaches only late.

Each input is read by `arbitrary::Unstructured` in the order
fuzz_targets/driver_ioctls.rs, driver_ioctls/requests.rs and
driver_ioctls/stress.rs draw; the
helpers below write the bytes those draws take (a draw from a range of
fewer than 256 values takes one byte, the value's offset from the start;
`ratio(a, b)` is yes when its byte is below `a`; a draw from a single
value takes none). Run from fuzz/: `python3 seeds/driver_ioctls.py`.
"""

import os

# Indexes in requests.rs's CODES.
GET_VERSION, LIST, WAIT_BINDS, OPEN, SEND_BATCH, QUERY_OID, SET_OID, GET_STATS, WAIT_EVENT = range(9)
RING_ATTACH, RING_DETACH, RING_WAIT, RING_KICK, SET_PROGRAM = range(9, 14)
# Step kinds (the low nibble of a step's first byte; the high one is the slot).
IOCTL, READ, WRITE, CANCEL, CLOSE, INJECT, ATTACH, POKE, SLEEP, PNP = 2, 7, 8, 9, 10, 11, 12, 13, 14, 15
# The steps of stress.rs: SLEEP's low nibble with a high one of 4..=8 (a
# race), 9..=11 (a shortage), 12..=15 (late requests; the slot is the high
# nibble mod 3).
RACE, SHORT, LATE = 4 << 4 | SLEEP, 9 << 4 | SLEEP, 12 << 4 | SLEEP


def yes(b=2):
    return [0]


def no(b):
    return [b - 1]


def frame(length=60):
    # The length's kind (any of 14..=200), the length, broadcast, 0x88B5,
    # no bytes of the input at its end.
    return [2, length - 14, 0, 0, 0]


def ioctl(slot, code, body, out=0):
    # A code from rawnic's list, a well-formed input, no damage, and the
    # output length: 0 the right one.
    return [slot << 4 | IOCTL, 0, code] + no(8) + body + [0, out]


def open_body():
    # A binding's name from LIST_BINDINGS (one binding: no byte), no
    # EtherTypes, promiscuous, default queue and snaplen, local sends
    # "others", not strict.
    return no(8) + [0] + no(4) + yes() * 3 + [0] + no(4)


def batch_body(n=1):
    return [n - 1] + (no(4) + frame()) * n


def oid_body(oid_index, len_index, query=True):
    # A query's input: empty.
    return no(8) + [oid_index, len_index] + (no(4) if query else [])


def inject(n=2):
    # Adapter 0 (one adapter: no byte), n frames, no low-resources flag, one
    # NBL per indication, one NET_BUFFER per NBL, at DISPATCH_LEVEL, no TCI.
    return [INJECT, n - 1] + frame() * n + no(4) + [0, 0] + no(4) + no(4)


def read(slot, len_index=5):
    return [slot << 4 | READ, len_index]


def wait_event_act():
    # An action of stress.rs's `request_act`: an IOCTL (0), WAIT_EVENT,
    # well-formed, no damage, the right output length.
    return [0, 0, WAIT_EVENT] + no(8) + [0] + no(4)


def read_act():
    # A read (2) of 65536 bytes.
    return [2, 2]


SEEDS = {
    # A binding opened; frames indicated; read; the stats.
    "open_inject_read": [0] + ioctl(0, OPEN, open_body()) + inject(3) + read(0) + ioctl(0, GET_STATS, []),
    # Two handles on the binding: one sends (loopback), the other reads.
    "send_loop_read": [0]
    + ioctl(0, OPEN, open_body())
    + ioctl(1, OPEN, open_body())
    + ioctl(0, SEND_BATCH, batch_body(2))
    + read(1)
    + [0 << 4 | WRITE]
    + frame()
    + [0]
    + read(1),
    # OIDs: a query of the link speed, a multicast list set, a query of the
    # statistics.
    "oids": [0]
    + ioctl(0, OPEN, open_body())
    + ioctl(0, QUERY_OID, oid_body(2, 5))
    + ioctl(0, SET_OID, oid_body(12, 4, query=False))
    + ioctl(0, QUERY_OID, oid_body(9, 6)),
    # A capture program taking every frame, then frames.
    "program": [0]
    + ioctl(0, SET_PROGRAM, no(16) + [1] + no(4) + [0, 0, 0])
    + ioctl(0, OPEN, open_body())
    + inject(2)
    + read(0),
    # A UMEM: 8 frames of 2048, rings of 8; four frames on the fill ring,
    # frames indicated, the rx ring waited for, a kick, a detach.
    "ring": [0]
    + ioctl(0, OPEN, open_body())
    + [0 << 4 | ATTACH, 0, 7, 0, 0, 0, 0, 0, 2]
    + no(8)
    + sum(([0 << 4 | POKE, 4] + yes() + [i] + yes() + [i, 0, 0, 0] for i in range(4)), [])
    + [0 << 4 | POKE, 0]
    + yes()
    + [4]
    + inject(2)
    + ioctl(0, RING_WAIT, [0])
    + ioctl(0, RING_KICK, [])
    + ioctl(0, RING_DETACH, []),
    # A wait for an event, then the link goes down and comes back; a
    # cancelled wait.
    "events": [0]
    + ioctl(0, OPEN, open_body())
    + ioctl(0, WAIT_EVENT, [])
    + [PNP, 0, PNP, 1]
    + ioctl(0, WAIT_EVENT, [])
    + [0 << 4 | CANCEL]
    + no(4),
    # With the adapter that completes opens, closes and OIDs late: an open,
    # an OID, a pause and restart, the handle abandoned.
    "pending_adapter": [1]
    + ioctl(0, OPEN, open_body())
    + ioctl(0, QUERY_OID, oid_body(4, 2))
    + [PNP, 2]
    + [0 << 4 | CLOSE, 0],
    # Three threads on one handle: a read, a wait for an event, and a close
    # of the handle (not as a dying process).
    "race_close": [0]
    + ioctl(0, OPEN, open_body())
    + [RACE, 1]
    + [0, 0] + read_act()
    + [0, 0] + wait_event_act()
    + [0, 5] + no(3),
    # The handle closed while another thread's read and wait are past the
    # handle check: they reach the driver after the cleanup.
    "late_wait": [0] + ioctl(0, OPEN, open_body()) + [LATE, 2, 1] + read_act() + wait_event_act(),
    # A read cancelled between the I/O manager and its dispatch routine
    # (late step's mode 5), then a wait for an event and a read sent after.
    "cancel_at_dispatch": [0]
    + ioctl(0, OPEN, open_body())
    + [LATE, 5, 2]
    + read_act()
    + wait_event_act()
    + read_act(),
    # The handle open (the stats asked), a pool shortage of one allocation
    # at the binding's open; then NBL allocations refused for good: frames
    # indicated and sent.
    "short": [0]
    + ioctl(0, GET_STATS, [])
    + [SHORT, 0, 0, 0]
    + ioctl(0, OPEN, open_body())
    + [SHORT, 1, 0, 4]
    + inject(2)
    + ioctl(0, SEND_BATCH, batch_body(2))
    + read(0),
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "driver_ioctls")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes(data))


if __name__ == "__main__":
    main()
