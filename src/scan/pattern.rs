//! Go RE2 patterns (as gitleaks writes them) compiled with Rust's `regex::bytes`, and the static
//! facts the engine uses to search only near keyword occurrences.
//!
//! Compilation uses `unicode(false)` so `\w \d \s \b` are ASCII, as in Go. Go treats a `{` that
//! does not start a valid repetition as a literal; Rust rejects it, so such braces are escaped.

use regex::bytes::{Regex, RegexBuilder};
use regex_automata::{Anchored, Input, meta};
use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// Compiled-program size limit; gitleaks' largest rules need a few MiB with Unicode off.
const SIZE_LIMIT: usize = 64 << 20;
/// Lazy-DFA cache per rule and thread: the default (2 MiB) thrashes on the generic rules and
/// halves throughput; much more raises peak memory with little gain.
const DFA_CACHE_LIMIT: usize = 16 << 20;
/// Cap on the number of literal strings enumerated while proving keyword containment (the
/// Discord rule's keywords are 900 spellings of three digits).
const MAX_LITERALS: usize = 1024;
/// Largest class spelled out as its members (`[0-9]`, the 10 base64 digits of a decimal digit).
const MAX_CLASS: usize = 10;

/// Rewrite Go-only syntax into the equivalent Rust syntax.
pub(crate) fn translate(go: &str) -> String {
    let chars: Vec<char> = go.chars().collect();
    let mut out = String::with_capacity(go.len() + 8);
    let mut i = 0;
    let mut in_class = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                out.push(c);
                if let Some(&next) = chars.get(i + 1) {
                    out.push(next);
                    i += 1;
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push(c);
                // A `]` right after `[` or `[^` is a literal member, not the end.
                if chars.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i + 1) == Some(&']') {
                    out.push_str("\\]");
                    i += 1;
                }
            }
            '[' if in_class && chars.get(i + 1) == Some(&':') => {
                // POSIX class `[:alpha:]` inside a bracket expression.
                let end = chars[i..].iter().collect::<String>().find(":]").map(|e| i + e + 2).unwrap_or(i + 1);
                out.extend(&chars[i..end]);
                i = end;
                continue;
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            '{' if !in_class && !is_repetition(&chars[i..]) => out.push_str("\\{"),
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

/// `{n}`, `{n,}` or `{n,m}` at the start of `rest`.
fn is_repetition(rest: &[char]) -> bool {
    let Some(close) = rest.iter().position(|&c| c == '}') else { return false };
    let inner: String = rest[1..close].iter().collect();
    let (min, max) = match inner.split_once(',') {
        Some((a, b)) => (a, Some(b)),
        None => (inner.as_str(), None),
    };
    let digits = |s: &str| !s.is_empty() && s.len() <= 4 && s.chars().all(|c| c.is_ascii_digit());
    digits(min) && max.is_none_or(|m| m.is_empty() || digits(m))
}

/// Compile a Go pattern; the error text is Rust's, pointing into the translated pattern.
pub(crate) fn compile(go: &str) -> Result<Regex, String> {
    let rust = translate(go);
    RegexBuilder::new(&rust).unicode(false).size_limit(SIZE_LIMIT).dfa_size_limit(DFA_CACHE_LIMIT).build().or_else(
        |ascii_err| {
            // A pattern that needs Unicode classes (`\pL`) compiles in Unicode mode instead.
            RegexBuilder::new(&rust).size_limit(SIZE_LIMIT).build().map_err(|_| ascii_err.to_string())
        },
    )
}

/// A Go pattern whose syntax is checked at load but which is compiled on first use: start-up
/// does not pay for the allowlists and path patterns of rules a scan never reaches.
#[derive(Debug)]
pub(crate) struct LazyRegex {
    go: String,
    regex: std::sync::OnceLock<Option<Regex>>,
}

impl LazyRegex {
    /// Check the syntax now (the error is Rust's, as for [`compile`]).
    pub(crate) fn new(go: &str) -> Result<Self, String> {
        parse(go)?;
        Ok(LazyRegex { go: go.to_owned(), regex: std::sync::OnceLock::new() })
    }

    /// Whether it matches `hay`; a pattern that parses but cannot be compiled within the size
    /// limits answers `on_error`, which callers choose so that it never hides a finding.
    pub(crate) fn is_match_or(&self, hay: &[u8], on_error: bool) -> bool {
        self.regex.get_or_init(|| compile(&self.go).ok()).as_ref().map_or(on_error, |r| r.is_match(hay))
    }
}

/// What the engine may assume about a rule's matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    /// The longest match in bytes (`None`: unbounded).
    pub(crate) max_len: Option<usize>,
    /// The most newlines one match can contain (`None`: unbounded).
    pub(crate) max_newlines: Option<usize>,
    /// Every match contains one of the rule's keywords (compared ASCII case-insensitively).
    pub(crate) keyword_bound: bool,
}

