//! AFL target: `sandbox::fuzzing::dotenv` (see ../../README.md).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        sandbox::fuzzing::dotenv(data);
    });
}
