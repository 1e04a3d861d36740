//! AFL target: `sandbox::fuzzing::profile` (see ../../README.md).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        sandbox::fuzzing::profile(data);
    });
}