impl Shape {
    /// Matches can be searched in windows around keyword occurrences.
    pub(crate) fn windowed(self) -> bool {
        self.keyword_bound && (self.max_len.is_some() || self.max_newlines.is_some())
    }
}

/// A rule whose every match is `LEAD{0,lead} CORE`, where every CORE match starts with one of
/// the rule's keywords: at a keyword occurrence, an anchored CORE search (a few bytes for most
/// occurrences) decides whether the full pattern needs to run at all, and from where.
#[derive(Debug)]
pub(crate) struct Anchor {
    pub(crate) lead: usize,
    core: meta::Regex,
}

impl Anchor {
    /// Whether CORE matches starting exactly at `at` (with `hay` as the whole context).
    pub(crate) fn matches_at(&self, hay: &[u8], at: usize) -> bool {
        self.core.is_match(Input::new(hay).span(at..hay.len()).anchored(Anchored::Yes))
    }
}

/// The first position in `from..=to` where `regex` matches anchored, which is where an
/// unanchored search from `from` finds its match if that match starts by `to`. Anchored checks
/// stop within a few bytes where nothing matches, where an unanchored search would read on to
/// the end of the buffer looking for a match elsewhere.
pub(crate) fn first_anchored_start(regex: &meta::Regex, hay: &[u8], from: usize, to: usize) -> Option<usize> {
    (from..=to.min(hay.len())).find(|&p| regex.is_match(Input::new(hay).span(p..hay.len()).anchored(Anchored::Yes)))
}

/// Compile a parsed pattern for searching bytes, with the size limits of [`compile`].
pub(crate) fn build(hir: &Hir) -> Result<meta::Regex, String> {
    meta::Regex::builder()
        .configure(
            meta::Config::new()
                .utf8_empty(false)
                .nfa_size_limit(Some(SIZE_LIMIT))
                .onepass_size_limit(Some(SIZE_LIMIT))
                .hybrid_cache_capacity(DFA_CACHE_LIMIT),
        )
        .build_from_hir(hir)
        .map_err(|e| e.to_string())
}

/// Parse a Go pattern into its syntax tree (ASCII semantics; Unicode only when it needs it).
pub(crate) fn parse(go: &str) -> Result<Hir, String> {
    let rust = translate(go);
    regex_syntax::ParserBuilder::new().unicode(false).utf8(false).build().parse(&rust).or_else(|ascii_err| {
        regex_syntax::ParserBuilder::new().utf8(false).build().parse(&rust).map_err(|_| ascii_err.to_string())
    })
}

