//! Scanning one buffer with a rule set: keyword prefilter, rule regexes searched in windows of
//! lines around keyword occurrences (or over the whole buffer when a rule's shape does not allow
//! windows), secret extraction, entropy, allowlists, composite rules and generic dedupe.
//!
//! The whole buffer is always available, so no chunk boundary can hide a match (gitleaks #1651).

use aho_corasick::Input;
use regex_automata::meta;
use sha2::{Digest, Sha256};

use crate::scan::finding::{Finding, redact};
use crate::scan::rule::{Candidate, Rule, shannon_entropy};
use crate::scan::ruleset::RuleSet;
use crate::scan::{escape, pattern, utf16};

/// Per-call switches.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EngineOptions {
    /// Honour `gitleaks:allow` on a line (only for scanning the user's own files).
    pub(crate) inline_allow: bool,
    /// How many levels of base64/hex encoding to look through.
    pub(crate) decode_depth: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { inline_allow: false, decode_depth: DEFAULT_DECODE_DEPTH }
    }
}

/// Encoded text inside encoded text is rare; two levels catch `base64(base64(token))`.
pub(crate) const DEFAULT_DECODE_DEPTH: usize = 2;

/// Newline positions, built once a buffer has a keyword hit.
struct Lines<'a> {
    data: &'a [u8],
    newlines: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(data: &'a [u8]) -> Self {
        Lines { data, newlines: memchr::memchr_iter(b'\n', data).collect() }
    }

    /// 0-based line number of a byte offset.
    fn line_of(&self, offset: usize) -> usize {
        self.newlines.partition_point(|&n| n < offset)
    }

    fn line_start(&self, line: usize) -> usize {
        if line == 0 { 0 } else { self.newlines.get(line - 1).map_or(self.data.len(), |&n| n + 1) }
    }

    /// End of the line including its newline.
    fn line_end(&self, line: usize) -> usize {
        self.newlines.get(line).map_or(self.data.len(), |&n| n + 1)
    }

    /// 1-based line and column (bytes) of an offset.
    fn position(&self, offset: usize) -> (usize, usize) {
        let line = self.line_of(offset);
        (line + 1, offset - self.line_start(line) + 1)
    }
}

/// A finding before it is reported: it still knows its secret.
struct Raw {
    rule: usize,
    start: usize,
    end: usize,
    secret: Vec<u8>,
    secret_offset: usize,
    entropy: f64,
}

/// Scan `data` (the content of `path`) and return its findings, in order of position.
pub(crate) fn scan(set: &RuleSet, path: &str, data: &[u8], opts: EngineOptions) -> Vec<Finding> {
    scan_text(set, path, data, opts, false)
}

