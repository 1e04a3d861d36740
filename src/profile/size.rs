//! Byte sizes as written in profiles (`8GiB`, `512M`, `100MB`).
//!
//! Like Lima (go-units `RAMInBytes`), every unit is binary: `G`, `GB` and `GiB` all mean 2^30,
//! so a size means the same thing here as in the rendered Lima YAML.

use std::fmt;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ByteSize(pub(crate) u64);

const UNITS: [(&str, u64); 5] = [("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10), ("", 1)];

impl ByteSize {
    pub(crate) const MIB: u64 = 1 << 20;
    pub(crate) const GIB: u64 = 1 << 30;

    /// Parse `N`, `N B`, `N K|KB|KiB`, ... `N T|TB|TiB` (case-insensitive units, whole numbers).
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        if digits.is_empty() {
            return Err(format!("`{text}` is not a size; write a whole number with a unit, like `8GiB`"));
        }
        let number: u64 = digits.parse().map_err(|_| format!("`{text}` is too large"))?;
        let unit = unit.trim().to_ascii_uppercase();
        let unit = unit.strip_suffix("IB").or_else(|| unit.strip_suffix('B')).unwrap_or(&unit);
        let factor = UNITS
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, f)| *f)
            .ok_or_else(|| format!("`{text}` has an unknown unit; use B, KiB, MiB, GiB or TiB"))?;
        number.checked_mul(factor).map(ByteSize).ok_or_else(|| format!("`{text}` is too large"))
    }

    pub(crate) fn bytes(self) -> u64 {
        self.0
    }
}

/// The largest binary unit that divides the size exactly, e.g. `8GiB`, `1536MiB`.
impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, factor) in UNITS {
            if self.0 >= factor && self.0.is_multiple_of(factor) && !unit.is_empty() {
                return write!(f, "{}{unit}iB", self.0 / factor);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::ByteSize;

    #[test]
    fn parses_binary_units() {
        assert_eq!(ByteSize::parse("8GiB").unwrap().bytes(), 8 << 30);
        assert_eq!(ByteSize::parse("8G").unwrap().bytes(), 8 << 30);
        assert_eq!(ByteSize::parse("8gb").unwrap().bytes(), 8 << 30);
        assert_eq!(ByteSize::parse("512 MiB").unwrap().bytes(), 512 << 20);
        assert_eq!(ByteSize::parse("100").unwrap().bytes(), 100);
        assert!(ByteSize::parse("8 parsecs").is_err());
        assert!(ByteSize::parse("GiB").is_err());
        assert!(ByteSize::parse("1.5GiB").is_err());
        assert!(ByteSize::parse("99999999999999TiB").is_err());
    }

    #[test]
    fn displays_largest_exact_unit() {
        assert_eq!(ByteSize(8 << 30).to_string(), "8GiB");
        assert_eq!(ByteSize(1536 << 20).to_string(), "1536MiB");
        assert_eq!(ByteSize(1000).to_string(), "1000B");
    }
}