/// Build the anchor of a pattern, when its shape allows one.
pub(crate) fn anchor(hir: &Hir, keywords: &[String]) -> Option<Anchor> {
    let keywords = Keywords::new(keywords);
    if keywords.is_empty() || has_text_anchor(hir) {
        return None;
    }
    let (lead, core) = match hir.kind() {
        HirKind::Concat(subs) => match subs[0].kind() {
            HirKind::Repetition(rep)
                if rep.min == 0 && matches!(rep.sub.kind(), HirKind::Class(c) if !class_has_newline(c)) =>
            {
                (rep.max? as usize, Hir::concat(subs[1..].to_vec()))
            }
            _ => (0, hir.clone()),
        },
        _ => (0, hir.clone()),
    };
    let prefixes = prefix_set(&core)?;
    let starts_with_keyword = |s: &Vec<u8>| keywords.starts(s);
    if prefixes.is_empty() || !prefixes.iter().all(starts_with_keyword) {
        return None;
    }
    Some(Anchor { lead, core: build(&core).ok()? })
}

/// Lower-cased strings one of which every match of `hir` starts with.
fn prefix_set(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Some(vec![Vec::new()]),
        HirKind::Literal(_) | HirKind::Class(_) => literal_set(hir),
        HirKind::Capture(cap) => prefix_set(&cap.sub),
        HirKind::Repetition(rep) if rep.min >= 1 => prefix_set(&rep.sub),
        HirKind::Repetition(_) => Some(vec![Vec::new()]),
        HirKind::Alternation(subs) => {
            let mut out = Vec::new();
            for sub in subs {
                out.extend(prefix_set(sub)?);
                if out.len() > MAX_LITERALS {
                    return None;
                }
            }
            Some(out)
        }
        HirKind::Concat(subs) => {
            let mut acc = vec![Vec::new()];
            for sub in subs {
                match literal_set(sub) {
                    Some(set) => acc = product(&acc, &set)?,
                    // Whatever follows, every match starts with one of `acc` extended by this.
                    None => return Some(prefix_set(sub).and_then(|p| product(&acc, &p)).unwrap_or(acc)),
                }
            }
            Some(acc)
        }
    }
}

/// Analyse a pattern against its rule's (lower-case) keywords.
pub(crate) fn shape(hir: &Hir, keywords: &[String]) -> Shape {
    let keywords = Keywords::new(keywords);
    Shape {
        max_len: hir.properties().maximum_len(),
        max_newlines: max_newlines(hir),
        keyword_bound: !keywords.is_empty() && !has_text_anchor(hir) && contains_keyword(hir, &keywords),
    }
}

fn class_has_newline(class: &Class) -> bool {
    match class {
        Class::Bytes(c) => c.ranges().iter().any(|r| r.start() <= b'\n' && b'\n' <= r.end()),
        Class::Unicode(c) => c.ranges().iter().any(|r| r.start() <= '\n' && '\n' <= r.end()),
    }
}

fn max_newlines(hir: &Hir) -> Option<usize> {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Some(0),
        HirKind::Literal(lit) => Some(lit.0.iter().filter(|&&b| b == b'\n').count()),
        HirKind::Class(class) => Some(usize::from(class_has_newline(class))),
        HirKind::Capture(cap) => max_newlines(&cap.sub),
        HirKind::Repetition(rep) => {
            let sub = max_newlines(&rep.sub)?;
            if sub == 0 { Some(0) } else { rep.max.map(|m| sub.saturating_mul(m as usize)) }
        }
        HirKind::Concat(subs) => subs.iter().try_fold(0usize, |acc, s| max_newlines(s).map(|n| acc.saturating_add(n))),
        HirKind::Alternation(subs) => subs.iter().try_fold(0usize, |acc, s| max_newlines(s).map(|n| acc.max(n))),
    }
}

/// `^`/`$` without `(?m)` mean start/end of the whole text, which a window would change.
fn has_text_anchor(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Look(look) => matches!(look, Look::Start),
        HirKind::Capture(cap) => has_text_anchor(&cap.sub),
        HirKind::Repetition(rep) => has_text_anchor(&rep.sub),
        HirKind::Concat(subs) | HirKind::Alternation(subs) => subs.iter().any(has_text_anchor),
        _ => false,
    }
}

