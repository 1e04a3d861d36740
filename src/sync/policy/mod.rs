//! The gate's path policy (overlay-sync-semantics.md §3.2–3.8, §4 phases 3–4): which planned
//! operations are refused outright, which need a human's explicit approval, and which are dropped
//! because the workspace excludes them.
//!
//! Invariants: a pure function of the plan, the upper's metadata and the baseline manifest. The
//! only host access is listing the entry names (and entry types) of directories the plan creates
//! into, walked without following symlinks, for the aliasing and symlink checks. Nothing is
//! written, opened for content or followed. Refusals hold even with an empty profile.
//!
//! Decisions:
//! - `check` also takes the baseline `Manifest`: "made executable" needs the baseline mode, and
//!   symlinks must be resolved over the *planned* tree (baseline minus deletes plus creates), which
//!   includes baseline links the plan leaves alone.
//! - Tiers: `E_*` rules refuse; `R_*` rules need explicit approval (never granted by `--yes`).
//!   Every op kind (write, mkdir, delete, mode change) is subject to the `.git`, blocked-name,
//!   allow/deny and review rules: deleting `.env` or a pre-commit hook is a change to review too.
//!   Name, length, depth and size rules apply to what the plan *creates*: names already in the
//!   baseline came from the host.
//! - Review paths: the §3.7 list. `Makefile`/`*.mk` and every `package.json` change are reviewed:
//!   without the baseline bytes the `scripts` field cannot be diffed, and a dependency change runs
//!   install scripts anyway. Matched at any depth (monorepos), case-insensitively.
//! - Blocked names match any path component, case-insensitively, after folding; `.envrc` is code
//!   (review), not a secret, so it is the one exception to `.env*`.
//! - Profile globs use globset defaults (as `profile::validate` checks them: `*` crosses `/`) and
//!   are case-sensitive; the alias check guarantees a name cannot land under another spelling. A
//!   directory op also matches as `dir/` (so `build/**` covers `build`); under `allow`, a directory
//!   is allowed when it matches or holds an allowed op.
//! - Aliasing (APFS: case- and normalization-insensitive): key = NFD, then per character
//!   `lower(upper(lower(c)))`, then NFD again, with invisible characters dropped (HFS+ ignorables).
//!   That is `char::to_lowercase`-based and at least as coarse as simple case folding (`ς`/`σ`,
//!   `K`/Kelvin sign) and coarser in places (`ß`/`ss`, `ı`/`i`): it can only refuse more.
//! - Names: trailing dot/space is refused (Windows/SMB alias); Windows reserved names (`CON`,
//!   `aux.txt`) are accepted, hosts are Linux/macOS. U+FFFD is refused: invalid UTF-8 never reaches a
//!   plan (the upper reader refuses it, `E_NAME`), and a replacement character marks a lossy decode.
//! - Symlink targets: resolved lexically with symlink expansion (RESOLVE_BENEATH semantics) over the
//!   planned tree; nonexistent components count as directories (`rsync --safe-links`). A target
//!   through a host symlink the baseline does not know is refused, since its target is unknown. A
//!   baseline link that stayed inside but escapes once the plan lands is refused too. Targets are
//!   capped at 1023 bytes (macOS PATH_MAX); more than 40 expansions is a loop and refused.
//! - Limits: `max_files` counts files, symlinks and directories created; depth is 64 components.
//! - Tool mount points: the empty folders the tool sandbox's container runtime makes in the
//!   agent's workspace for OpenClaw's skills mount are dropped like excluded paths (they carry
//!   nothing), but only while nothing else of the plan lies inside them and no host entry of the
//!   same name is deleted for them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::path::Path;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use unicode_normalization::UnicodeNormalization;

use crate::profile::SyncPolicy;
use crate::sync::gate::within;
use crate::sync::manifest::{Entry, Kind, Manifest};
use crate::sync::plan::{Op, Plan};
use crate::sync::upper::{Limits, Upper, UpperEntry, UpperKind};

mod lists;
mod reach;
mod repo;

use lists::{BLOCKED_NAMES, CODE_PATHS};

/// Stable rule names: `E_*` refuse, `R_*` need review.
pub(crate) mod rule {
    pub(crate) const GIT_PATH: &str = "E_GIT_PATH";
    pub(crate) const BLOCKED_NAME: &str = "E_BLOCKED_NAME";
    pub(crate) const DENIED: &str = "E_DENIED";
    pub(crate) const NOT_ALLOWED: &str = "E_NOT_ALLOWED";
    pub(crate) const SYMLINK_ESCAPE: &str = "E_SYMLINK_ESCAPE";
    pub(crate) const SYMLINK_LOOP: &str = "E_SYMLINK_LOOP";
    pub(crate) const SYMLINK_TARGET: &str = "E_SYMLINK_TARGET";
    pub(crate) const MODE: &str = "E_MODE";
    pub(crate) const NAME: &str = "E_NAME";
    pub(crate) const NAME_LENGTH: &str = "E_NAME_LENGTH";
    pub(crate) const NAME_ALIAS: &str = "E_NAME_ALIAS";
    pub(crate) const SIZE: &str = "E_SIZE";
    pub(crate) const TOTAL_SIZE: &str = "E_TOTAL_SIZE";
    pub(crate) const COUNT: &str = "E_COUNT";
    pub(crate) const DEPTH: &str = "E_DEPTH";
    pub(crate) const CODE_PATH: &str = "R_CODE_PATH";
    pub(crate) const EXECUTABLE: &str = "R_EXECUTABLE";
    pub(crate) const REVIEW_GLOB: &str = "R_REVIEW_GLOB";
    pub(crate) const GIT_REPO: &str = "E_GIT_REPO";
    pub(crate) const EXECUTABLE_CHANGED: &str = "R_EXECUTABLE_CHANGED";
    pub(crate) const PROFILE: &str = "R_PROFILE";
    pub(crate) const GIT_HOOKS: &str = "R_GIT_HOOKS";
    pub(crate) const MANY_NAMES: &str = "R_MANY_NAMES";
}

/// Where OpenClaw mounts its skills, read-only, in a tool container whose workspace is writable
/// (`WORKDIR/.openclaw/sandbox-skills/skills`; OpenClaw keeps the skills themselves in its state
/// folder). The container runtime (crun) creates a missing mount point inside the bind-mounted
/// workspace, so every sandboxed session leaves these empty folders in the upper. Deepest first.
const TOOL_MOUNT_POINTS: [&str; 3] = [".openclaw/sandbox-skills/skills", ".openclaw/sandbox-skills", ".openclaw"];

const MAX_DEPTH: usize = 64;
const MAX_NAME: usize = 255;
const MAX_PATH: usize = 4096;
const MAX_TARGET: usize = 1023;
const MAX_HOPS: usize = 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tier {
    /// The whole plan is refused.
    Refuse,
    /// Applied only with explicit approval of this path; never by `--yes` alone.
    Review,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Issue {
    /// The raw relative path (not escaped); `message` shows it escaped.
    pub(crate) path: String,
    pub(crate) rule: &'static str,
    pub(crate) tier: Tier,
    pub(crate) message: String,
    pub(crate) fix: String,
}

/// What the gate knows of the host beyond the workspace's files, as workspace-relative paths.
#[derive(Debug, Default, Clone)]
pub(crate) struct HostContext {
    /// Files and folders a profile lookup reads: the active profile's `extends` chain, the
    /// profiles folder, `$SANDBOX_PROFILE`'s file (issue 19: the agent must not rewrite them).
    pub(crate) profile_paths: Vec<String>,
    /// The folder the host repository's `core.hooksPath` names.
    pub(crate) hooks_path: Option<String>,
}

/// The compiled path policy of one profile and workspace.
#[derive(Debug)]
pub(crate) struct Policy {
    context: HostContext,
    allow: GlobSet,
    deny: GlobSet,
    review: GlobSet,
    exclude: GlobSet,
    blocked: GlobSet,
    code_paths: GlobSet,
    /// The folders the review list names (`.cargo` of `**/.cargo/config.toml`): a symlink by
    /// such a name is reviewed even while it leads nowhere (a later sync can fill it).
    review_folders: GlobSet,
    max_file_size: u64,
    max_total_size: u64,
    max_files: u64,
}

fn globs<'a>(patterns: impl IntoIterator<Item = &'a str>, case_insensitive: bool) -> Result<GlobSet, globset::Error> {
    let mut set = GlobSetBuilder::new();
    for p in patterns {
        set.add(GlobBuilder::new(p).case_insensitive(case_insensitive).build()?);
    }
    set.build()
}

fn glob_hit(set: &GlobSet, path: &str, is_dir: bool) -> bool {
    set.is_match(path) || (is_dir && set.is_match(format!("{path}/")))
}

fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

fn name(path: &str) -> &str {
    path.rfind('/').map_or(path, |i| &path[i + 1..])
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() { name.to_owned() } else { format!("{dir}/{name}") }
}

fn op_path(op: &Op) -> &str {
    match op {
        Op::Delete { path } | Op::Mkdir { path, .. } | Op::Write { path } | Op::DirMode { path, .. } => path,
    }
}

fn creates(op: &Op) -> bool {
    matches!(op, Op::Mkdir { .. } | Op::Write { .. })
}

/// HFS+ ignorables and other invisible format characters: dropped from alias keys, refused in names.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// Why a character may not appear in a created name or a symlink target.
fn bad_char(c: char) -> Option<&'static str> {
    match c {
        '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}' => Some("a line break"),
        c if c.is_control() => Some("a control character"),
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => {
            Some("a bidirectional-text control")
        }
        c if is_invisible(c) => Some("an invisible (zero-width) character"),
        '\u{FFFD}' => Some("U+FFFD, the mark of a lossy decode of invalid UTF-8"),
        _ => None,
    }
}

