//! Any text through `rawnic_client::compile_filter`: no panic; a program
//! it makes is one the driver's check takes, and run on the text's bytes
//! as a frame it answers 0 or 262144, as on the frame cut anywhere.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rawnic_client::{FILTER_TAKE, compile_filter};
use rawnic_logic::bpf::Program;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(insns) = compile_filter(text) else { return };
    let p = Program::new(insns.iter().copied()).expect("the driver's check takes a compiled program");
    for cut in [data.len(), data.len() / 2, 14.min(data.len())] {
        let r = p.run(&data[..cut]);
        assert!(r == 0 || r == FILTER_TAKE, "{text:?} answers {r}");
    }
});
