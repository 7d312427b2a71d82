//! The parts of rawnic.sys that need no `unsafe`: pure data structures and
//! rules, shared by the kernel image (where the wrapper layer feeds them
//! NDIS events) and unit-tested on the host.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod bpf;
pub mod budget;
pub mod events;
pub mod filter;
pub mod multicast;
pub mod restart;
pub mod ring;
pub mod state;
pub mod time;
pub mod umem;
pub mod vlan;
