//! Raw document → [`Profile`]: every problem is collected with its key path and position, then
//! the profile fails once with all of them.
//!
//! Two passes. `structure` deserialises the merged YAML into `raw` types, recording each shape
//! error (unknown key, wrong type) and removing the offending node so the rest still gets checked.
//! `semantic` then checks meaning (paths exist, ranges, overlaps, forbidden mounts) and applies
//! defaults.

mod semantic;
mod structure;

pub(crate) use semantic::{DEFAULT_GATEWAY_VERSION, is_env_name, is_exact_version};

use crate::environment::Environment;
use crate::profile::Profile;
use crate::profile::diagnostic::Diagnostics;
use crate::profile::error::ProfileError;
use crate::profile::load::Loaded;

/// Validate a merged profile document.
pub(crate) fn validate(loaded: &Loaded, env: &Environment) -> Result<Profile, ProfileError> {
    let mut diags = Diagnostics::new(&loaded.spans);
    let raw = structure::deserialize(loaded.value.clone(), &mut diags);
    let profile = semantic::check(raw, loaded, env, &mut diags);
    let mut items = diags.items;
    // Stable order: by position, errors before warnings at the same place.
    items.sort_by(|a, b| {
        let key =
            |d: &crate::profile::Diagnostic| d.location.as_ref().map(|l| (l.origin.to_string(), l.line, l.column));
        key(a).cmp(&key(b)).then(a.severity.cmp(&b.severity))
    });
    if items.iter().any(|d| d.severity == crate::profile::diagnostic::Severity::Error) {
        return Err(ProfileError::Invalid { diagnostics: items });
    }
    let mut profile = profile.expect("semantic check returns a profile whenever it records no error");
    profile.warnings = items;
    Ok(profile)
}
