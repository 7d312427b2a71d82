//! The test bed the rawnicctl tests share: the real rawnic.sys in ndisim,
//! its device bridge on a Unix socket, and the built binary run against it.
#![allow(dead_code)]

use ndisim::{Sim, bridge};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A simulation of rawnic.sys with its device bridge, for the rawnicctl binary.
pub struct Bed {
    sim: Option<Sim>,
    bridge: Option<bridge::Bridge>,
    sock: PathBuf,
}

impl Bed {
    /// The real rawnic.sys on `adapters`, its bridge on a socket whose
    /// name starts with `tag`.
    pub fn new(tag: &str, adapters: &[&str]) -> Bed {
        let sim = rawnic_tests::drv::start(adapters);
        let sock = std::env::temp_dir().join(format!("rawnicctl-{tag}-{}-{}.sock", std::process::id(), unique()));
        let _ = std::fs::remove_file(&sock);
        let bridge = bridge::serve(&sim, &sock).expect("the bridge listens");
        Bed { sim: Some(sim), bridge: Some(bridge), sock }
    }

    pub fn sim(&self) -> &Sim {
        self.sim.as_ref().unwrap()
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rawnicctl"));
        c.arg("--device").arg(format!("unix:{}", self.sock.display())).args(args).env_remove("RAWNIC_DEVICE");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.status.success(), "{args:?} failed ({:?}): {}{}", o.status, text(&o.stdout), text(&o.stderr));
        text(&o.stdout)
    }

    pub fn spawn(&self, args: &[&str]) -> Child {
        self.cmd(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
    }

    /// Waits until `n` handles are open on binding `idx` (so a command in
    /// the background is ready for what comes next).
    pub fn wait_handles(&self, idx: usize, n: u32) {
        let start = Instant::now();
        while rawnic_tests::drv::entry(self.sim(), idx).open_handles < n {
            assert!(start.elapsed() < Duration::from_secs(20), "rawnicctl never opened the binding");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Stops the bridge and checks the verifier saw nothing wrong.
    pub fn finish(mut self) {
        drop(self.bridge.take());
        let r = self.sim.take().unwrap().unload();
        assert!(r.is_clean(), "{r}");
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        // The bridge first: its drop wakes its accept loop through the
        // socket file, then removes it.
        drop(self.bridge.take());
        let _ = std::fs::remove_file(&self.sock);
    }
}

pub fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn finish_child(c: Child) -> Output {
    let o = c.wait_with_output().unwrap();
    assert!(o.status.success(), "background rawnicctl failed ({:?}): {}{}", o.status, text(&o.stdout), text(&o.stderr));
    o
}

pub fn json_lines(s: &str) -> Vec<Value> {
    s.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"))).collect()
}