/// The finite set of (lower-cased) strings `hir` can match, when small.
fn literal_set(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    // Counted first: the analysis asks about many nodes whose sets are too large, and building
    // them up to the cap only to give up was most of its cost.
    literal_count(hir)?;
    literal_set_within_cap(hir)
}

/// How many strings (with repeats) [`literal_set`] gives for `hir`, if at most the cap.
fn literal_count(hir: &Hir) -> Option<usize> {
    let capped = |n: usize| (n <= MAX_LITERALS).then_some(n);
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) | HirKind::Literal(_) => Some(1),
        HirKind::Class(class) => class_bytes(class).map(|b| b.len()),
        HirKind::Capture(cap) => literal_count(&cap.sub),
        HirKind::Repetition(rep) if rep.max.is_some_and(|max| max <= 8 && max - rep.min <= 2) => {
            let sub = literal_count(&rep.sub)?;
            let mut power = 1usize;
            for _ in 0..rep.min {
                power = capped(power.checked_mul(sub)?)?;
            }
            let mut total = power;
            for _ in rep.min..rep.max.unwrap_or(rep.min) {
                power = capped(power.checked_mul(sub)?)?;
                total += power;
            }
            capped(total)
        }
        HirKind::Concat(subs) => subs.iter().try_fold(1usize, |acc, sub| capped(acc.checked_mul(literal_count(sub)?)?)),
        HirKind::Alternation(subs) => subs.iter().try_fold(0usize, |acc, sub| capped(acc + literal_count(sub)?)),
        HirKind::Repetition(_) => None,
    }
}

fn literal_set_within_cap(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    match hir.kind() {
        // A look-around consumes nothing: as far as content goes, it is the empty string.
        HirKind::Empty | HirKind::Look(_) => Some(vec![Vec::new()]),
        HirKind::Literal(lit) => Some(vec![lit.0.to_ascii_lowercase()]),
        HirKind::Class(class) => Some(class_bytes(class)?.into_iter().map(|b| vec![b]).collect()),
        HirKind::Capture(cap) => literal_set(&cap.sub),
        // A short bounded repetition (`x{3}`, `(?:or)?`): every count spelled out.
        HirKind::Repetition(rep) if rep.max.is_some_and(|max| max <= 8 && max - rep.min <= 2) => {
            let sub = literal_set(&rep.sub)?;
            let mut power = vec![Vec::new()];
            for _ in 0..rep.min {
                power = product(&power, &sub)?;
            }
            let mut out = power.clone();
            for _ in rep.min..rep.max.unwrap_or(rep.min) {
                power = product(&power, &sub)?;
                out.extend(power.iter().cloned());
            }
            (out.len() <= MAX_LITERALS).then_some(out)
        }
        HirKind::Concat(subs) => {
            let mut out = vec![Vec::new()];
            for sub in subs {
                out = product(&out, &literal_set(sub)?)?;
            }
            Some(out)
        }
        HirKind::Alternation(subs) => {
            let mut out = Vec::new();
            for sub in subs {
                out.extend(literal_set(sub)?);
                if out.len() > MAX_LITERALS {
                    return None;
                }
            }
            Some(out)
        }
        _ => None,
    }
}

/// The members of a small ASCII class, lower-cased, sorted and without repeats.
fn class_bytes(class: &Class) -> Option<Vec<u8>> {
    let mut bytes: Vec<u8> = match class {
        Class::Bytes(c) => {
            if c.ranges().iter().map(|r| usize::from(r.end() - r.start()) + 1).sum::<usize>() > MAX_CLASS {
                return None;
            }
            c.ranges().iter().flat_map(|r| r.start()..=r.end()).collect()
        }
        Class::Unicode(c) => {
            if c.ranges().iter().map(|r| r.end() as usize - r.start() as usize + 1).sum::<usize>() > MAX_CLASS {
                return None;
            }
            let chars: Vec<char> = c.ranges().iter().flat_map(|r| r.start()..=r.end()).collect();
            if !chars.iter().all(char::is_ascii) {
                return None;
            }
            chars.into_iter().map(|ch| ch as u8).collect()
        }
    };
    bytes.iter_mut().for_each(|b| *b = b.to_ascii_lowercase());
    bytes.sort_unstable();
    bytes.dedup();
    Some(bytes)
}