/// `path` with every character `bad_char` objects to (and backticks) shown as `\u{..}`.
fn shown(path: &str) -> String {
    path.chars()
        .map(|c| if bad_char(c).is_some() || c == '`' { c.escape_unicode().to_string() } else { c.to_string() })
        .collect()
}

/// The alias key of one name on a case- and normalization-insensitive host (see the module docs).
fn fold(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.nfd().filter(|c| !is_invisible(*c)) {
        for l in c.to_lowercase() {
            for u in l.to_uppercase() {
                out.extend(u.to_lowercase());
            }
        }
    }
    out.nfd().collect()
}

/// `fold`, then what Windows/SMB ignore: an NTFS stream suffix (`:…`) and trailing dots and spaces.
fn match_key(name: &str) -> String {
    let key = fold(name);
    let key = key.split(':').next().unwrap_or_default();
    key.trim_end_matches(['.', ' ']).to_owned()
}

/// Version-control state folders whose config runs commands (hooks, diff and merge tools,
/// fsmonitor): git's, and Mercurial's (`.hg/hgrc` hooks), Jujutsu's, Subversion's, Bazaar's,
/// darcs', Pijul's and Fossil's checkout files.
const VCS_STATE: [&str; 10] =
    [".git", "git~1", ".hg", ".jj", ".svn", ".bzr", "_darcs", ".pijul", ".fslckout", "_fossil_"];

/// `.git` (or another version-control state folder) under any alias: case, Unicode form,
/// ignorables, trailing dots/spaces, NTFS `git~1`.
fn is_git_alias(name: &str) -> bool {
    VCS_STATE.contains(&match_key(name).as_str())
}

fn verb(op: &Op) -> &'static str {
    match op {
        Op::Delete { .. } => "delete",
        Op::Mkdir { .. } => "create directory",
        Op::Write { .. } => "write",
        Op::DirMode { .. } => "change the mode of",
    }
}

fn issue(path: &str, rule: &'static str, tier: Tier, message: String, fix: impl Into<String>) -> Issue {
    Issue { path: path.to_owned(), rule, tier, message, fix: fix.into() }
}

/// Host directory listings, walked from the root without following symlinks; absent or
/// unreadable directories list as empty. Entries are (name, is or may be a symlink).
struct Host<'a> {
    root: &'a Path,
    listed: HashMap<String, Vec<(String, bool)>>,
    /// The baseline's paths.
    known: HashSet<&'a str>,
}

impl Host<'_> {
    fn list(&mut self, dir: &str) -> &[(String, bool)] {
        let root = self.root;
        self.listed.entry(dir.to_owned()).or_insert_with(|| read_names(root, dir))
    }
}

fn read_names(root: &Path, dir: &str) -> Vec<(String, bool)> {
    let mut at = root.to_path_buf();
    for comp in dir.split('/').filter(|c| !c.is_empty()) {
        if comp == "." || comp == ".." {
            return Vec::new();
        }
        at.push(comp);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.is_dir() => {}
            _ => return Vec::new(),
        }
    }
    let Ok(entries) = std::fs::read_dir(&at) else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.file_type().map_or(true, |t| t.is_symlink())))
        .collect()
}

#[derive(Clone, Copy)]
enum Node<'a> {
    Dir,
    File,
    Link(&'a str),
}

fn base_node(e: &Entry) -> Node<'_> {
    match &e.kind {
        Kind::Dir => Node::Dir,
        Kind::Symlink { target } => Node::Link(target),
        Kind::File { .. } | Kind::Special => Node::File,
    }
}

/// The tree once the plan is applied: baseline, minus deletes, plus creates.
struct Planned<'a> {
    base: &'a Manifest,
    created: HashMap<&'a str, Node<'a>>,
    deleted: HashSet<&'a str>,
}

impl<'a> Planned<'a> {
    fn new(plan: &'a Plan, uppers: &HashMap<&str, &'a UpperEntry>, base: &'a Manifest) -> Self {
        let mut planned = Planned { base, created: HashMap::new(), deleted: HashSet::new() };
        for op in &plan.ops {
            match op {
                Op::Delete { path } => _ = planned.deleted.insert(path),
                Op::Mkdir { path, .. } => _ = planned.created.insert(path, Node::Dir),
                Op::Write { path } => {
                    let node = match uppers.get(path.as_str()).map(|e| &e.kind) {
                        Some(UpperKind::Symlink { target }) => Node::Link(target),
                        _ => Node::File,
                    };
                    planned.created.insert(path, node);
                }
                Op::DirMode { .. } => {}
            }
        }
        planned
    }

    /// Every symlink of the planned tree, as (link, target).
    fn links(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        let created =
            self.created.iter().filter_map(|(p, n)| if let Node::Link(t) = n { Some((*p, *t)) } else { None });
        let kept = self.base.entries.iter().filter_map(|(p, e)| match &e.kind {
            Kind::Symlink { target }
                if !self.created.contains_key(p.as_str()) && !self.deleted.contains(p.as_str()) =>
            {
                Some((p.as_str(), target.as_str()))
            }
            _ => None,
        });
        created.chain(kept)
    }

    /// Every path of the planned tree.
    fn paths(&self) -> impl Iterator<Item = &'a str> + '_ {
        let kept = self.base.entries.keys().map(String::as_str).filter(|p| !self.deleted.contains(p));
        self.created.keys().copied().chain(kept.filter(|p| !self.created.contains_key(p)))
    }

    fn get(&self, path: &str) -> Option<Node<'a>> {
        if let Some(node) = self.created.get(path) {
            return Some(*node);
        }
        if self.deleted.contains(path) { None } else { self.base.entries.get(path).map(base_node) }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Resolution {
    /// Where it resolves, or `None` when it dangles past a file (ENOTDIR).
    Inside(Option<String>),
    /// Absolute or above the root; `via` is the last link expanded.
    Escapes {
        via: Option<String>,
    },
    Git(String),
    Loop,
    /// Through a host symlink the tree does not know.
    HostLink(String),
}

/// Resolve `link` → `target` lexically over a tree, expanding the tree's symlinks, never leaving
/// the root (RESOLVE_BENEATH semantics). Missing components count as directories.
fn resolve<'a>(
    get: &dyn Fn(&str) -> Option<Node<'a>>,
    link: &'a str,
    target: &'a str,
    mut host: Option<&mut Host<'_>>,
) -> Resolution {
    if target.starts_with('/') {
        return Resolution::Escapes { via: None };
    }
    // Lexically first (spec §3.3): `a.txt/../../x` climbs out whatever `a.txt` is, and a tool
    // that normalises paths before it opens them takes it at its word.
    let mut depth = parent(link).split('/').filter(|c| !c.is_empty()).count();
    for comp in target.split('/') {
        match comp {
            "" | "." => {}
            ".." if depth == 0 => return Resolution::Escapes { via: None },
            ".." => depth -= 1,
            _ => depth += 1,
        }
    }
    // The path so far, and where each of its components starts: pushing and popping a
    // component is O(its length), so a long target costs linear time, not quadratic.
    let mut here = String::new();
    let mut starts: Vec<usize> = Vec::new();
    let push = |here: &mut String, starts: &mut Vec<usize>, comp: &str| {
        starts.push(here.len());
        if !here.is_empty() {
            here.push('/');
        }
        here.push_str(comp);
    };
    let pop = |here: &mut String, starts: &mut Vec<usize>| starts.pop().map(|at| here.truncate(at)).is_some();
    for comp in parent(link).split('/').filter(|c| !c.is_empty()) {
        push(&mut here, &mut starts, comp);
    }
    let mut queue: VecDeque<&str> = target.split('/').collect();
    let (mut hops, mut via) = (0, None);
    while let Some(comp) = queue.pop_front() {
        match comp {
            "" | "." => continue,
            ".." => {
                if !pop(&mut here, &mut starts) {
                    return Resolution::Escapes { via };
                }
                continue;
            }
            _ => {}
        }
        if is_git_alias(comp) {
            return Resolution::Git(join(&here, comp));
        }
        push(&mut here, &mut starts, comp);
        match get(&here) {
            Some(Node::Link(next)) => {
                hops += 1;
                if hops > MAX_HOPS {
                    return Resolution::Loop;
                }
                let at = here.clone();
                pop(&mut here, &mut starts);
                if next.starts_with('/') {
                    return Resolution::Escapes { via: Some(at) };
                }
                for part in next.split('/').rev() {
                    queue.push_front(part);
                }
                via = Some(at);
            }
            // Anything after a file fails with ENOTDIR: the link dangles, inside.
            Some(Node::File) if queue.iter().any(|c| !c.is_empty() && *c != ".") => return Resolution::Inside(None),
            Some(Node::File | Node::Dir) => {}
            None => {
                // Only a host entry the baseline does not know can be a surprise: one it
                // records is gone from the planned tree because this very plan deletes it.
                if let Some(host) = host.as_deref_mut()
                    && !host.known.contains(here.as_str())
                    && host.list(parent(&here)).iter().any(|(n, is_link)| *is_link && n == comp)
                {
                    return Resolution::HostLink(here);
                }
            }
        }
    }
    Resolution::Inside(Some(here))
}

impl Policy {
    pub(crate) fn new(sync: &SyncPolicy, exclude: &[String]) -> Result<Self, globset::Error> {
        let user = |g: &[String]| globs(g.iter().map(String::as_str), false);
        Ok(Policy {
            context: HostContext::default(),
            allow: user(&sync.allow)?,
            deny: user(&sync.deny)?,
            review: user(&sync.review)?,
            exclude: user(exclude)?,
            blocked: globs(BLOCKED_NAMES.iter().copied(), true)?,
            code_paths: globs(CODE_PATHS.iter().copied(), true)?,
            review_folders: globs(review_folders(CODE_PATHS).iter().map(String::as_str), true)?,
            max_file_size: sync.max_file_size.bytes(),
            max_total_size: sync.max_total_size.bytes(),
            max_files: sync.max_files,
        })
    }

