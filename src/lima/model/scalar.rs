//! Lenient decoding of Lima's string-typed fields.
//!
//! Lima decodes `lima.yaml` with a Go YAML library that stores *any* scalar into a `string`
//! field: Lima's own templates rely on it (`permissions: 755` in a `data` provision,
//! `param: {containerdSnapshotter: true}`). `serde_yaml` is stricter and would reject those, so
//! every free-form string field of the model goes through these helpers. Only the *type* of a
//! scalar is relaxed; mappings and sequences are still errors, and unknown keys stay errors.
//!
//! Limitation: `serde_yaml` hands over floats already parsed, so `1.10` reads back as `"1.1"`
//! (Go would keep the source text). No Lima field takes a float-looking value in practice.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// A YAML scalar (string, bool, integer or float) read as its text.
struct ScalarText(String);

impl<'de> Deserialize<'de> for ScalarText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl Visitor<'_> for ScalarVisitor {
    type Value = ScalarText;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string (or a number or boolean, which Lima reads as a string)")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(ScalarText(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(ScalarText(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(ScalarText(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(ScalarText(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(ScalarText(v.to_string()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Self::Value, E> {
        Ok(ScalarText(v.to_string()))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
        Ok(ScalarText(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(ScalarText(v.to_string()))
    }
}

/// `Option<String>` field: `null`/absent is `None`, any scalar is its text.
pub(super) fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<ScalarText>::deserialize(d)?.map(|s| s.0))
}

/// `Option<Vec<String>>` field whose items are read like [`opt_string`] (`null` items as `""`).
pub(super) fn opt_string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let list = Option::<Vec<Option<ScalarText>>>::deserialize(d)?;
    Ok(list.map(|items| items.into_iter().map(text_or_empty).collect()))
}

/// `Option<BTreeMap<String, String>>` field (`env`, `param`, `hostResolver.hosts`): Go's
/// `map[string]string`, so values such as `true` or `8080` are kept as their text.
pub(super) fn opt_string_map<'de, D: Deserializer<'de>>(d: D) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    let map = Option::<BTreeMap<String, Option<ScalarText>>>::deserialize(d)?;
    Ok(map.map(|m| m.into_iter().map(|(k, v)| (k, text_or_empty(v))).collect()))
}

/// A `null` item of a Go string slice or map decodes to the zero value `""`.
fn text_or_empty(v: Option<ScalarText>) -> String {
    v.map(|s| s.0).unwrap_or_default()
}
