//! AFL target: `sandbox::fuzzing::tar` (see ../../README.md).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        sandbox::fuzzing::tar(data);
    });
}
