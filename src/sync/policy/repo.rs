//! Planted git repositories. git takes a directory as a repository when it holds `HEAD` together
//! with `objects` and `refs`, or `HEAD` with `commondir` (git's `is_git_directory`), whatever the
//! directory is called; since `safe.bareRepository` defaults to `all`, `cd dir && git status`
//! then runs that repository's config (`core.fsmonitor`, hooks). So a plan that creates or changes
//! anything inside such a directory (once the plan lands) is refused like a change to `.git`.
//! Names are compared as a case- and normalization-insensitive host compares them, and the
//! directory's listing is the planned tree's plus whatever the live host holds beside it.

use std::collections::{HashMap, HashSet};

use super::{Host, Planned, match_key, parent};
use crate::sync::plan::Plan;

/// The directories of the planned tree that git would take as a repository and that the plan
/// creates or changes something in, each with the plan's paths inside it.
pub(super) fn planted(plan: &Plan, planned: &Planned<'_>, host: &mut Host<'_>) -> Vec<(String, Vec<String>)> {
    let mut children: HashMap<&str, HashSet<String>> = HashMap::new();
    for path in planned.paths() {
        children.entry(parent(path)).or_default().insert(match_key(super::name(path)));
    }
    let mut verdict: HashMap<String, bool> = HashMap::new();
    let mut found: Vec<(String, Vec<String>)> = Vec::new();
    for path in plan.ops.iter().map(super::op_path) {
        let ends = std::iter::once(0).chain(path.match_indices('/').map(|(at, _)| at)).chain([path.len()]);
        for end in ends {
            let dir = &path[..end];
            let is_repo = *verdict.entry(dir.to_owned()).or_insert_with(|| {
                let mut names: HashSet<String> = children.get(dir).cloned().unwrap_or_default();
                // The live host may hold entries the baseline never recorded; they stay.
                let listed = host.list(dir).to_vec();
                names.extend(
                    listed
                        .iter()
                        .filter(|(n, _)| !host.known.contains(super::join(dir, n).as_str()))
                        .map(|(n, _)| match_key(n)),
                );
                let has = |n: &str| names.contains(n);
                has("head") && (has("commondir") || (has("objects") && has("refs")))
            });
            if is_repo {
                match found.iter_mut().find(|(d, _)| d == dir) {
                    Some((_, paths)) => paths.push(path.to_owned()),
                    None => found.push((dir.to_owned(), vec![path.to_owned()])),
                }
                break;
            }
        }
    }
    found
}
