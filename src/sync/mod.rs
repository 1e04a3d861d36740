//! The sync gate: the only way changes made in the VM reach the host.
//!
//! This is being built in stages (issue 4). Present: the baseline manifest of a workspace
//! (`manifest`) and its private versioned store (`store`), used by `sandbox baseline`; reading
//! an overlay upper with the xattr decision table (`upper`); and its interpretation against the
//! baseline into exact operations (`plan`). Still to come, in this order: policy, scan of staged
//! bytes, preview, journaled apply with recovery, undo, audit log — and only then `sandbox sync`.

pub(crate) mod error;
pub(crate) mod manifest;
// Not yet reachable from the command line: `sandbox sync` arrives with the apply step.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod plan;
pub(crate) mod store;
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod upper;

pub(crate) use error::SyncError;
