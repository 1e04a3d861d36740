//! Tokens that prove themselves: a fixed prefix and either a checksum (GitHub's and npm's CRC32
//! in base62) or a structure that fixes where they end (PyPI's macaroons). Such a token is
//! found by validating it instead of by word boundaries, so a byte glued to it does not hide
//! it: in a compiled Python file marshal writes the next constant's type byte right after a
//! string, and a length byte right before it. A look-alike without a valid checksum still
//! needs its rule's boundaries, so the rules stay as precise as before.
//!
//! Formats, checked on real tokens (see the tests):
//! - GitHub (`ghp_ gho_ ghu_ ghs_ ghr_`, "Behind GitHub's new authentication token formats",
//!   2021) and npm (`npm_`, "Announcing npm's new access token format": the same format): 30
//!   random base62 characters, then the CRC32 (IEEE, as zlib's) of those 30 characters, written
//!   as 6 base62 digits (`0-9A-Za-z`, most significant first, zero-padded).
//! - PyPI (`pypi-`): the unpadded base64url of a version 2 binary macaroon (pymacaroons'
//!   `serialize`), whose location (`pypi.org`, `test.pypi.org`) is in the fixed prefix; its
//!   sections end with end-of-section bytes and its 32-byte signature, which fixes its length.

/// How a token of a rule proves itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// After the prefix, `len` base62 characters whose last 6 are the CRC32 of the others.
    Crc32Base62 { lengths: &'static [usize] },
    /// After the prefix (`pypi-` and the encoded start of the macaroon), the rest of a binary
    /// version 2 macaroon in unpadded base64url.
    Macaroon,
}

/// A token format with a fixed, case-sensitive prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checksummed {
    pub(crate) prefix: &'static str,
    /// Where the checked part starts: after `ghp_`, or after `pypi-` (a macaroon's first
    /// bytes are part of PyPI's prefix).
    body_at: usize,
    format: Format,
}

const GITHUB: Format = Format::Crc32Base62 { lengths: &[36] };

/// The built-in rules whose tokens carry a checksum, by rule id.
const BUILTIN: [(&str, Checksummed); 8] = [
    ("github-pat-classic", Checksummed { prefix: "ghp_", body_at: 4, format: GITHUB }),
    ("github-oauth-token", Checksummed { prefix: "gho_", body_at: 4, format: GITHUB }),
    ("github-user-to-server-token", Checksummed { prefix: "ghu_", body_at: 4, format: GITHUB }),
    ("github-server-to-server-token", Checksummed { prefix: "ghs_", body_at: 4, format: GITHUB }),
    // Refresh tokens are longer; whichever length has a valid checksum is the token.
    (
        "github-refresh-token",
        Checksummed { prefix: "ghr_", body_at: 4, format: Format::Crc32Base62 { lengths: &[76, 36] } },
    ),
    ("npm-access-token", Checksummed { prefix: "npm_", body_at: 4, format: GITHUB }),
    // Version 2, location field (1) of 8 bytes `pypi.org`: `02 01 08 pypi.org`, base64url.
    ("pypi-upload-token", Checksummed { prefix: "pypi-AgEIcHlwaS5vcmc", body_at: 5, format: Format::Macaroon }),
    // The same with location `test.pypi.org` (13 bytes).
    (
        "pypi-test-upload-token",
        Checksummed { prefix: "pypi-AgENdGVzdC5weXBpLm9yZw", body_at: 5, format: Format::Macaroon },
    ),
];

/// The checksummed format of the built-in rule `id`, if it has one.
pub(crate) fn for_rule(id: &str) -> Option<Checksummed> {
    BUILTIN.iter().find(|(rule, _)| *rule == id).map(|(_, c)| *c)
}

impl Checksummed {
    /// The length of the valid token that starts at the beginning of `data`, if there is one.
    pub(crate) fn token_len(&self, data: &[u8]) -> Option<usize> {
        if !data.starts_with(self.prefix.as_bytes()) {
            return None;
        }
        match self.format {
            Format::Crc32Base62 { lengths } => {
                let body = &data[self.body_at..];
                lengths.iter().find(|&&len| crc32_base62_valid(body, len)).map(|&len| self.body_at + len)
            }
            Format::Macaroon => macaroon_len(&data[self.body_at..]).map(|len| self.body_at + len),
        }
    }
}