fn product(a: &[Vec<u8>], b: &[Vec<u8>]) -> Option<Vec<Vec<u8>>> {
    if a.len() * b.len() > MAX_LITERALS {
        return None;
    }
    Some(a.iter().flat_map(|x| b.iter().map(move |y| [x.as_slice(), y.as_slice()].concat())).collect())
}

/// A rule's keywords (lower-case), hashed: a rule may have hundreds.
struct Keywords {
    set: std::collections::HashSet<Vec<u8>>,
    /// The distinct keyword lengths.
    lengths: Vec<usize>,
}

impl Keywords {
    fn new(keywords: &[String]) -> Self {
        let set: std::collections::HashSet<Vec<u8>> =
            keywords.iter().map(|k| k.as_bytes().to_ascii_lowercase()).filter(|k| !k.is_empty()).collect();
        let mut lengths: Vec<usize> = set.iter().map(Vec::len).collect();
        lengths.sort_unstable();
        lengths.dedup();
        Keywords { set, lengths }
    }

    fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Whether `s` starts with a keyword.
    fn starts(&self, s: &[u8]) -> bool {
        self.lengths.iter().any(|&n| s.get(..n).is_some_and(|p| self.set.contains(p)))
    }

    /// Whether `s` contains a keyword.
    fn within(&self, s: &[u8]) -> bool {
        self.lengths.iter().any(|&n| s.windows(n).any(|w| self.set.contains(w)))
    }
}

fn all_contain(strings: &[Vec<u8>], keywords: &Keywords) -> bool {
    !strings.is_empty() && strings.iter().all(|s| keywords.within(s))
}