/// [`scan`], of the file itself or (`decoded`) of text decoded from it, where rules that match
/// the path alone are not reported again.
fn scan_text(set: &RuleSet, path: &str, data: &[u8], opts: EngineOptions, decoded: bool) -> Vec<Finding> {
    if set.global.iter().any(|a| a.allows_path(path)) {
        return Vec::new();
    }
    let lines = Lines::new(data);
    // Rules to run over the whole buffer, and (rule, offset) keyword hits for windowed rules.
    let mut whole = vec![false; set.rules.len()];
    let mut hits: Vec<(usize, usize)> = Vec::new();
    for &r in &set.always {
        whole[r] = true;
    }
    let prefilter = set.prefilter();
    if prefilter.is_none() {
        whole.iter_mut().for_each(|w| *w = true);
    }
    if let Some(prefilter) = prefilter {
        // Every position where some keyword starts, with the longest keyword there; restarting
        // one byte after each start finds occurrences that overlap the previous one.
        let mut at = 0;
        while let Some(m) = prefilter.find(Input::new(data).span(at..data.len())) {
            at = m.start() + 1;
            for &r in &set.keyword_rules[m.pattern().as_usize()] {
                if set.rules[r].shape.windowed() {
                    hits.push((r, m.start()));
                } else {
                    whole[r] = true;
                }
            }
        }
    }
    hits.sort_unstable();
    hits.dedup();

    let mut raws: Vec<Raw> = Vec::new();
    let mut broken: Vec<Finding> = Vec::new();
    for (r, rule) in set.rules.iter().enumerate() {
        // This rule's hits (sorted by offset).
        let first = hits.partition_point(|h| h.0 < r);
        let last = hits.partition_point(|h| h.0 <= r);
        let triggered = whole[r] || first < last;
        if let Some(p) = &rule.path
            // A path pattern that cannot be compiled applies the rule: fail closed.
            && (!p.is_match_or(path.as_bytes(), true) || (rule.pattern.is_some() && !triggered))
        {
            continue;
        }
        // Before `compiled()`: a rule that is not triggered is never compiled.
        if rule.pattern.is_some() && !triggered {
            continue;
        }
        let compiled = match rule.compiled() {
            None if decoded => continue,
            None => {
                // A path-only rule: the file itself is the finding.
                raws.push(Raw { rule: r, start: 0, end: 0, secret: Vec::new(), secret_offset: 0, entropy: 0.0 });
                continue;
            }
            Some(Ok(compiled)) => compiled,
            Some(Err(message)) => {
                broken.push(Finding::unscannable(
                    path,
                    format!("rule `{}` cannot be compiled ({message}); the file was not checked with it", rule.id),
                ));
                continue;
            }
        };
        let regex = &compiled.regex;
        let ctx = Ctx { set, path, data, lines: &lines, opts };
        let mark = raws.len();
        if whole[r] {
            let window = Window { from: 0, accept_before: data.len() + 1, hay_end: data.len() };
            find_in(&ctx, rule, regex, r, window, &mut raws);
        } else if let Some(anchor) = &compiled.anchor {
            // Run the full pattern only where its core matches at a keyword occurrence; resume
            // after each match, as a search over the whole buffer would.
            let mut resume = 0;
            for &(_, offset) in &hits[first..last] {
                if offset < resume || !anchor.matches_at(data, offset) {
                    continue;
                }
                let mut from = offset.saturating_sub(anchor.lead).max(resume);
                while let Some(start) = pattern::first_anchored_start(regex, data, from, offset) {
                    let window = Window { from: start, accept_before: start + 1, hay_end: data.len() };
                    from = find_in(&ctx, rule, regex, r, window, &mut raws).max(start + 1);
                }
                resume = from.max(offset + 1);
            }
        } else {
            // Otherwise merge the windows around the hits.
            let mut window: Option<Window> = None;
            for &(_, offset) in &hits[first..last] {
                let next = rule_window(rule, offset, &lines, data.len());
                window = match window {
                    Some(w) if next.from <= w.hay_end => Some(Window {
                        from: w.from,
                        accept_before: w.accept_before.max(next.accept_before),
                        hay_end: w.hay_end.max(next.hay_end),
                    }),
                    Some(w) => {
                        find_in(&ctx, rule, regex, r, w, &mut raws);
                        Some(next)
                    }
                    None => Some(next),
                };
            }
            if let Some(w) = window {
                find_in(&ctx, rule, regex, r, w, &mut raws);
            }
        }
        if let Some(token) = rule.checksummed {
            // Tokens that prove themselves by their checksum, whatever bytes surround them.
            let starts: Vec<usize> = if whole[r] {
                memchr::memmem::find_iter(data, token.prefix.as_bytes()).collect()
            } else {
                hits[first..last].iter().map(|&(_, offset)| offset).collect()
            };
            for start in starts {
                let Some(len) = token.token_len(&data[start..]) else { continue };
                if raws[mark..].iter().any(|raw| raw.rule == r && raw.start <= start && start < raw.end) {
                    continue;
                }
                let span = (start, start + len);
                if let Some(raw) = accept(&ctx, rule, r, span, span) {
                    raws.push(raw);
                }
            }
        }
    }
    let mut findings = finish(set, path, data, &lines, raws);
    findings.extend(broken);
    if opts.decode_depth > 0 {
        let inner_opts = EngineOptions { decode_depth: opts.decode_depth - 1, ..opts };
        let decoded = decoded_findings(set, path, data, &lines, &findings, inner_opts);
        findings.extend(decoded);
        findings.sort_by(|a, b| (a.line, a.column, &a.rule_id).cmp(&(b.line, b.column, &b.rule_id)));
    }
    findings
}

