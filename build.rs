//! The playbook under `ansible/` is compiled into the binary (`include_dir!` in `src/vm/up.rs`);
//! on stable Rust that macro cannot tell cargo to rebuild when those files change, so say it here.
fn main() {
    println!("cargo:rerun-if-changed=ansible");
}