    /// The same policy, knowing `context` about the host.
    pub(crate) fn with_context(self, context: HostContext) -> Self {
        Policy { context, ..self }
    }

    /// Whether `path` is never synced: it or an ancestor matches an `exclude` glob, as itself or
    /// as `dir/`.
    pub(crate) fn is_excluded(&self, path: &str) -> bool {
        !self.exclude.is_empty()
            && path
                .char_indices()
                .filter(|(_, c)| *c == '/')
                .map(|(i, _)| &path[..i])
                .chain([path])
                .any(|p| glob_hit(&self.exclude, p, true))
    }

    /// What the upper reader may read before this policy has seen the plan. The total is twice
    /// `max_total_size` because the reader also reads copy-ups the plan then drops as unchanged.
    pub(crate) fn read_limits(&self) -> Limits {
        Limits {
            max_file_bytes: self.max_file_size,
            max_total_bytes: self.max_total_size.saturating_mul(2),
            // As the tar reader's: unchanged copy-ups and deletions count too.
            max_entries: self.max_files.saturating_mul(4).max(1000),
        }
    }

    /// Drop ops on excluded paths (workspace `exclude` globs): they are never synced, only listed.
    /// A path is excluded when it or an ancestor matches, as itself or as `dir/`. A directory
    /// delete (or a file replacing a directory) is dropped too when excluded entries stay inside.
    pub(crate) fn exclude(&self, plan: &mut Plan) -> Vec<String> {
        if self.exclude.is_empty() {
            return Vec::new();
        }
        let mut dropped = Vec::new();
        let mut pinned: BTreeSet<String> = BTreeSet::new();
        plan.ops.retain(|op| {
            let path = op_path(op);
            if !self.is_excluded(path) {
                return true;
            }
            if matches!(op, Op::Delete { .. }) {
                let mut p = path;
                while !p.is_empty() {
                    p = parent(p);
                    pinned.insert(p.to_owned());
                }
            }
            dropped.push(path.to_owned());
            false
        });
        plan.ops.retain(|op| match op {
            Op::Delete { path } | Op::Write { path } if pinned.contains(path) => {
                dropped.push(path.clone());
                false
            }
            _ => true,
        });
        dropped
    }

    /// Drop the creation of the tool sandbox's mount points ([`TOOL_MOUNT_POINTS`]): an empty
    /// folder carries nothing, and syncing them would leave OpenClaw's layout in every project the
    /// agent worked in. A mount point stays in the plan when anything else the plan does lies
    /// inside it, or when it replaces a host entry (the delete would otherwise go alone).
    pub(crate) fn drop_tool_mount_points(plan: &mut Plan) -> Vec<String> {
        let mut dropped = Vec::new();
        for point in TOOL_MOUNT_POINTS {
            let creates_it = |op: &Op| matches!(op, Op::Mkdir { path, .. } if path == point);
            let alone = plan.ops.iter().all(|op| creates_it(op) || !within(op_path(op), point));
            if alone && plan.ops.iter().any(creates_it) {
                plan.ops.retain(|op| !creates_it(op));
                dropped.push(point.to_owned());
            }
        }
        dropped
    }

    /// Every issue with `plan` (after `exclude`), sorted by path then rule.
    pub(crate) fn check(&self, plan: &Plan, upper: &Upper, base: &Manifest, host_root: &Path) -> Vec<Issue> {
        let uppers: HashMap<&str, &UpperEntry> = upper.entries.iter().map(|e| (e.path.as_str(), e)).collect();
        let known = base.entries.keys().map(String::as_str).collect();
        let mut host = Host { root: host_root, listed: HashMap::new(), known };
        let mut out = Vec::new();
        let planned = Planned::new(plan, &uppers, base);
        let reach = reach::Reach::new(&planned);
        self.check_ops(plan, &uppers, base, &reach, &mut out);
        self.check_links_into_reviewed(plan, &uppers, &planned, &reach, &mut out);
        for (dir, paths) in repo::planted(plan, &planned, &mut host) {
            let shown_dir = if dir.is_empty() { ".".to_owned() } else { shown(&dir) };
            for path in paths {
                let message = format!(
                    "refusing to write `{}`: `{shown_dir}` would be a git repository (it holds `HEAD` with \
                     `objects` and `refs`, or `commondir`), and git runs a repository's config and hooks",
                    shown(&path)
                );
                let fix = "git state never crosses the gate; bring commits over as a bundle (`git bundle`), or \
                           exclude the folder";
                out.push(issue(&path, rule::GIT_REPO, Tier::Refuse, message, fix));
            }
        }
        check_names(plan, base, &mut out);
        self.check_limits(plan, &uppers, &upper.unread, &mut out);
        check_aliases(plan, &mut host, &mut out);
        check_symlinks(self, plan, &uppers, base, &mut host, &mut out);
        out.sort_by(|a, b| (a.path.as_str(), a.rule).cmp(&(b.path.as_str(), b.rule)));
        out.dedup_by(|a, b| a.path == b.path && a.rule == b.rule);
        out
    }

