//! Build and packaging logic for rawnic, shared by the `xtask` command
//! (which Makefile.toml runs) and the workspace's build script.

pub mod catalog;
pub mod discover;
pub mod kernel;
pub mod kit;
pub mod mutants;
pub mod package;
pub mod sign;
pub mod stable;
pub mod stamp;
pub mod toolchain;
pub mod wine;

use std::path::PathBuf;

/// The workspace root (this crate lives in `<root>/xtask`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask has a parent").to_path_buf()
}
