//! Every name by which the host reaches a path once the plan lands: the path itself, and the
//! same entry through each symlink of the planned tree (links the baseline keeps and links the
//! plan creates) whose target resolves inside the workspace. Review and blocked rules are
//! matched against all of them, so `.vscode -> cfg/vsc` cannot carry `cfg/vsc/tasks.json` past
//! the review of `.vscode/**`, nor a baseline `Makefile -> mk/main.txt` a write of `mk/main.txt`.

use std::collections::HashMap;

use super::{Planned, Resolution, resolve};

/// Names listed per path at most; past it the path is reviewed as reachable by too many names
/// (a link to one of its own ancestors makes the family infinite).
pub(super) const MAX_NAMES: usize = 64;

pub(super) struct Reach {
    /// Where a link resolves (`""` is the root) → the links that resolve there, numbered.
    links: HashMap<String, Vec<(usize, String)>>,
    /// Each link → where it resolves.
    targets: HashMap<String, String>,
}

impl Reach {
    pub(super) fn new(planned: &Planned<'_>) -> Reach {
        let get = |p: &str| planned.get(p);
        let mut found: Vec<(String, String)> = Vec::new();
        for (link, target) in planned.links() {
            // Unfit targets are refused by `check_symlinks`; resolving them costs for nothing.
            if target.is_empty() || target.len() > super::MAX_TARGET {
                continue;
            }
            if let Resolution::Inside(Some(to)) = resolve(&get, link, target, None)
                && to != link
            {
                found.push((to, link.to_owned()));
            }
        }
        found.sort_unstable();
        let targets = found.iter().map(|(to, link)| (link.clone(), to.clone())).collect();
        let mut links: HashMap<String, Vec<(usize, String)>> = HashMap::new();
        for (i, (to, link)) in found.into_iter().enumerate() {
            links.entry(to).or_default().push((i, link));
        }
        Reach { links, targets }
    }

    /// Where the link at `link` resolves, when inside the workspace.
    pub(super) fn target(&self, link: &str) -> Option<&str> {
        self.targets.get(link).map(String::as_str)
    }

    /// `path` first, then every other name of it, breadth first; `false` when there are more
    /// than [`MAX_NAMES`] (the list then holds the first ones). Each link is taken at most once
    /// on the way to a name: a link to one of its own ancestors (`r -> .`) would otherwise give
    /// `r/p`, `r/r/p`, ... which only repeat what `r/p` shows.
    pub(super) fn names(&self, path: &str) -> (Vec<String>, bool) {
        let mut names: Vec<(String, Vec<usize>)> = vec![(path.to_owned(), Vec::new())];
        let mut i = 0;
        while i < names.len() && !self.links.is_empty() {
            let (name, used) = names[i].clone();
            // Each ancestor of `name` (the root, `a`, `a/b`, ..., `name` itself) that a link
            // resolves to gives one more name: the link, then the rest of the path.
            let ends = std::iter::once(0).chain(name.match_indices('/').map(|(at, _)| at)).chain([name.len()]);
            for end in ends {
                let Some(list) = self.links.get(&name[..end]) else { continue };
                let rest = if end == 0 && !name.is_empty() { format!("/{name}") } else { name[end..].to_owned() };
                for (n, link) in list {
                    let alias = format!("{link}{rest}");
                    if used.contains(n) || names.iter().any(|(known, _)| *known == alias) {
                        continue;
                    }
                    if names.len() == MAX_NAMES {
                        return (names.into_iter().map(|(n, _)| n).collect(), false);
                    }
                    let mut used = used.clone();
                    used.push(*n);
                    names.push((alias, used));
                }
            }
            i += 1;
        }
        (names.into_iter().map(|(n, _)| n).collect(), true)
    }
}
