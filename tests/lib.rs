#![allow(clippy::disallowed_methods)] // Tests drive the real binary and real tools (systemd-analyze, iptables, tmux).

//! The one integration-test binary (see docs/ARCHITECTURE.md). Each module covers one feature
//! through the real `sandbox` binary, driven by the `Test` builder in `test.rs`.

mod error_messages;
mod gate;
mod init;
mod profile;
mod render;
mod scan;
mod scan_containers;
mod scan_encodings;
mod secrets;
mod sync;
mod test;
mod vm;