/// Whether every match of `hir` contains one of `keywords`.
fn contains_keyword(hir: &Hir, keywords: &Keywords) -> bool {
    if literal_set(hir).is_some_and(|set| all_contain(&set, keywords)) {
        return true;
    }
    match hir.kind() {
        HirKind::Capture(cap) => contains_keyword(&cap.sub, keywords),
        HirKind::Repetition(rep) => rep.min >= 1 && contains_keyword(&rep.sub, keywords),
        HirKind::Alternation(subs) => subs.iter().all(|s| contains_keyword(s, keywords)),
        HirKind::Concat(subs) => {
            // A keyword may straddle neighbours, e.g. `(?:sk|rk)` followed by `_live_`. Tried
            // first: it answers from the leading literals, before any large sub-pattern is
            // spelled out.
            let mut run: Option<Vec<Vec<u8>>> = None;
            for sub in subs {
                match literal_set(sub) {
                    Some(set) => {
                        let joined = match &run {
                            Some(r) => product(r, &set),
                            None => Some(set),
                        };
                        match joined {
                            Some(j) if all_contain(&j, keywords) => return true,
                            other => run = other,
                        }
                    }
                    None => run = None,
                }
            }
            subs.iter().any(|s| contains_keyword(s, keywords))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchored_starts_agree_with_an_unanchored_search() {
        let regex = build(&parse(r"(?i)[\w.-]{0,10}?(?:key|token)\s*=\s*([a-z0-9]{6,})").unwrap()).unwrap();
        let hay = b"x my.api_key = short; other_token = abcdef123 and key=zzzzzzzz";
        for from in 0..hay.len() {
            let expected = regex.find(Input::new(hay).span(from..hay.len())).map(|m| m.start());
            for to in from..hay.len() {
                let want = expected.filter(|&s| s <= to);
                assert_eq!(first_anchored_start(&regex, hay, from, to), want, "from {from} to {to}");
            }
        }
    }

    #[test]
    fn escapes_go_literal_braces() {
        assert_eq!(translate(r"a{b"), r"a\{b");
        assert_eq!(translate(r"a{2,3}"), r"a{2,3}");
        assert_eq!(translate(r"a{2,}"), r"a{2,}");
        assert_eq!(translate(r"\{x}"), r"\{x}");
        assert_eq!(translate(r"[{]"), r"[{]");
        assert_eq!(translate(r"[]a]{"), r"[\]a]\{");
        assert_eq!(translate(r"[[:alpha:]{]"), r"[[:alpha:]{]");
        assert!(compile(r#"(?i)"private_key":\s*"-----BEGIN{x"#).is_ok());
    }

    #[test]
    fn go_semantics_are_ascii() {
        let re = compile(r"\w+").unwrap();
        assert_eq!(re.find("é".as_bytes()), None);
        assert!(compile(r"(a").is_err());
    }

    fn kw(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| (*s).to_owned()).collect()
    }

    fn shape(go: &str, keywords: &[String]) -> Shape {
        super::shape(&parse(go).unwrap(), keywords)
    }

    fn anchor(go: &str, keywords: &[String]) -> Option<Anchor> {
        super::anchor(&parse(go).unwrap(), keywords)
    }

    #[test]
    fn shapes() {
        let s = shape(r"\b(ghp_[A-Za-z0-9]{36})\b", &kw(&["ghp_"]));
        assert_eq!(s, Shape { max_len: Some(40), max_newlines: Some(0), keyword_bound: true });
        let s = shape(r"(?i)\b((?:sk|rk)_live_[a-z0-9]{24})", &kw(&["sk_live_", "rk_live_"]));
        assert!(s.keyword_bound);
        let s = shape(r#"(?i)[\w.-]{0,50}?(?:api|token)[\s'"]{0,3}=([a-z0-9]{10})"#, &kw(&["api", "token"]));
        assert_eq!((s.max_newlines, s.keyword_bound), (Some(3), true));
        // The keyword is not inside the match: whole-file search.
        assert!(!shape(r"[a-f0-9]{32}", &kw(&["heroku"])).keyword_bound);
        // Unbounded newlines: whole-file search.
        assert_eq!(shape(r"-----BEGIN[\s\S]*?-----END", &kw(&["-----begin"])).max_newlines, None);
        // A text anchor changes meaning in a window.
        assert!(!shape(r"^ghp_[a-z]{3}", &kw(&["ghp_"])).keyword_bound);
    }

    #[test]
    fn anchors() {
        let generic = r#"(?i)[\w.-]{0,50}?(?:access|auth|(?-i:[Aa]pi|API)|key|passw(?:or)?d|token)(?:[ \t\w.-]{0,20})[\s'"]{0,3}(?:=|:)[\x60'"\s=]{0,5}([\w.=-]{10,150})"#;
        let a = anchor(generic, &kw(&["access", "api", "auth", "key", "passw", "token"])).expect("anchor");
        assert_eq!(a.lead, 50);
        let hay = b"my_api_key = 'abcdefghijkl123'";
        assert!(a.matches_at(hay, 3) && a.matches_at(hay, 7) && !a.matches_at(hay, 0));
        let token = anchor(r"\b(ghp_[0-9a-zA-Z]{36})\b", &kw(&["ghp_"])).expect("anchor");
        assert_eq!(token.lead, 0);
        // A keyword not at the start of the match: no anchor.
        assert!(anchor(r"[a-z]+_ghp_[a-z]{4}", &kw(&["ghp_"])).is_none());
        assert!(anchor(r"(?:ab|ghp_)[a-z]{4}", &kw(&["ghp_"])).is_none());
    }
}
