//! Lima's instance YAML as a strict, typed model.

pub(crate) mod driver;
mod model;

// Re-exported for the renderer and the CLI; unused until those land.
#[allow(unused_imports)]
pub(crate) use model::*;