    /// The credential-like component of `path`, if any.
    fn blocked_component<'p>(&self, path: &'p str) -> Option<&'p str> {
        let mut under_aws = false;
        for comp in path.split('/') {
            let key = match_key(comp);
            if (!key.starts_with(".envrc") && self.blocked.is_match(&key)) || (under_aws && key == "credentials") {
                return Some(comp);
            }
            under_aws |= key == ".aws";
        }
        None
    }

    fn check_ops(
        &self,
        plan: &Plan,
        uppers: &HashMap<&str, &UpperEntry>,
        base: &Manifest,
        reach: &reach::Reach,
        out: &mut Vec<Issue>,
    ) {
        let is_dir = |op: &Op| match op {
            Op::Mkdir { .. } | Op::DirMode { .. } => true,
            Op::Delete { path } => matches!(base.entries.get(path).map(|e| &e.kind), Some(Kind::Dir)),
            Op::Write { .. } => false,
        };
        let allowed_leaves: BTreeSet<&str> =
            plan.ops.iter().filter(|op| !is_dir(op)).map(op_path).filter(|p| glob_hit(&self.allow, p, false)).collect();
        for op in &plan.ops {
            let (path, dir) = (op_path(op), is_dir(op));
            let (p, v) = (shown(path), verb(op));
            // A symlink may lead to a folder: the host's tools see `.vscode -> x` as `.vscode/`.
            let link = matches!(uppers.get(path).map(|e| &e.kind), Some(UpperKind::Symlink { .. }))
                && matches!(op, Op::Write { .. });
            let as_dir = dir || link;
            let (names, complete) = reach.names(path);
            // `(reached as `x`)` when a rule matched another name of the path than its own.
            let via = |name: &str| {
                if name == path { String::new() } else { format!(" (the host reaches it as `{}`)", shown(name)) }
            };
            if !complete {
                let message = format!(
                    "`{p}` is reached by more than {} names through symlinks; not every name was checked",
                    reach::MAX_NAMES
                );
                out.push(issue(
                    path,
                    rule::MANY_NAMES,
                    Tier::Review,
                    message,
                    "read the change, then approve this path",
                ));
            }
            if let Some(comp) = path.split('/').find(|c| is_git_alias(c)) {
                let message = format!(
                    "refusing to {v} `{p}`: it is inside `{}`, version-control state (`.git` or an alias, or another \
                     system's)",
                    shown(comp)
                );
                let fix = "git state never crosses the gate (hooks and config run code); commit on the host, or bring \
                           commits over as a bundle (`git bundle`)";
                out.push(issue(path, rule::GIT_PATH, Tier::Refuse, message, fix));
            }
            if let Some((name, comp)) = names.iter().find_map(|n| self.blocked_component(n).map(|c| (n, c))) {
                let message =
                    format!("refusing to {v} `{p}`: `{}` is a credential file name{}", shown(comp), via(name));
                let fix =
                    "secrets are never synced; edit them on the host, or add the path to the workspace's `exclude`";
                out.push(issue(path, rule::BLOCKED_NAME, Tier::Refuse, message, fix));
            }
            if let Some(name) = names.iter().find(|n| glob_hit(&self.deny, n, as_dir)) {
                let message = format!("refusing to {v} `{p}`: it matches `sync.deny`{}", via(name));
                out.push(issue(path, rule::DENIED, Tier::Refuse, message, "remove the pattern from `sync.deny`"));
            }
            let allowed = if dir {
                let prefix = format!("{path}/");
                glob_hit(&self.allow, path, true)
                    || allowed_leaves.range(prefix.as_str()..).next().is_some_and(|q| q.starts_with(&prefix))
            } else {
                allowed_leaves.contains(path)
            };
            if !allowed {
                let message = format!("refusing to {v} `{p}`: it matches no `sync.allow` pattern");
                out.push(issue(path, rule::NOT_ALLOWED, Tier::Refuse, message, "add a pattern to `sync.allow`"));
            }
            let review = "read the change, then approve this path";
            let code_path = names.iter().find(|n| {
                let folded: Vec<String> = n.split('/').map(fold).collect();
                glob_hit(&self.code_paths, &folded.join("/"), as_dir)
            });
            let link_folder = link
                && names.iter().any(|n| {
                    let folded: Vec<String> = n.split('/').map(fold).collect();
                    self.review_folders.is_match(folded.join("/"))
                });
            if let Some(name) = code_path.or(if link_folder { names.first() } else { None }) {
                let message =
                    format!("`{p}` runs code when the project is opened, built or committed ({v}){}", via(name));
                out.push(issue(path, rule::CODE_PATH, Tier::Review, message, review));
            }
            if let Some(name) = names.iter().find(|n| glob_hit(&self.review, n, as_dir)) {
                let message = format!("`{p}` matches `sync.review` ({v}){}", via(name));
                out.push(issue(path, rule::REVIEW_GLOB, Tier::Review, message, review));
            }
            // An op on a protected path, or on a folder that holds one (replacing the folder with a
            // link redirects what is read there).
            let touches = |q: &str| names.iter().find(|n| q.is_empty() || within(n, q) || within(q, n));
            if let Some(name) = self.context.profile_paths.iter().find_map(|q| touches(q)) {
                let message = format!(
                    "`{p}` is read when `sandbox` looks up a profile: a change here changes what the next \
                     `sandbox` command mounts, allows and runs ({v}){}",
                    via(name)
                );
                out.push(issue(path, rule::PROFILE, Tier::Review, message, review));
            }
            if let Some(name) = self.context.hooks_path.as_deref().and_then(touches) {
                let message =
                    format!("`{p}` is in the folder git runs hooks from (`core.hooksPath`) ({v}){}", via(name));
                out.push(issue(path, rule::GIT_HOOKS, Tier::Review, message, review));
            }
            let upper = uppers.get(path);
            let is_file = matches!(upper.map(|e| &e.kind), Some(UpperKind::File { .. }));
            let mode = match op {
                Op::Mkdir { mode, .. } | Op::DirMode { mode, .. } => Some(*mode),
                Op::Write { .. } if is_file => upper.map(|e| e.mode),
                _ => None,
            };
            if let Some(mode) = mode.filter(|m| m & 0o7000 != 0) {
                let message = format!("refusing to {v} `{p}` with mode {mode:04o}: setuid, setgid or sticky bit");
                out.push(issue(path, rule::MODE, Tier::Refuse, message, "`chmod ug-s,-t` it in the VM"));
            }
            let was_exec = matches!(base.entries.get(path), Some(Entry { kind: Kind::File { .. }, mode, .. }) if mode & 0o111 != 0);
            if let Some(mode) = mode.filter(|m| is_file && m & 0o111 != 0 && !was_exec) {
                let message = format!("`{p}` becomes executable (mode {mode:04o})");
                out.push(issue(path, rule::EXECUTABLE, Tier::Review, message, "read it, then approve this path"));
            }
            // Whatever mode the VM leaves it: a script the host runs (`sh run.sh` needs no exec
            // bit) is still one with new content.
            let new_content = match (base.entries.get(path).map(|e| &e.kind), upper.map(|e| &e.kind)) {
                (Some(Kind::File { sha256: old, .. }), Some(UpperKind::File { sha256: new, .. })) => old != new,
                _ => true,
            };
            if was_exec && (link || (is_file && new_content)) && matches!(op, Op::Write { .. }) {
                let message = format!("`{p}` is executable on the host and its content changes");
                out.push(issue(
                    path,
                    rule::EXECUTABLE_CHANGED,
                    Tier::Review,
                    message,
                    "read it, then approve this path",
                ));
            }
        }
    }

    /// A symlink the plan creates is reviewed when it gives a reviewed name to anything of the
    /// planned tree beneath its target: `.github -> ci` makes an unchanged `ci/workflows/x.yml`
    /// a CI workflow, though no file under `ci` changes.
    fn check_links_into_reviewed(
        &self,
        plan: &Plan,
        uppers: &HashMap<&str, &UpperEntry>,
        planned: &Planned<'_>,
        reach: &reach::Reach,
        out: &mut Vec<Issue>,
    ) {
        let all: BTreeSet<&str> = planned.paths().collect();
        // Paths looked at, in all: links to big folders must not multiply the plan's size.
        let mut budget = 1_000_000usize;
        // What a link leads to under its own name, if any reviewed name is among it.
        let mut reviewed_beneath = |link: &str, to: &str| -> Option<String> {
            let prefix = if to.is_empty() { String::new() } else { format!("{to}/") };
            let beneath = all.range(prefix.as_str()..).take_while(|p| p.starts_with(&prefix));
            for p in beneath {
                if budget == 0 {
                    // Too much beneath to look at: reviewed, as if it matched.
                    return Some(format!("{link}/…"));
                }
                budget -= 1;
                let alias = format!("{link}/{}", &p[prefix.len()..]);
                let dir = matches!(planned.get(p), Some(Node::Dir));
                let folded: Vec<String> = alias.split('/').map(fold).collect();
                if glob_hit(&self.code_paths, &folded.join("/"), dir) || glob_hit(&self.review, &alias, dir) {
                    return Some(alias);
                }
            }
            None
        };
        let review = "read the change, then approve this path";
        let created: BTreeSet<&str> = plan
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::Write { path }
                    if matches!(uppers.get(path.as_str()).map(|e| &e.kind), Some(UpperKind::Symlink { .. })) =>
                {
                    Some(path.as_str())
                }
                _ => None,
            })
            .collect();
        for link in &created {
            let Some(to) = reach.target(link) else { continue };
            if let Some(alias) = reviewed_beneath(link, to) {
                let message = format!(
                    "`{}` → `{to}` gives `{}` a name that runs code when the project is opened, built or committed",
                    shown(link),
                    shown(&alias)
                );
                out.push(issue(link, rule::CODE_PATH, Tier::Review, message, review));
            }
        }
        // A link the plan keeps can lead somewhere else once the plan lands (`.cargo -> c` in the
        // baseline, and the plan adds `c -> cfgdir`): what it leads to now is checked under its
        // name, and the plan's link changes (or, lacking any, all its operations) are reviewed.
        let in_base = |p: &str| planned.base.entries.get(p).map(base_node);
        let mut redirected = Vec::new();
        for (link, target) in planned.links().filter(|(l, _)| !created.contains(l)) {
            let Some(to) = reach.target(link) else { continue };
            let before = match resolve(&in_base, link, target, None) {
                Resolution::Inside(Some(p)) => Some(p),
                _ => None,
            };
            if before.as_deref() == Some(to) {
                continue;
            }
            if let Some(alias) = reviewed_beneath(link, to) {
                redirected.push((link.to_owned(), alias));
            }
        }
        if let Some((link, alias)) = redirected.first() {
            let causes: Vec<&str> = plan
                .ops
                .iter()
                .filter(|op| matches!(op, Op::Delete { .. }) || created.contains(op_path(op)))
                .map(op_path)
                .collect();
            let causes: Vec<&str> = if causes.is_empty() { plan.ops.iter().map(op_path).collect() } else { causes };
            for path in causes {
                let message = format!(
                    "the plan changes where the host's link `{}` leads: `{}` would run code when the project is \
                     opened, built or committed",
                    shown(link),
                    shown(alias)
                );
                out.push(issue(path, rule::CODE_PATH, Tier::Review, message, review));
            }
        }
    }

    /// Files the upper reader left unread are refused here too when the plan still writes them:
    /// their content is unknown, so they are never staged.
    fn check_limits(
        &self,
        plan: &Plan,
        uppers: &HashMap<&str, &UpperEntry>,
        unread: &BTreeSet<String>,
        out: &mut Vec<Issue>,
    ) {
        let (mut count, mut total, mut count_hit, mut total_hit) = (0u64, 0u64, false, false);
        for path in plan.ops.iter().filter(|op| creates(op)).map(op_path) {
            count += 1;
            if count > self.max_files && !count_hit {
                count_hit = true;
                let message =
                    format!("`{}` is past `sync.max_files` ({} entries created)", shown(path), self.max_files);
                out.push(issue(
                    path,
                    rule::COUNT,
                    Tier::Refuse,
                    message,
                    "raise `sync.max_files`, or exclude generated trees",
                ));
            }
            let Some(UpperKind::File { size, .. }) = uppers.get(path).map(|e| &e.kind) else { continue };
            if *size > self.max_file_size {
                let message =
                    format!("`{}` is {size} bytes, over `sync.max_file_size` ({})", shown(path), self.max_file_size);
                out.push(issue(
                    path,
                    rule::SIZE,
                    Tier::Refuse,
                    message,
                    "raise `sync.max_file_size`, or exclude the file",
                ));
            }
            total = total.saturating_add(*size);
            if unread.contains(path) && *size <= self.max_file_size && !total_hit {
                total_hit = true;
                let message = format!(
                    "`{}` was not read: the upper's files come to more than {} bytes (twice `sync.max_total_size`, \
                     as unchanged copy-ups are read too)",
                    shown(path),
                    self.read_limits().max_total_bytes
                );
                out.push(issue(
                    path,
                    rule::TOTAL_SIZE,
                    Tier::Refuse,
                    message,
                    "raise `sync.max_total_size`, or exclude generated trees",
                ));
            }
            if total > self.max_total_size && !total_hit {
                total_hit = true;
                let message = format!(
                    "`{}` takes the plan past `sync.max_total_size` ({} bytes)",
                    shown(path),
                    self.max_total_size
                );
                out.push(issue(
                    path,
                    rule::TOTAL_SIZE,
                    Tier::Refuse,
                    message,
                    "raise `sync.max_total_size`, or exclude files",
                ));
            }
        }
    }
}