/// Base62 digit value (`0-9A-Za-z`).
fn base62(b: u8) -> Option<u64> {
    match b {
        b'0'..=b'9' => Some(u64::from(b - b'0')),
        b'A'..=b'Z' => Some(u64::from(b - b'A') + 10),
        b'a'..=b'z' => Some(u64::from(b - b'a') + 36),
        _ => None,
    }
}

/// Whether `body` starts with `len` base62 characters whose last 6 encode the CRC32 of the
/// others.
fn crc32_base62_valid(body: &[u8], len: usize) -> bool {
    let Some(token) = body.get(..len) else { return false };
    let (random, check) = token.split_at(len - 6);
    if !random.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    let Some(value) = check.iter().try_fold(0u64, |acc, &b| Some(acc * 62 + base62(b)?)) else { return false };
    value == u64::from(crc32(random))
}

/// CRC-32 (IEEE 802.3, reflected, as zlib's `crc32`).
fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut n = 0;
        while n < 256 {
            let mut c = n as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 == 1 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
                k += 1;
            }
            table[n] = c;
            n += 1;
        }
        table
    };
    !data.iter().fold(!0u32, |crc, &b| TABLE[usize::from((crc as u8) ^ b)] ^ (crc >> 8))
}

/// The longest token considered (base64 characters after `pypi-`): a token with many caveats
/// is a few hundred.
const MAX_MACAROON_CHARS: usize = 4096;

/// Reads unpadded base64url as bytes, lazily: byte `k` needs only the characters up to
/// `(8k + 8) / 6`.
struct Reader<'a> {
    text: &'a [u8],
    /// Bytes read so far.
    at: usize,
}

impl Reader<'_> {
    fn sextet(&self, i: usize) -> Option<u32> {
        let v = match *self.text.get(i)? {
            b @ b'A'..=b'Z' => b - b'A',
            b @ b'a'..=b'z' => b - b'a' + 26,
            b @ b'0'..=b'9' => b - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        Some(u32::from(v))
    }

    fn byte(&mut self) -> Option<u8> {
        let bit = self.at * 8;
        let (i, shift) = (bit / 6, bit % 6);
        // The byte is 8 of the 12 bits of two sextets, `shift` bits in.
        let pair = (self.sextet(i)? << 6) | self.sextet(i + 1)?;
        self.at += 1;
        u8::try_from((pair >> (4 - shift)) & 0xff).ok()
    }

    /// An unsigned LEB128 varint of at most 4 bytes (no field of a token is longer).
    fn varint(&mut self) -> Option<usize> {
        let mut value = 0;
        for shift in [0, 7, 14, 21] {
            let b = self.byte()?;
            value |= usize::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(value);
            }
        }
        None
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        (0..n).try_for_each(|_| self.byte().map(drop))
    }
}

