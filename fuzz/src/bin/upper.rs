//! AFL target: `sandbox::fuzzing::upper` (see ../../README.md).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        sandbox::fuzzing::upper(data);
    });
}
