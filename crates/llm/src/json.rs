//! A JSON value that keeps its objects' keys in the order they were written.
//!
//! A JSON schema's property order is the order a grammar-constrained model writes the
//! properties in, and that changes what it writes: asked for `{"reason", "score"}`
//! SmolLM2 under llama-cpp-python wrote an unterminated reason and never reached the
//! score, while `{"score", "reason"}` gave valid JSON (seen here). serde_json's `Value`
//! sorts keys, so the schema is kept in this type instead and sent as written.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// A JSON value with ordered objects. Written in a pipeline file as a TOML table (in the
/// table's order) or as a string holding JSON text.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderedJson {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    String(String),
    Array(Vec<OrderedJson>),
    Object(Vec<(String, OrderedJson)>),
}

impl OrderedJson {
    /// The value as compact JSON text, keys in their order.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A string that holds a JSON object, read as that object.
    pub fn parsed(&self) -> Option<OrderedJson> {
        match self {
            OrderedJson::Object(_) => Some(self.clone()),
            OrderedJson::String(s) => serde_json::from_str::<OrderedJson>(s)
                .ok()
                .filter(|v| matches!(v, OrderedJson::Object(_))),
            _ => None,
        }
    }
}

impl Serialize for OrderedJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            OrderedJson::Null => s.serialize_unit(),
            OrderedJson::Bool(b) => s.serialize_bool(*b),
            OrderedJson::Int(i) => s.serialize_i64(*i),
            OrderedJson::Uint(u) => s.serialize_u64(*u),
            OrderedJson::Float(f) => s.serialize_f64(*f),
            OrderedJson::String(t) => s.serialize_str(t),
            OrderedJson::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            OrderedJson::Object(o) => {
                let mut map = s.serialize_map(Some(o.len()))?;
                for (k, v) in o {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

struct V;

impl<'de> Visitor<'de> for V {
    type Value = OrderedJson;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<OrderedJson, E> {
        Ok(OrderedJson::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<OrderedJson, E> {
        Ok(OrderedJson::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<OrderedJson, D::Error> {
        OrderedJson::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<OrderedJson, E> {
        Ok(OrderedJson::Bool(b))
    }
    fn visit_i64<E: de::Error>(self, i: i64) -> Result<OrderedJson, E> {
        Ok(OrderedJson::Int(i))
    }
    fn visit_u64<E: de::Error>(self, u: u64) -> Result<OrderedJson, E> {
        Ok(OrderedJson::Uint(u))
    }
    fn visit_f64<E: de::Error>(self, f: f64) -> Result<OrderedJson, E> {
        Ok(OrderedJson::Float(f))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<OrderedJson, E> {
        Ok(OrderedJson::String(s.to_string()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<OrderedJson, A::Error> {
        let mut v = Vec::new();
        while let Some(x) = a.next_element()? {
            v.push(x);
        }
        Ok(OrderedJson::Array(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<OrderedJson, A::Error> {
        let mut v = Vec::new();
        while let Some((k, x)) = a.next_entry::<String, OrderedJson>()? {
            v.push((k, x));
        }
        Ok(OrderedJson::Object(v))
    }
}

impl<'de> Deserialize<'de> for OrderedJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<OrderedJson, D::Error> {
        d.deserialize_any(V)
    }
}

impl schemars::JsonSchema for OrderedJson {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "JsonValue".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::Schema::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_their_order_from_json_and_from_toml() {
        let text = r#"{"type":"object","properties":{"score":{"type":"integer","maximum":5},"reason":{"type":"string"}},"required":["score","reason"]}"#;
        let v: OrderedJson = serde_json::from_str(text).unwrap();
        assert_eq!(v.to_json(), text);
        let from_string = OrderedJson::String(text.into()).parsed().unwrap();
        assert_eq!(from_string.to_json(), text);
        let t: toml::Table = toml::from_str("[s]\nzeta = 1\nalpha = [true, 2.5]\n").unwrap();
        let v: OrderedJson = t["s"].clone().try_into().unwrap();
        assert_eq!(v.to_json(), r#"{"zeta":1,"alpha":[true,2.5]}"#);
        assert!(OrderedJson::String("not json".into()).parsed().is_none());
    }
}