/// What the decoders find in `data` one level down: base64 and hex runs (reported where the
/// run is), UTF-16 text and backslash or percent escapes (reported where the match's bytes are,
/// so the gate's diff redacts them; for escapes, what the plain scan already found there is
/// not repeated). Each is tagged `decoded:KIND`.
fn decoded_findings(
    set: &RuleSet,
    path: &str,
    data: &[u8],
    lines: &Lines<'_>,
    plain: &[Finding],
    opts: EngineOptions,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let inner = |text: &[u8]| scan_text(set, path, text, opts, true).into_iter().filter(|f| !f.is_unscannable());
    for segment in crate::scan::decode::segments(data) {
        let (line, column) = lines.position(segment.start);
        let (end_line, end_column) = lines.position(segment.end.saturating_sub(1).max(segment.start));
        for mut found in inner(&segment.decoded) {
            // Report where the encoded text is; the preview is of the decoded text.
            found.line = line;
            found.column = column;
            found.end_line = end_line;
            found.end_column = end_column;
            found.fingerprint = format!("{path}:{}:{line}", found.rule_id);
            found.tags.push(format!("decoded:{}", segment.encoding));
            out.push(found);
        }
    }
    if let Some(endian) = utf16::detect(data) {
        let text = utf16::transcode(data, endian);
        let found: Vec<Finding> = inner(&text).collect();
        if !found.is_empty() {
            let spans = spans_in(&text, &found);
            // Where each match starts and ends in the UTF-16 bytes, in one pass for all.
            let mut wanted: Vec<usize> = spans.iter().flat_map(|&(s, e)| [s, e]).collect();
            wanted.sort_unstable();
            wanted.dedup();
            let mapped = utf16::original_offsets(data, endian, &wanted);
            let original = |t: usize| mapped[wanted.partition_point(|&w| w < t)];
            for (mut f, (start, end)) in found.into_iter().zip(spans) {
                relocate(&mut f, path, lines, (original(start), original(end)), endian.tag());
                out.push(f);
            }
        }
    }
    for window in escape::windows(data) {
        let found: Vec<Finding> = inner(&window.text).collect();
        let spans = spans_in(&window.text, &found);
        for (mut f, (start, end)) in found.into_iter().zip(spans) {
            let start = window.original(start, false);
            relocate(&mut f, path, lines, (start, window.original(end, true)), window.kind.tag());
            if !plain.iter().any(|p| p.rule_id == f.rule_id && (p.line, p.column) == (f.line, f.column)) {
                out.push(f);
            }
        }
    }
    out
}

/// The byte range (end exclusive) of each finding in `text`, where it was found.
fn spans_in(text: &[u8], found: &[Finding]) -> Vec<(usize, usize)> {
    if found.is_empty() {
        return Vec::new();
    }
    let lines = Lines::new(text);
    let offset = |line: usize, column: usize| lines.line_start(line - 1) + column - 1;
    found.iter().map(|f| (offset(f.line, f.column), offset(f.end_line, f.end_column) + 1)).collect()
}

/// Report `f`, found in decoded text, at `start..end` of the buffer whose lines are `lines`.
fn relocate(f: &mut Finding, path: &str, lines: &Lines<'_>, (start, end): (usize, usize), decoder: &str) {
    (f.line, f.column) = lines.position(start);
    (f.end_line, f.end_column) = lines.position(end.saturating_sub(1).max(start));
    f.fingerprint = format!("{path}:{}:{}", f.rule_id, f.line);
    f.tags.push(format!("decoded:{decoder}"));
}

/// Where to look for one rule's matches: search from `from`, keep matches starting before
/// `accept_before`, and let the regex see text up to `hay_end` (always a line end, so look-around
/// at the edge sees what it would see in the whole buffer; text before `from` is visible too).
#[derive(Debug, Clone, Copy)]
struct Window {
    from: usize,
    accept_before: usize,
    hay_end: usize,
}

/// The window around a keyword occurrence at `offset` that contains every match containing it.
fn rule_window(rule: &Rule, offset: usize, lines: &Lines<'_>, len: usize) -> Window {
    let line = lines.line_of(offset);
    match (rule.shape.max_len, rule.shape.max_newlines) {
        (Some(max_len), _) => Window {
            from: offset.saturating_sub(max_len),
            accept_before: offset + 1,
            hay_end: lines.line_end(lines.line_of((offset + max_len).min(len))),
        },
        (None, newlines) => {
            let newlines = newlines.unwrap_or(0);
            let end = lines.line_end(line + newlines);
            Window { from: lines.line_start(line.saturating_sub(newlines)), accept_before: end, hay_end: end }
        }
    }
}

/// What every rule's search in one buffer shares.
struct Ctx<'a> {
    set: &'a RuleSet,
    path: &'a str,
    data: &'a [u8],
    lines: &'a Lines<'a>,
    opts: EngineOptions,
}

fn find_in(ctx: &Ctx<'_>, rule: &Rule, regex: &meta::Regex, r: usize, window: Window, out: &mut Vec<Raw>) -> usize {
    let data = ctx.data;
    let hay = &data[..window.hay_end];
    let mut pos = window.from;
    // A match found from `accept_before` on would be dropped: do not search for it.
    let mut caps = regex.create_captures();
    while pos <= hay.len() && pos < window.accept_before {
        regex.search_captures(&regex_automata::Input::new(hay).span(pos..hay.len()), &mut caps);
        let Some(whole) = caps.get_match() else { break };
        if whole.start() >= window.accept_before {
            break;
        }
        pos = if whole.end() > whole.start() { whole.end() } else { whole.start() + 1 };
        let (mut start, mut end) = (whole.start(), whole.end());
        // gitleaks trims newlines around a match before locating it.
        while start < end && data[start] == b'\n' {
            start += 1;
        }
        while end > start && data[end - 1] == b'\n' {
            end -= 1;
        }
        let secret_span = if rule.secret_group > 0 {
            caps.get_group(rule.secret_group).map(|m| (m.start, m.end))
        } else {
            (1..caps.group_len())
                .filter_map(|i| caps.get_group(i))
                .find(|m| !m.is_empty())
                .map(|m| (m.start, m.end))
                .or(Some((start, end)))
        };
        let secret = secret_span.unwrap_or((start, start));
        if let Some(raw) = accept(ctx, rule, r, (start, end), secret) {
            out.push(raw);
        }
    }
    pos
}

