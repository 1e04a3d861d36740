//! The sync gate: the only way changes made in the VM reach the host.
//!
//! `gate` runs the pipeline (docs/sync.md): `store`/`manifest` (the baseline), `upper` or `tar`
//! (the VM's changes, validated), `plan` (exact operations), `policy`, `apply::check_conflicts`
//! against the live host (`host`, never following symlinks), staging and the secret scan, the
//! preview, then `apply` (journal, backups, atomic writes), recovery and undo.
//!
//! Invariant: `apply` is the only code that writes into a host workspace, and only after every
//! check has passed on the same plan.

pub(crate) mod apply;
pub(crate) mod diff;
pub(crate) mod error;
pub(crate) mod findings;
#[cfg(test)]
pub(crate) mod fixture;
pub(crate) mod gate;
pub(crate) mod host;
pub(crate) mod manifest;
pub(crate) mod plan;
pub(crate) mod policy;
pub(crate) mod report;
pub(crate) mod stage;
pub(crate) mod store;
pub(crate) mod tar;
pub(crate) mod upper;

pub(crate) use error::SyncError;