/// `**/a`, `**/a/b` for each pattern `**/a/b/...` of `patterns`: the folders it names.
fn review_folders(patterns: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for pattern in patterns {
        let Some(rest) = pattern.strip_prefix("**/") else { continue };
        let parts: Vec<&str> = rest.split('/').collect();
        for n in 1..parts.len() {
            let prefix = parts[..n].join("/");
            if !prefix.contains(['*', '?', '[', '{']) {
                out.push(format!("**/{prefix}"));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Why one created component is not a safe name, as (rule, reason).
fn name_problems(comp: &str) -> Vec<(&'static str, String)> {
    let mut found = Vec::new();
    if comp.is_empty() {
        found.push((rule::NAME, "has an empty component (an absolute path or `//`)".to_owned()));
    } else if comp == "." || comp == ".." {
        found.push((rule::NAME, format!("has a `{comp}` component")));
    } else if comp.ends_with(['.', ' ']) {
        found.push((rule::NAME, "ends with a dot or space, which Windows and SMB strip (aliasing)".to_owned()));
    }
    if let Some((c, what)) = comp.chars().find_map(|c| bad_char(c).map(|w| (c, w))) {
        found.push((rule::NAME, format!("contains {what} (U+{:04X})", u32::from(c))));
    }
    if comp.len() > MAX_NAME {
        found.push((rule::NAME_LENGTH, format!("has a {}-byte component (the limit is {MAX_NAME})", comp.len())));
    }
    found
}

/// Names, lengths and depth of every component the plan creates (checked once each).
fn check_names(plan: &Plan, base: &Manifest, out: &mut Vec<Issue>) {
    let mut seen: HashSet<&str> = HashSet::new();
    for path in plan.ops.iter().filter(|op| creates(op)).map(op_path) {
        let mut end = 0;
        for (i, comp) in path.split('/').enumerate() {
            let parent_end = end;
            end += if i == 0 { comp.len() } else { comp.len() + 1 };
            let prefix = &path[..end];
            if base.entries.contains_key(prefix) || !seen.insert(prefix) {
                continue;
            }
            let parent_new = i > 0 && !base.entries.contains_key(&path[..parent_end]);
            let p = shown(prefix);
            for (rule, why) in name_problems(comp) {
                let fix = "rename it in the VM to plain printable characters";
                out.push(issue(prefix, rule, Tier::Refuse, format!("`{p}` {why}"), fix));
            }
            if i + 1 > MAX_DEPTH && (i == MAX_DEPTH || !parent_new) {
                let message = format!("`{p}` is more than {MAX_DEPTH} levels deep");
                out.push(issue(prefix, rule::DEPTH, Tier::Refuse, message, "flatten the tree in the VM"));
            }
            if prefix.len() > MAX_PATH && (parent_end <= MAX_PATH || !parent_new) {
                let message = format!("`{p}` is longer than {MAX_PATH} bytes");
                out.push(issue(prefix, rule::NAME_LENGTH, Tier::Refuse, message, "shorten the path in the VM"));
            }
        }
    }
}

/// Two created names, or a created name and a live host entry the plan does not delete, that
/// alias on a case- or normalization-insensitive host. Delete + create of one key (a case-only
/// rename) is allowed: the plan deletes first.
fn check_aliases(plan: &Plan, host: &mut Host<'_>, out: &mut Vec<Issue>) {
    let deleted: HashSet<&str> = plan
        .ops
        .iter()
        .filter_map(|op| if let Op::Delete { path } = op { Some(path.as_str()) } else { None })
        .collect();
    let mut groups: BTreeMap<(&str, String), BTreeSet<&str>> = BTreeMap::new();
    for path in plan.ops.iter().filter(|op| creates(op)).map(op_path) {
        groups.entry((parent(path), fold(name(path)))).or_default().insert(name(path));
    }
    let fix = "on macOS these are one file; rename one of them in the VM (or on the host)";
    for ((dir, key), names) in &groups {
        let mut others: Vec<String> = names.iter().map(|n| join(dir, n)).collect();
        for (h, _) in host.list(dir) {
            let existing = join(dir, h);
            if !names.contains(h.as_str()) && !deleted.contains(existing.as_str()) && fold(h) == *key {
                others.push(existing);
            }
        }
        if others.len() < 2 {
            continue;
        }
        for n in names {
            let path = join(dir, n);
            let list: Vec<String> = others.iter().filter(|o| **o != path).map(|o| format!("`{}`", shown(o))).collect();
            let message =
                format!("`{}` is the same name as {} on a case-insensitive host", shown(&path), list.join(", "));
            out.push(issue(&path, rule::NAME_ALIAS, Tier::Refuse, message, fix));
        }
    }
}

fn link_issue(path: &str, target: &str, what: Resolution, unchanged: bool) -> Option<Issue> {
    let head = format!(
        "`{}` → `{}`{}",
        shown(path),
        shown(target),
        if unchanged { " (unchanged, but the plan changes what it goes through)" } else { "" }
    );
    let through =
        |via: &Option<String>| via.as_ref().map(|v| format!(" through the link `{}`", shown(v))).unwrap_or_default();
    let (rule, message, fix) = match what {
        Resolution::Inside(_) => return None,
        Resolution::Escapes { via: None } if target.starts_with('/') => (
            rule::SYMLINK_ESCAPE,
            format!("{head}: an absolute target; host tools would follow it out of the workspace"),
            "make the link relative and inside the workspace, or copy the file",
        ),
        Resolution::Escapes { via } => (
            rule::SYMLINK_ESCAPE,
            format!("{head} resolves outside the workspace{}", through(&via)),
            "make the link point inside the workspace, or copy the file",
        ),
        Resolution::Git(at) => (
            rule::GIT_PATH,
            format!("{head} goes through `{}`, an alias of `.git`", shown(&at)),
            "link to files outside `.git`",
        ),
        Resolution::Loop => (
            rule::SYMLINK_LOOP,
            format!("{head} does not resolve within {MAX_HOPS} links (a loop?)"),
            "break the symlink loop in the VM",
        ),
        Resolution::HostLink(at) => (
            rule::SYMLINK_ESCAPE,
            format!("{head} goes through `{}`, a host symlink the baseline does not record", shown(&at)),
            "remove that host symlink, or record a new baseline (`sandbox baseline`)",
        ),
    };
    Some(issue(path, rule, Tier::Refuse, message, fix))
}

fn check_symlinks(
    policy: &Policy,
    plan: &Plan,
    uppers: &HashMap<&str, &UpperEntry>,
    base: &Manifest,
    host: &mut Host<'_>,
    out: &mut Vec<Issue>,
) {
    let planned = Planned::new(plan, uppers, base);
    let in_plan = |p: &str| planned.get(p);
    for op in &plan.ops {
        let Op::Write { path } = op else { continue };
        let Some(UpperKind::Symlink { target }) = uppers.get(path.as_str()).map(|e| &e.kind) else { continue };
        let bad = if target.is_empty() {
            Some("an empty target".to_owned())
        } else if target.len() > MAX_TARGET {
            Some(format!("a {}-byte target (the limit is {MAX_TARGET})", target.len()))
        } else {
            target.chars().find_map(bad_char).map(|what| format!("a target containing {what}"))
        };
        if let Some(bad) = bad {
            let message = format!("`{}` → `{}`: {bad}", shown(path), shown(target));
            out.push(issue(path, rule::SYMLINK_TARGET, Tier::Refuse, message, "fix or remove the link in the VM"));
            continue;
        }
        let resolution = resolve(&in_plan, path, target, Some(host));
        // A link is its target for whoever reads it: `public/env.txt -> ../.env` publishes `.env`.
        let resolved = match &resolution {
            Resolution::Inside(Some(to)) => Some(to.as_str()),
            _ => None,
        };
        if let Some(comp) =
            policy.blocked_component(target).or_else(|| resolved.and_then(|to| policy.blocked_component(to)))
        {
            let message =
                format!("`{}` → `{}` leads to `{}`, a credential file name", shown(path), shown(target), shown(comp));
            let fix = "secrets are never synced, nor links to them; remove the link in the VM";
            out.push(issue(path, rule::BLOCKED_NAME, Tier::Refuse, message, fix));
        }
        out.extend(link_issue(path, target, resolution, false));
    }
    if plan.ops.is_empty() {
        return;
    }
    let in_base = |p: &str| base.entries.get(p).map(base_node);
    for (path, entry) in &base.entries {
        let Kind::Symlink { target } = &entry.kind else { continue };
        if planned.created.contains_key(path.as_str()) || planned.deleted.contains(path.as_str()) {
            continue;
        }
        if matches!(resolve(&in_base, path, target, None), Resolution::Inside(_)) {
            out.extend(link_issue(path, target, resolve(&in_plan, path, target, None), true));
        }
    }
}

#[cfg(test)]
mod tests {
    //! One test per rule, on the fixtures of plan.rs (a base and an upper directory, recorded,
    //! read and interpreted) or, where a Linux filesystem cannot hold the case, a synthetic plan.

    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    use super::*;
    use crate::profile::ByteSize;
    use crate::profile::SecretRules;
    use crate::sync::fixture::Fx;
    use crate::sync::manifest::record;
    use crate::sync::plan::interpret;
    use crate::sync::upper::{Namespace, read, read_within};

    fn sync() -> SyncPolicy {
        SyncPolicy {
            allow: vec!["**".into()],
            deny: Vec::new(),
            review: Vec::new(),
            max_file_size: ByteSize(10 * ByteSize::MIB),
            max_total_size: ByteSize(500 * ByteSize::MIB),
            max_files: 10_000,
            secret_rules: SecretRules::Builtin,
            confirm: true,
            userxattr: false,
        }
    }

    fn defaults() -> Policy {
        Policy::new(&sync(), &[]).unwrap()
    }

    impl Fx {
        fn link(root: &Path, path: &str, target: &str) {
            let full = root.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, full).unwrap();
        }
        fn b_link(&self, path: &str, target: &str) -> &Self {
            Self::link(&self.base, path, target);
            self
        }
        fn u_link(&self, path: &str, target: &str) -> &Self {
            Self::link(&self.upper, path, target);
            self
        }
        fn chmod(root: &Path, path: &str, mode: u32) {
            std::fs::set_permissions(root.join(path), std::fs::Permissions::from_mode(mode)).unwrap();
        }
        /// Record, read, interpret; then `host` may change the host (the base dir) before the check.
        fn check_with(&self, policy: &Policy, host: impl FnOnce(&Path)) -> Vec<Issue> {
            let base = record(&self.base, 1).unwrap();
            let upper = read(&self.upper, Namespace::Trusted).unwrap();
            let plan = interpret(&upper, &base);
            assert!(plan.refusals.is_empty(), "{:?}", plan.refusals);
            host(&self.base);
            policy.check(&plan, &upper, &base, &self.base)
        }
        fn issues(&self) -> Vec<(&'static str, String)> {
            brief(&self.check_with(&defaults(), |_| {}))
        }
    }

    fn brief(issues: &[Issue]) -> Vec<(&'static str, String)> {
        issues.iter().map(|i| (i.rule, i.path.clone())).collect()
    }

    fn has(issues: &[(&'static str, String)], rule: &str, path: &str) -> bool {
        issues.iter().any(|(r, p)| *r == rule && p == path)
    }

    /// A plan and upper built by hand, for names a Linux filesystem cannot hold.
    fn synthetic(entries: &[(&str, UpperKind, u32)]) -> (Plan, Upper) {
        let mut plan = Plan::default();
        let mut upper = Upper::default();
        for (path, kind, mode) in entries {
            let op = match kind {
                UpperKind::Dir { .. } => Op::Mkdir { path: (*path).into(), mode: *mode },
                _ => Op::Write { path: (*path).into() },
            };
            plan.ops.push(op);
            upper.entries.push(UpperEntry {
                path: (*path).into(),
                kind: kind.clone(),
                mode: *mode,
                source: PathBuf::new(),
            });
        }
        (plan, upper)
    }

    fn empty_base() -> Manifest {
        Manifest { version: 1, root: PathBuf::from("/nonexistent"), entries: BTreeMap::new() }
    }

    fn file(size: u64) -> UpperKind {
        UpperKind::File { size, sha256: String::new() }
    }

    #[test]
    fn clean_plan_has_no_issues() {
        let fx = Fx::new();
        fx.b("src/main.rs", "fn main() {}").b("README.md", "r").u("src/main.rs", "fn main() { }").u("src/new.rs", "x");
        fx.u_dir("docs").u("docs/a.md", "a").u_link("docs/latest", "../src").u("CON", "reserved on Windows only");
        assert_eq!(fx.issues(), []);
    }

    #[test]
    fn other_version_control_state_is_refused_like_git() {
        let fx = Fx::new();
        fx.u(".hg/hgrc", "[hooks]\nupdate = touch /tmp/x\n").u("sub/.JJ/repo/config.toml", "x");
        fx.u(".svn/wc.db", "x").u("_darcs/prefs/defaults", "x").u(".hgignore", "ok");
        let issues = fx.issues();
        for path in [".hg/hgrc", "sub/.JJ/repo/config.toml", ".svn/wc.db", "_darcs/prefs/defaults"] {
            assert!(has(&issues, rule::GIT_PATH, path), "{path}: {issues:?}");
        }
        assert!(!issues.iter().any(|(_, p)| p == ".hgignore"), "{issues:?}");
    }

    #[test]
    fn git_aliases_are_refused_for_every_op() {
        let fx = Fx::new();
        fx.b(".git/config", "[core]").b(".git/HEAD", "ref").b("sub/.Git/x", "1");
        fx.u(".git/hooks/post-checkout", "#!/bin/sh").whiteout(".git/config").u("sub/.Git/x", "2");
        for alias in
            [".GIT/config", ".git./x", ".git /x", "GIT~1/config", ".g\u{200c}it/hooks/pre-commit", ".git\u{feff}/c"]
        {
            fx.u(alias, "x");
        }
        fx.u(".gitignore", "target").u(".github/x", "x").u("git~2/x", "x").u(".gitx/y", "y");
        let issues = fx.issues();
        for path in [
            ".git/hooks/post-checkout",
            ".git/config",
            "sub/.Git/x",
            ".GIT/config",
            ".git./x",
            ".git /x",
            "GIT~1/config",
            ".g\u{200c}it/hooks/pre-commit",
            ".git\u{feff}/c",
        ] {
            assert!(has(&issues, rule::GIT_PATH, path), "{path:?}: {issues:?}");
        }
        for path in [".gitignore", ".github/x", "git~2/x", ".gitx/y"] {
            assert!(!has(&issues, rule::GIT_PATH, path), "{path}");
        }
        // I4: `.git` replaced by a `gitdir:` file.
        let file = Fx::new();
        file.b(".git/HEAD", "ref").u(".git", "gitdir: /tmp/evil");
        let issues = file.issues();
        assert!(has(&issues, rule::GIT_PATH, ".git") && has(&issues, rule::GIT_PATH, ".git/HEAD"), "{issues:?}");
        let nfd = fold(".GIT") == ".git" && is_git_alias(".Gi\u{0054}") && is_git_alias("git~1.");
        assert!(nfd && !is_git_alias(".gi\u{0308}t"));
    }

    #[test]
    fn blocked_names_are_refused_case_insensitively() {
        let fx = Fx::new();
        fx.b("old/.env", "A=1").whiteout("old/.env");
        let blocked = [
            ".env",
            "web/.ENV.local",
            "config/KEY.PEM",
            "tls/server.key",
            "id_ed25519.pub",
            "keys/id_rsa",
            "cert.P12",
            "a.pfx",
            "b.jks",
            "release.keystore",
            ".npmrc",
            ".pypirc",
            ".netrc",
            ".aws/credentials",
            ".ssh/config",
        ];
        for path in blocked {
            fx.u(path, "secret");
        }
        fx.u("environment.md", "e").u("credentials", "c").u("docs/.aws.md", "x").u("keynote.txt", "k");
        let issues = fx.issues();
        for path in blocked.iter().chain(&["old/.env"]) {
            assert!(has(&issues, rule::BLOCKED_NAME, path), "{path}: {issues:?}");
        }
        assert!(has(&issues, rule::BLOCKED_NAME, ".ssh"), "the directory itself");
        for path in ["environment.md", "credentials", "docs/.aws.md", "keynote.txt"] {
            assert!(!issues.iter().any(|(_, p)| p == path), "{path}");
        }
        let envrc = Fx::new();
        envrc.u(".envrc", "use nix");
        assert_eq!(envrc.issues(), [(rule::CODE_PATH, ".envrc".to_owned())], ".envrc is code, reviewed");
    }

    #[test]
    fn code_execution_paths_need_review() {
        let fx = Fx::new();
        let paths = [
            ".envrc",
            ".vscode/tasks.json",
            ".idea/workspace.xml",
            ".github/workflows/ci.yml",
            ".gitlab-ci.yml",
            ".gitmodules",
            ".gitattributes",
            "Makefile",
            "build/rules.mk",
            "package.json",
            "web/package.json",
            ".husky/pre-commit",
            ".pre-commit-config.yaml",
            ".cargo/config.toml",
            "build.rs",
        ];
        for path in paths {
            fx.u(path, "x");
        }
        fx.b("tools/GNUmakefile", "all:").whiteout("tools/GNUmakefile").u("src/lib.rs", "x");
        let issues = fx.check_with(&defaults(), |_| {});
        for path in paths.iter().chain(&["tools/GNUmakefile", ".vscode", ".husky"]) {
            assert!(
                issues.iter().any(|i| i.rule == rule::CODE_PATH && i.path == *path && i.tier == Tier::Review),
                "{path}: {issues:?}"
            );
        }
        assert!(issues.iter().all(|i| i.tier == Tier::Review && i.path != "src/lib.rs"), "{issues:?}");
    }

    #[test]
    fn files_made_executable_need_review() {
        let fx = Fx::new();
        fx.b("run.sh", "echo").b("tool", "echo").b("plain", "x");
        Fx::chmod(&fx.base, "tool", 0o755);
        fx.u("run.sh", "echo").u("new.sh", "echo hi").u("tool", "echo changed").u("plain", "y").u("grp", "g");
        Fx::chmod(&fx.upper, "run.sh", 0o755);
        Fx::chmod(&fx.upper, "new.sh", 0o700);
        Fx::chmod(&fx.upper, "tool", 0o755);
        Fx::chmod(&fx.upper, "grp", 0o654);
        let issues = fx.issues();
        let mut expect: Vec<_> = ["grp", "new.sh", "run.sh"].map(|p| (rule::EXECUTABLE, p.to_owned())).into();
        // An executable that stays one but gets new content is reviewed too (issue 19).
        expect.push((rule::EXECUTABLE_CHANGED, "tool".to_owned()));
        assert_eq!(issues, expect);
    }

    #[test]
    fn profile_review_globs_need_review() {
        let fx = Fx::new();
        fx.u("docs/a.md", "a").u("src/b.rs", "b");
        let policy = Policy::new(&SyncPolicy { review: vec!["docs/**".into()], ..sync() }, &[]).unwrap();
        let issues = fx.check_with(&policy, |_| {});
        assert_eq!(
            brief(&issues),
            [(rule::REVIEW_GLOB, "docs".to_owned()), (rule::REVIEW_GLOB, "docs/a.md".to_owned())]
        );
        assert!(issues.iter().all(|i| i.tier == Tier::Review));
    }

    #[test]
    fn profile_deny_globs_are_refused() {
        let fx = Fx::new();
        fx.u("data/app.sqlite", "db").u("build/out/x", "x").u("src/ok.rs", "ok");
        let policy =
            Policy::new(&SyncPolicy { deny: vec!["*.sqlite".into(), "build/**".into()], ..sync() }, &[]).unwrap();
        let issues = brief(&fx.check_with(&policy, |_| {}));
        let expect = ["build", "build/out", "build/out/x", "data/app.sqlite"].map(|p| (rule::DENIED, p.to_owned()));
        assert_eq!(issues, expect);
    }

    #[test]
    fn paths_outside_sync_allow_are_refused() {
        let fx = Fx::new();
        fx.b("README.md", "r").u("README.md", "changed").u("src/sub/new.rs", "x").u_dir("empty");
        let policy = Policy::new(&SyncPolicy { allow: vec!["src/**/*.rs".into()], ..sync() }, &[]).unwrap();
        let issues = brief(&fx.check_with(&policy, |_| {}));
        assert_eq!(issues, [(rule::NOT_ALLOWED, "README.md".to_owned()), (rule::NOT_ALLOWED, "empty".to_owned())]);
    }

    #[test]
    fn absolute_and_escaping_symlinks_are_refused() {
        let fx = Fx::new();
        fx.u_link("abs", "/etc/shadow").u_link("d/evil_rel", "../../../../etc/shadow").u_link("d/ok", "../src/x");
        fx.u_link("r", ".").u_link("esc", "r/..").u_link("edge", "d/../..");
        let issues = fx.issues();
        for path in ["abs", "d/evil_rel", "esc", "edge"] {
            assert!(has(&issues, rule::SYMLINK_ESCAPE, path), "{path}: {issues:?}");
        }
        assert!(!issues.iter().any(|(_, p)| p == "d/ok" || p == "r"), "{issues:?}");
        // E4 through a baseline link the plan does not touch.
        let chained = Fx::new();
        chained.b_link("r", ".").u_link("esc", "r/..");
        assert_eq!(chained.issues(), [(rule::SYMLINK_ESCAPE, "esc".to_owned())]);
        // A baseline link that stayed inside, until the plan replaced a directory it goes through.
        let retained = Fx::new();
        retained.b("r/x", "x").b_link("out", "r/..").u_link("r", ".");
        let issues = retained.issues();
        assert!(has(&issues, rule::SYMLINK_ESCAPE, "out"), "{issues:?}");
        // A host symlink added after the baseline: its target is unknown.
        let host = Fx::new();
        host.u_link("x", "h/etc");
        let issues = host.check_with(&defaults(), |h| std::os::unix::fs::symlink("/", h.join("h")).unwrap());
        assert_eq!(brief(&issues), [(rule::SYMLINK_ESCAPE, "x".to_owned())]);
    }

    #[test]
    fn symlink_loops_are_refused() {
        let fx = Fx::new();
        fx.u_link("a", "b").u_link("b", "a").u_link("self", "self/x");
        let issues = fx.issues();
        for path in ["a", "b", "self"] {
            assert!(has(&issues, rule::SYMLINK_LOOP, path), "{path}: {issues:?}");
        }
    }

    #[test]
    fn symlinks_through_git_are_refused() {
        let fx = Fx::new();
        fx.b(".git/hooks/x", "x").u_link("hooks", ".git/hooks").u_link("x", ".GIT").u_link("y", "sub/../.git/../src");
        fx.b_link("g", ".git").u_link("z", "g/config");
        let issues = fx.issues();
        for path in ["hooks", "x", "y", "z"] {
            assert!(has(&issues, rule::GIT_PATH, path), "{path}: {issues:?}");
        }
    }

    #[test]
    fn pathological_symlink_targets_are_refused() {
        let fx = Fx::new();
        fx.u_link("nl", "a\nb").u_link("long", &"x/".repeat(600));
        let issues = fx.issues();
        assert!(has(&issues, rule::SYMLINK_TARGET, "nl") && has(&issues, rule::SYMLINK_TARGET, "long"), "{issues:?}");
        let (plan, upper) = synthetic(&[("empty", UpperKind::Symlink { target: String::new() }, 0o777)]);
        let issues = brief(&defaults().check(&plan, &upper, &empty_base(), Path::new("/nonexistent")));
        assert_eq!(issues, [(rule::SYMLINK_TARGET, "empty".to_owned())]);
    }

    #[test]
    fn setuid_setgid_and_sticky_modes_are_refused() {
        let fx = Fx::new();
        fx.b("shared/x", "x").u("suid", "x").u_dir("sgid").u_dir("shared").u("plain", "p");
        Fx::chmod(&fx.upper, "suid", 0o4755);
        Fx::chmod(&fx.upper, "sgid", 0o2755);
        Fx::chmod(&fx.upper, "shared", 0o1777);
        let issues = fx.issues();
        for path in ["suid", "sgid", "shared"] {
            assert!(has(&issues, rule::MODE, path), "{path}: {issues:?}");
        }
        assert!(!issues.iter().any(|(_, p)| p == "plain"));
    }

    #[test]
    fn unsafe_names_are_refused() {
        let fx = Fx::new();
        let bad = [
            "a\nb",
            "\x1b[2K\rREADME.md",
            "del\x7f",
            "evil\u{202E}gnp.sh",
            "iso\u{2066}late",
            "zero\u{200B}width",
            "lossy\u{FFFD}",
            "trailing.",
            "trailing ",
            "...",
        ];
        for name in bad {
            fx.u(name, "x");
        }
        fx.u_dir("bad\tdir").u("bad\tdir/inner", "x").u("aux.txt", "fine").u("CON", "fine").u(".hidden", "fine");
        fx.b("old\x01dir/keep", "k").u("old\x01dir/new", "existing names came from the host");
        let issues = fx.issues();
        for path in bad.iter().chain(&["bad\tdir"]) {
            assert!(has(&issues, rule::NAME, path), "{path:?}: {issues:?}");
        }
        assert_eq!(issues.len(), bad.len() + 1, "once per name, not per descendant: {issues:?}");
        let full = fx.check_with(&defaults(), |_| {});
        let message = &full[0].message;
        assert!(!message.chars().any(|c| bad_char(c).is_some()), "messages are escaped: {message}");
        for name in ["evil\u{202E}gnp.sh", "iso\u{2066}late"] {
            let found = full.iter().find(|i| i.path == name).unwrap();
            assert!(found.message.contains("bidirectional-text control"), "{}", found.message);
        }
        // Invalid UTF-8 never reaches a plan: the upper reader refuses it.
        let raw = Fx::new();
        std::fs::write(raw.upper.join(std::ffi::OsStr::from_bytes(b"\xff\xfe")), "x").unwrap();
        let upper = read(&raw.upper, Namespace::Trusted).unwrap();
        assert!(upper.entries.is_empty() && upper.refusals.iter().any(|r| r.code == "E_NAME"));
        // What no Linux directory can hold (transport formats can).
        let long = "n".repeat(256);
        let (plan, upper) = synthetic(&[
            ("a/../b", file(1), 0o644),
            ("./c", file(1), 0o644),
            ("/abs", file(1), 0o644),
            (long.as_str(), file(1), 0o644),
        ]);
        let issues = brief(&defaults().check(&plan, &upper, &empty_base(), Path::new("/nonexistent")));
        for (rule, path) in [(rule::NAME, "a/.."), (rule::NAME, "."), (rule::NAME, ""), (rule::NAME_LENGTH, &long)] {
            assert!(has(&issues, rule, path), "{rule} {path}: {issues:?}");
        }
        let full = defaults().check(&plan, &upper, &empty_base(), Path::new("/nonexistent"));
        assert!(full.iter().any(|i| i.path == "a/.." && i.message.contains("has a `..` component")), "{full:?}");
    }

    #[test]
    fn overlong_paths_are_refused() {
        let dirs: Vec<String> = (1..=20).map(|i| ["d"; 250].concat() + &format!("{i:03}")).collect();
        let mut entries: Vec<(String, UpperKind, u32)> = Vec::new();
        for i in 1..=dirs.len() {
            entries.push((dirs[..i].join("/"), UpperKind::Dir { opaque: false }, 0o755));
        }
        let refs: Vec<(&str, UpperKind, u32)> = entries.iter().map(|(p, k, m)| (p.as_str(), k.clone(), *m)).collect();
        let (plan, upper) = synthetic(&refs);
        let issues = brief(&defaults().check(&plan, &upper, &empty_base(), Path::new("/nonexistent")));
        assert_eq!(issues, [(rule::NAME_LENGTH, dirs[..17].join("/"))], "once, at the first path over 4096 bytes");
    }

    #[test]
    fn case_and_unicode_aliases_are_refused() {
        // H1, H2, H7 between planned results; H3 against an existing host file.
        let fx = Fx::new();
        fx.u("Makefile", "a").u("makefile", "b").u("caf\u{e9}", "nfc").u("cafe\u{301}", "nfd");
        fx.u("Docs", "file").u("docs/x", "dir").b("README.md", "r").u("readme.md", "new");
        fx.u("\u{3a3}\u{391}\u{3a3}", "upper sigma").u("\u{3c3}\u{3b1}\u{3c2}", "final sigma");
        let issues = fx.issues();
        for path in
            ["Makefile", "makefile", "caf\u{e9}", "cafe\u{301}", "Docs", "docs", "readme.md", "\u{3c3}\u{3b1}\u{3c2}"]
        {
            assert!(has(&issues, rule::NAME_ALIAS, path), "{path}: {issues:?}");
        }
        // H8: a host directory the baseline never saw.
        let host = Fx::new();
        host.u("src/new.rs", "x");
        let issues = host.check_with(&defaults(), |h| std::fs::create_dir(h.join("Src")).unwrap());
        assert_eq!(brief(&issues), [(rule::NAME_ALIAS, "src".to_owned())]);
        // H4: a case-only rename deletes first, and is allowed.
        let rename = Fx::new();
        rename.b("Readme.md", "old").whiteout("Readme.md").u("README.md", "new");
        assert_eq!(rename.issues(), []);
        assert_eq!(fold("Stra\u{df}e"), fold("STRASSE"));
        assert_eq!(fold("\u{212a}elvin"), fold("kelvin"));
        assert_eq!(fold("a\u{200d}b"), "ab");
    }

    #[test]
    fn host_listings_never_follow_symlinks() {
        // The host replaced `d` with a link to a directory outside the root after the baseline; the
        // outside `README` must not be listed (the conflict check deals with the link itself).
        let fx = Fx::new();
        fx.b("d/x", "x").u("d/readme", "r");
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("README"), "outside").unwrap();
        let issues = fx.check_with(&defaults(), |h| {
            std::fs::remove_dir_all(h.join("d")).unwrap();
            std::os::unix::fs::symlink(outside.path(), h.join("d")).unwrap();
        });
        assert_eq!(issues, []);
        assert!(read_names(outside.path(), "").iter().any(|(n, _)| n == "README"), "the listing itself works");
    }

    #[test]
    fn file_size_limit_is_refused() {
        let fx = Fx::new();
        fx.u("big", &"x".repeat(2000)).u("small", "x");
        let policy = Policy::new(&SyncPolicy { max_file_size: ByteSize(1024), ..sync() }, &[]).unwrap();
        assert_eq!(brief(&fx.check_with(&policy, |_| {})), [(rule::SIZE, "big".to_owned())]);
    }

    #[test]
    fn total_size_limit_is_refused() {
        let fx = Fx::new();
        fx.u("a", &"x".repeat(600)).u("b", &"x".repeat(600)).u("c", &"x".repeat(600));
        let policy = Policy::new(&SyncPolicy { max_total_size: ByteSize(1024), ..sync() }, &[]).unwrap();
        assert_eq!(brief(&fx.check_with(&policy, |_| {})), [(rule::TOTAL_SIZE, "b".to_owned())]);
    }

    /// Read, interpret, exclude and check as the gate does: the reader within the policy's limits.
    fn check_as_gate(fx: &Fx, policy: &Policy) -> (Plan, Vec<(&'static str, String)>) {
        let base = record(&fx.base, 1).unwrap();
        let limits = policy.read_limits();
        let upper = read_within(&fx.upper, Namespace::Trusted, limits, |p| policy.is_excluded(p)).unwrap();
        let mut plan = interpret(&upper, &base);
        assert!(plan.refusals.is_empty(), "{:?}", plan.refusals);
        policy.exclude(&mut plan);
        let issues = brief(&policy.check(&plan, &upper, &base, &fx.base));
        (plan, issues)
    }

    #[test]
    fn j2_files_the_reader_left_unread_are_refused_when_written() {
        let limits = SyncPolicy { max_file_size: ByteSize(1000), max_total_size: ByteSize(1500), ..sync() };
        let policy = Policy::new(&limits, &["target/**".into()]).unwrap();
        let fx = Fx::new();
        fx.u("big", &"x".repeat(1001)).u("target/huge", &"x".repeat(5000));
        assert_eq!(check_as_gate(&fx, &policy).1, [(rule::SIZE, "big".to_owned())], "excluded: never read, no issue");
        // Past twice the total nothing is read, so even unchanged copy-ups cannot be told apart.
        let fx = Fx::new();
        for name in ["a", "b", "c", "d", "e", "f"] {
            fx.b(name, &"x".repeat(600)).u(name, &"x".repeat(600));
        }
        let (plan, issues) = check_as_gate(&fx, &policy);
        assert_eq!(plan.ops.len(), 6);
        assert_eq!(issues, [(rule::TOTAL_SIZE, "a".to_owned())]);
        // Within it, unchanged copy-ups drop out as usual.
        std::fs::remove_file(fx.upper.join("e")).unwrap();
        std::fs::remove_file(fx.upper.join("f")).unwrap();
        fx.u("target/huge", &"x".repeat(5000));
        let (plan, issues) = check_as_gate(&fx, &policy);
        assert!(plan.ops.is_empty() && issues.is_empty(), "{:?} {issues:?}", plan.ops);
    }

    #[test]
    fn file_count_limit_is_refused() {
        let fx = Fx::new();
        fx.u("d/a", "a").u("d/b", "b").u("d/c", "c");
        let policy = Policy::new(&SyncPolicy { max_files: 3, ..sync() }, &[]).unwrap();
        assert_eq!(brief(&fx.check_with(&policy, |_| {})), [(rule::COUNT, "d/c".to_owned())]);
    }

    #[test]
    fn depth_limit_is_refused() {
        // The directory reader stops at the limit itself (upper.rs); a tar or a synthetic plan
        // can still bring deeper paths.
        let deep: Vec<&str> = vec!["d"; MAX_DEPTH + 3];
        let mut paths: Vec<String> = (1..=deep.len()).map(|n| deep[..n].join("/")).collect();
        paths.push(format!("{}/f", deep[..MAX_DEPTH - 1].join("/")));
        let last = paths.len() - 2;
        let entries: Vec<(&str, UpperKind, u32)> = paths
            .iter()
            .enumerate()
            .map(|(i, p)| {
                if i >= last {
                    (p.as_str(), file(1), 0o644)
                } else {
                    (p.as_str(), UpperKind::Dir { opaque: false }, 0o755)
                }
            })
            .collect();
        let (plan, upper) = synthetic(&entries);
        let issues = brief(&defaults().check(&plan, &upper, &empty_base(), Path::new("/nonexistent")));
        assert_eq!(issues, [(rule::DEPTH, deep[..=MAX_DEPTH].join("/"))], "once, at the first level past it");
    }

    #[test]
    fn excluded_paths_are_dropped_and_listed() {
        let fx = Fx::new();
        fx.b("node_modules/x/i.js", "1").b("cache/keep/k", "k").b("cache/drop", "d").b("src/a.rs", "a");
        fx.whiteout("node_modules").u("src/a.rs", "b").u("build/out.o", "o").u(".env", "SECRET=1");
        fx.whiteout("cache");
        let policy =
            Policy::new(&sync(), &["node_modules".into(), "build/**".into(), ".env".into(), "cache/keep".into()])
                .unwrap();
        let base = record(&fx.base, 1).unwrap();
        let upper = read(&fx.upper, Namespace::Trusted).unwrap();
        let mut plan = interpret(&upper, &base);
        let mut dropped = policy.exclude(&mut plan);
        dropped.sort();
        assert_eq!(
            dropped,
            [
                ".env",
                "build",
                "build/out.o",
                "cache",
                "cache/keep",
                "cache/keep/k",
                "node_modules",
                "node_modules/x",
                "node_modules/x/i.js"
            ]
        );
        let left: Vec<&str> = plan.ops.iter().map(op_path).collect();
        assert_eq!(left, ["cache/drop", "src/a.rs"], "the excluded `.env` is not refused, it is not synced");
        assert_eq!(policy.check(&plan, &upper, &base, &fx.base), []);
        assert!(defaults().exclude(&mut interpret(&upper, &base)).is_empty());
    }

    #[test]
    fn the_tool_sandboxs_empty_mount_points_are_dropped_and_listed() {
        let plan_of = |fx: &Fx| interpret(&read(&fx.upper, Namespace::Trusted).unwrap(), &record(&fx.base, 1).unwrap());
        let left = |plan: &Plan| plan.ops.iter().map(|op| op_path(op).to_owned()).collect::<Vec<_>>();

        let fx = Fx::new();
        fx.u_dir(".openclaw/sandbox-skills/skills").u("src/a.rs", "a");
        let mut plan = plan_of(&fx);
        assert_eq!(Policy::drop_tool_mount_points(&mut plan), TOOL_MOUNT_POINTS);
        assert_eq!(left(&plan), ["src", "src/a.rs"]);

        // What the agent itself writes under `.openclaw` is synced, with the folders it needs.
        let fx = Fx::new();
        fx.u_dir(".openclaw/sandbox-skills/skills").u(".openclaw/notes.md", "n");
        let mut plan = plan_of(&fx);
        assert_eq!(Policy::drop_tool_mount_points(&mut plan), &TOOL_MOUNT_POINTS[..2]);
        assert_eq!(left(&plan), [".openclaw", ".openclaw/notes.md"]);
        let fx = Fx::new();
        fx.u(".openclaw/sandbox-skills/skills/x", "x");
        let mut plan = plan_of(&fx);
        assert!(Policy::drop_tool_mount_points(&mut plan).is_empty());
        assert_eq!(plan.ops.len(), 4);

        // A folder that replaces a host file of the same name is a change, empty or not.
        let fx = Fx::new();
        fx.b(".openclaw", "a file on the host").u_dir(".openclaw/sandbox-skills/skills");
        let mut plan = plan_of(&fx);
        assert_eq!(Policy::drop_tool_mount_points(&mut plan), &TOOL_MOUNT_POINTS[..2]);
        assert_eq!(left(&plan), [".openclaw", ".openclaw"], "the delete and the mkdir stay together");

        // Where the host has the folders already, nothing is planned for them.
        let fx = Fx::new();
        fx.b(".openclaw/sandbox-skills/skills/k", "k").u_dir(".openclaw/sandbox-skills/skills");
        let mut plan = plan_of(&fx);
        assert!(Policy::drop_tool_mount_points(&mut plan).is_empty() && plan.ops.is_empty());
    }

    #[test]
    fn invalid_profile_globs_are_errors() {
        assert!(Policy::new(&SyncPolicy { deny: vec!["a[".into()], ..sync() }, &[]).is_err());
        assert!(Policy::new(&sync(), &["{a".into()]).is_err());
    }
}
