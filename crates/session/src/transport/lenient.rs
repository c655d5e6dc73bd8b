//! Tolerant readers for loosely specified gateway JSON: several carriers' field types are only
//! known from examples (numbers vs strings, maps vs lists), so decoders accept both.

use serde_json::Value;
use std::collections::HashMap;

/// A JSON value as a parameter string: strings as-is, anything else as compact JSON.
pub(super) fn stringify(v: Value) -> String {
    match v {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// A sample rate given as a number or a numeric string.
pub(super) fn rate(v: &Value) -> Option<u32> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Custom parameters given as an object (`{"k":"v"}`) or a list of `{"name","value"}` pairs.
pub(super) fn params(v: Value, out: &mut HashMap<String, String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                out.insert(k, stringify(v));
            }
        }
        Value::Array(items) => {
            for item in items {
                if let Value::Object(mut pair) = item {
                    if let (Some(Value::String(k)), Some(v)) = (pair.remove("name"), pair.remove("value")) {
                        out.insert(k, stringify(v));
                    }
                }
            }
        }
        _ => {}
    }
}

/// At most `max` characters of untrusted text, for error messages and logs.
pub(super) fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_loose_shapes() {
        assert_eq!(rate(&json!(16000)), Some(16000));
        assert_eq!(rate(&json!("8000")), Some(8000));
        assert_eq!(rate(&json!(-1)), None);
        assert_eq!(rate(&json!(null)), None);
        let mut p = HashMap::new();
        params(json!({"agent": "a1", "n": 3}), &mut p);
        params(json!([{"name": "x", "value": "y"}, {"bad": 1}, 7]), &mut p);
        params(json!("junk"), &mut p);
        assert_eq!(p.get("agent").map(String::as_str), Some("a1"));
        assert_eq!(p.get("n").map(String::as_str), Some("3"));
        assert_eq!(p.get("x").map(String::as_str), Some("y"));
        assert_eq!(p.len(), 3);
        assert_eq!(clip("héllo", 2), "hé");
    }
}
