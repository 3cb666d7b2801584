//! Hooks where the vSMMU's deferred work and physical events are run.

/// Called when a vCPU idles (WFI): a place to make deferred progress.
pub fn idle() {}