/// A match of `rule` (whole match and secret, as byte ranges), unless its entropy is too low,
/// its line says `gitleaks:allow` (when honoured) or an allowlist allows it.
fn accept(ctx: &Ctx<'_>, rule: &Rule, r: usize, (start, end): (usize, usize), (ss, se): (usize, usize)) -> Option<Raw> {
    let (data, lines) = (ctx.data, ctx.lines);
    let secret = &data[ss..se];
    let entropy = shannon_entropy(secret);
    if rule.entropy.is_some_and(|min| entropy <= min) {
        return None;
    }
    let line = &data[lines.line_start(lines.line_of(start))..lines.line_end(lines.line_of(end.max(start)))];
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    if ctx.opts.inline_allow && memchr::memmem::find(line, b"gitleaks:allow").is_some() {
        return None;
    }
    let candidate = Candidate { path: ctx.path, secret, matched: &data[start..end], line };
    if ctx.set.global.iter().chain(&rule.allowlists).any(|a| a.allows(&candidate)) {
        return None;
    }
    Some(Raw { rule: r, start, end, secret: secret.to_vec(), secret_offset: ss.saturating_sub(start), entropy })
}

fn finish(set: &RuleSet, path: &str, data: &[u8], lines: &Lines<'_>, mut raws: Vec<Raw>) -> Vec<Finding> {
    // Composite rules: keep a finding only if every required rule matched near it.
    let position = |raw: &Raw| lines.position(raw.start);
    let keep: Vec<bool> = raws
        .iter()
        .map(|raw| {
            let (line, column) = position(raw);
            set.rules[raw.rule].required.iter().all(|(id, within_lines, within_columns)| {
                raws.iter().any(|other| {
                    let (other_line, other_column) = position(other);
                    set.rules[other.rule].id == *id
                        && within_lines.is_none_or(|n| line.abs_diff(other_line) <= n as usize)
                        && within_columns.is_none_or(|n| column.abs_diff(other_column) <= n as usize)
                })
            })
        })
        .collect();
    let mut raws: Vec<Raw> = raws.drain(..).zip(keep).filter_map(|(r, k)| k.then_some(r)).collect();
    // A generic finding repeats a specific one when a specific finding on the same line has a
    // secret containing it.
    let start_lines: Vec<usize> = raws.iter().map(|r| lines.line_of(r.start)).collect();
    let drop: Vec<bool> = raws
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            set.rules[raw.rule].generic
                && raws.iter().enumerate().any(|(j, other)| {
                    j != i
                        && !set.rules[other.rule].generic
                        && start_lines[j] == start_lines[i]
                        && memchr::memmem::find(&other.secret, &raw.secret).is_some()
                })
        })
        .collect();
    let mut out: Vec<Finding> = raws
        .drain(..)
        .zip(drop)
        .filter(|(raw, d)| !d && !set.rules[raw.rule].skip_report)
        .map(|(raw, _)| to_finding(&set.rules[raw.rule], path, data, lines, &raw))
        .collect();
    out.sort_by(|a, b| (a.line, a.column, &a.rule_id).cmp(&(b.line, b.column, &b.rule_id)));
    out
}

fn to_finding(rule: &Rule, path: &str, data: &[u8], lines: &Lines<'_>, raw: &Raw) -> Finding {
    let (line, column) = if raw.end > raw.start { lines.position(raw.start) } else { (1, 1) };
    let (end_line, end_column) = if raw.end > raw.start { lines.position(raw.end - 1) } else { (1, 1) };
    let matched = &data[raw.start..raw.end];
    let redacted = if raw.end > raw.start {
        let first_line_end = memchr::memchr(b'\n', matched).unwrap_or(matched.len());
        let secret_in_line = raw.secret.len().min(first_line_end.saturating_sub(raw.secret_offset));
        redact(&matched[..first_line_end], raw.secret_offset, secret_in_line)
    } else {
        format!("file detected: {path}")
    };
    let mut hasher = Sha256::new();
    hasher.update(rule.id.as_bytes());
    hasher.update([0]);
    hasher.update(&raw.secret);
    Finding {
        rule_id: rule.id.clone(),
        description: rule.description.clone(),
        path: path.to_owned(),
        line,
        column,
        end_line,
        end_column,
        redacted,
        fingerprint: format!("{path}:{}:{line}", rule.id),
        entropy: raw.entropy,
        tags: rule.tags.clone(),
        secret_digest: hasher.finalize().into(),
    }
}
