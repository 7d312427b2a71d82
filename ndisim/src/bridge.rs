//! The device bridge (to be filled).
