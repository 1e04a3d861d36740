//! The members of an `ar` archive (`.a`, `.deb`, Rust's `.rlib`), as slices of the archive: ar
//! stores them uncompressed, so their bytes are already scanned with the archive's; the scanner
//! only opens the members that are themselves containers (a `.deb`'s `data.tar.xz`).
//!
//! GNU (`/123` into the `//` name table) and BSD (`#1/LEN`, the name first in the data) long
//! names are resolved. A header that does not parse ends the walk.

/// One member.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Member<'a> {
    pub(crate) name: String,
    pub(crate) data: &'a [u8],
}

const MAGIC: &[u8] = b"!<arch>\n";
const HEADER: usize = 60;

/// The members of `data` in order, without the symbol tables and the GNU name table.
pub(crate) fn members(data: &[u8]) -> Vec<Member<'_>> {
    let mut out = Vec::new();
    let mut names: &[u8] = &[];
    let mut at = MAGIC.len();
    while let Some(header) = data.get(at..at + HEADER) {
        if &header[58..60] != b"`\n" {
            break;
        }
        let Some(size) = std::str::from_utf8(&header[48..58]).ok().and_then(|s| s.trim().parse::<usize>().ok()) else {
            break;
        };
        let start = at + HEADER;
        let end = start.saturating_add(size).min(data.len());
        let body = &data[start..end];
        at = end + (end & 1);
        let raw = std::str::from_utf8(&header[..16]).unwrap_or("").trim_end();
        match raw {
            "/" | "/SYM64/" | "__.SYMDEF" | "__.SYMDEF SORTED" => continue,
            "//" => {
                names = body;
                continue;
            }
            _ => {}
        }
        let (name, body) = if let Some(len) = raw.strip_prefix("#1/").and_then(|l| l.parse::<usize>().ok()) {
            let len = len.min(body.len());
            (String::from_utf8_lossy(&body[..len]).trim_end_matches('\0').to_owned(), &body[len..])
        } else if let Some(offset) = raw.strip_prefix('/').and_then(|o| o.parse::<usize>().ok()) {
            let long = names.get(offset..).unwrap_or_default();
            let end = long.iter().position(|&b| b == b'\n').unwrap_or(long.len());
            (String::from_utf8_lossy(&long[..end]).trim_end_matches('/').to_owned(), body)
        } else {
            (raw.trim_end_matches('/').to_owned(), body)
        };
        out.push(Member { name, data: body });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Member, members};

    fn header(name: &str, size: usize) -> Vec<u8> {
        format!("{name:<16}{:<12}{:<6}{:<6}{:<8}{size:<10}`\n", 0, 0, 0, 644).into_bytes()
    }

    #[test]
    fn members_with_gnu_and_bsd_names() {
        let mut ar = b"!<arch>\n".to_vec();
        ar.extend(header("debian-binary/", 4));
        ar.extend(b"2.0\n");
        ar.extend(header("//", 22));
        ar.extend(b"a-very-long-name.txt/\n");
        ar.extend(header("/0", 3));
        ar.extend(b"abc\n");
        ar.extend(header("#1/8", 10));
        ar.extend(b"bsd.name12");
        assert_eq!(
            members(&ar),
            [
                Member { name: "debian-binary".into(), data: b"2.0\n" },
                Member { name: "a-very-long-name.txt".into(), data: b"abc" },
                Member { name: "bsd.name".into(), data: b"12" },
            ]
        );
    }
}