/// The length in characters of the unpadded base64url binary macaroon (version 2) at the start
/// of `text`, if a whole one is there, signature included.
fn macaroon_len(text: &[u8]) -> Option<usize> {
    let mut r = Reader { text: &text[..text.len().min(MAX_MACAROON_CHARS)], at: 0 };
    if r.byte()? != 2 {
        return None;
    }
    // The header section, caveat sections, then an empty section. A section is fields in
    // increasing type order (location 1, identifier 2, verification id 4) ended by a 0, and
    // has an identifier.
    let mut sections = 0;
    loop {
        let mut last_type = 0;
        loop {
            let field_type = r.varint()?;
            if field_type == 0 {
                break;
            }
            if field_type <= last_type || !matches!(field_type, 1 | 2 | 4) {
                return None;
            }
            last_type = field_type;
            let len = r.varint()?;
            r.skip(len)?;
        }
        match last_type {
            0 => break,
            1 => return None,
            _ => sections += 1,
        }
    }
    if sections == 0 || r.varint()? != 6 || r.varint()? != 32 {
        return None;
    }
    r.skip(32)?;
    Some((r.at * 4).div_ceil(3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_is_zlibs() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn real_github_tokens_validate() {
        // Expired, revoked personal access tokens published as test vectors (therootcompany's
        // base62-token.js, test.js); split so the repository's self-scan does not see them.
        let real = [
            concat!("gh", "p_zQWBuTSOoRi4A9spHcVY5ncnsDkxkJ0mLq17"),
            concat!("gh", "p_adE7dp8rHP6gUTuPwxLTZjZdtya3sV0UQzQM"),
            concat!("gh", "p_MXum81IYH7kioWQyIvN4zPMfECIWYd1ldyCH"),
        ];
        let pat = for_rule("github-pat-classic").expect("checksummed");
        for token in real {
            assert_eq!(pat.token_len(token.as_bytes()), Some(40), "{token}");
            // Glued to what follows, as in a .pyc.
            assert_eq!(pat.token_len(format!("{token}Nz\x0a").as_bytes()), Some(40));
            // One character changed: the checksum fails.
            let mut bad = token.as_bytes().to_vec();
            bad[10] = if bad[10] == b'a' { b'b' } else { b'a' };
            assert_eq!(pat.token_len(&bad), None);
        }
        // The fixtures' look-alikes have no valid checksum.
        assert_eq!(pat.token_len(concat!("gh", "p_8XqP2mZr7TbW4nLk9VhC3sJd6FyA1eGu5RoI").as_bytes()), None);
        // Synthetic, with a valid checksum (as npm writes its own).
        let npm = for_rule("npm-access-token").expect("checksummed");
        assert_eq!(npm.token_len(concat!("np", "m_Zt4Kq9XwR2mB7nLc5VyH3sJd8FgA6e0Ii8Lr").as_bytes()), Some(40));
        assert_eq!(npm.token_len(concat!("gh", "p_zQWBuTSOoRi4A9spHcVY5ncnsDkxkJ0mLq17").as_bytes()), None);
    }

    /// A binary v2 macaroon laid out as PyPI's (location, a UUID identifier, two caveats);
    /// `pad` lengthens the first caveat, to try every length modulo 3.
    fn macaroon(location: &[u8], pad: usize) -> Vec<u8> {
        let mut m = vec![2, 1, u8::try_from(location.len()).unwrap()];
        m.extend(location);
        m.extend([2, 36]);
        m.extend(b"6f1d3c2a-9b8e-4f7a-8c6d-5e4f3a2b1c0d");
        m.push(0);
        let project = format!(r#"[1,["sandbox-test{}"]]"#, "x".repeat(pad));
        for caveat in [project.as_bytes(), br#"[2,["0e1d2c3b-4a59-6877-8695-a4b3c2d1e0f9"]]"#] {
            m.extend([2, u8::try_from(caveat.len()).unwrap()]);
            m.extend(caveat);
            m.push(0);
        }
        m.push(0);
        m.extend([6, 32]);
        m.extend((0u8..32).map(|i| i.wrapping_mul(37).wrapping_add(11)));
        m
    }

    #[test]
    fn pypi_macaroons_fix_their_length() {
        use base64::Engine as _;
        let encode = |m: &[u8]| format!("pypi-{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(m));
        let pypi = for_rule("pypi-upload-token").expect("checksummed");
        for pad in 0..3 {
            let m = macaroon(b"pypi.org", pad);
            let token = encode(&m);
            assert_eq!(pypi.token_len(token.as_bytes()), Some(token.len()), "pad {pad}");
            for glued in ["N", "Z0", "abc-_", "\n"] {
                assert_eq!(pypi.token_len(format!("{token}{glued}").as_bytes()), Some(token.len()), "{glued}");
            }
            // Truncated, or its signature cut short: not a token.
            assert_eq!(pypi.token_len(&token.as_bytes()[..token.len() - 3]), None);
            assert_eq!(pypi.token_len(encode(&m[..m.len() - 1]).as_bytes()), None);
        }
        let test = for_rule("pypi-test-upload-token").expect("checksummed");
        let token = encode(&macaroon(b"test.pypi.org", 0));
        assert_eq!(test.token_len(token.as_bytes()), Some(token.len()));
        assert_eq!(pypi.token_len(token.as_bytes()), None);
        // The fixtures' look-alikes are random text after the prefix.
        let fake = concat!("pypi-AgEIcHlwaS5vcmc", "TyGsbM_AFjRKzBshl_E5aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        assert_eq!(pypi.token_len(fake.as_bytes()), None);
    }
}
