//! Sealing and opening the secret parts of credentials and settings.
//!
//! A credential's sealed field is stored as `{"v": <envelope>, "m": <mask>}`:
//! the envelope seals the JSON encoding of the value, bound to (tenant,
//! credential id, kind, field); the mask (at most the last 4 characters) is
//! what reads show, so listing never decrypts. In settings, a sensitive value
//! at any depth is replaced by `{"$sealed": <envelope>, "$mask": <mask>}`,
//! bound to (tenant, category, "settings", JSON pointer of the value).

use super::VaultError;
use serde_json::{Map, Value};
use tenantry_core::credentials::{is_sensitive_name, mask};
use tenantry_crypto::{Binding, DataKey};

pub const SEALED_MARK: &str = "$sealed";
pub const MASK_MARK: &str = "$mask";

fn display_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn seal_value(
    dek: &DataKey,
    binding: &Binding<'_>,
    value: &Value,
) -> Result<(String, String), VaultError> {
    let plaintext = serde_json::to_vec(value)
        .map_err(|_| VaultError::Crypto(tenantry_crypto::CryptoError::Malformed))?;
    let envelope = tenantry_crypto::seal(dek, binding, &plaintext)?;
    Ok((envelope, mask(&display_text(value))))
}

pub fn open_value(
    dek: &DataKey,
    binding: &Binding<'_>,
    envelope: &str,
) -> Result<Value, VaultError> {
    let plaintext = tenantry_crypto::open(dek, binding, envelope)?;
    serde_json::from_slice(&plaintext)
        .map_err(|_| VaultError::Crypto(tenantry_crypto::CryptoError::Malformed))
}

/// The envelope string stored for a sealed credential field.
pub fn envelope_of(stored: &Value) -> Option<&str> {
    stored.get("v").and_then(Value::as_str)
}

pub fn mask_of(stored: &Value) -> Value {
    stored
        .get("m")
        .cloned()
        .unwrap_or_else(|| Value::String("****".into()))
}

/// Which key sealed a stored credential field.
pub fn sealed_field(envelope: String, mask: String) -> Value {
    serde_json::json!({ "v": envelope, "m": mask })
}

/// Replaces every sensitive value (by key name, at any depth) with a sealed
/// marker. `pointer` is the JSON pointer of `value`.
pub fn seal_settings(
    dek: &DataKey,
    tenant: &str,
    category: &str,
    pointer: &str,
    value: &Value,
) -> Result<Value, VaultError> {
    Ok(match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, child) in map {
                let child_pointer =
                    format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"));
                let sealed = if is_sensitive_name(key) && !child.is_null() {
                    let binding = Binding {
                        tenant_id: tenant,
                        record_id: category,
                        kind: "settings",
                        field: &child_pointer,
                    };
                    let (envelope, mask) = seal_value(dek, &binding, child)?;
                    serde_json::json!({ SEALED_MARK: envelope, MASK_MARK: mask })
                } else {
                    seal_settings(dek, tenant, category, &child_pointer, child)?
                };
                out.insert(key.clone(), sealed);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    seal_settings(dek, tenant, category, &format!("{pointer}/{i}"), item)
                })
                .collect::<Result<_, _>>()?,
        ),
        other => other.clone(),
    })
}

fn sealed_marker(value: &Value) -> Option<(&str, &Value)> {
    let map = value.as_object()?;
    if map.len() == 2 {
        Some((map.get(SEALED_MARK)?.as_str()?, map.get(MASK_MARK)?))
    } else {
        None
    }
}

/// The settings with sealed values shown as their masks.
pub fn mask_settings(value: &Value) -> Value {
    if let Some((_, mask)) = sealed_marker(value) {
        return mask.clone();
    }
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), mask_settings(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(mask_settings).collect()),
        other => other.clone(),
    }
}

/// Every envelope in stored settings, with its JSON pointer.
pub fn settings_envelopes(value: &Value, pointer: &str, out: &mut Vec<(String, String)>) {
    if let Some((envelope, _)) = sealed_marker(value) {
        out.push((pointer.to_owned(), envelope.to_owned()));
        return;
    }
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                settings_envelopes(
                    v,
                    &format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                settings_envelopes(v, &format!("{pointer}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Opens every sealed value of stored settings with `open(pointer, envelope)`.
pub fn open_settings(
    value: &Value,
    pointer: &str,
    open: &mut dyn FnMut(&str, &str) -> Result<Value, VaultError>,
) -> Result<Value, VaultError> {
    if let Some((envelope, _)) = sealed_marker(value) {
        return open(pointer, envelope);
    }
    Ok(match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let child = format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.insert(k.clone(), open_settings(v, &child, open)?);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| open_settings(v, &format!("{pointer}/{i}"), open))
                .collect::<Result<_, _>>()?,
        ),
        other => other.clone(),
    })
}

/// Settings may not use the marker names themselves.
pub fn uses_markers(value: &Value) -> Option<String> {
    match value {
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            if k == SEALED_MARK || k == MASK_MARK {
                Some(k.clone())
            } else {
                uses_markers(v).map(|inner| format!("{k}.{inner}"))
            }
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| uses_markers(v).map(|inner| format!("{i}.{inner}"))),
        _ => None,
    }
}

/// How deeply settings may nest, counted on the document as stored (after
/// sealing, where each sealed value is an object of its own) and as sent:
/// the top-level object is depth 1. Far below the JSON parser's limit, so a
/// stored document can always be read back, revealed and re-encrypted.
pub const MAX_SETTINGS_DEPTH: usize = 32;

/// The dotted path of the first object or array nested deeper than `max`
/// (`value` itself at depth 1), if any.
pub fn deeper_than(value: &Value, max: usize) -> Option<String> {
    fn walk(value: &Value, depth: usize, max: usize, path: &str) -> Option<String> {
        let children: Vec<(String, &Value)> = match value {
            Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect(),
            _ => return None,
        };
        if depth > max {
            return Some(if path.is_empty() {
                "body".to_owned()
            } else {
                path.to_owned()
            });
        }
        children.into_iter().find_map(|(key, child)| {
            let child_path = if path.is_empty() {
                key
            } else {
                format!("{path}.{key}")
            };
            walk(child, depth + 1, max, &child_path)
        })
    }
    walk(value, 1, max, "")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn depth_is_counted_from_the_top_object() {
        assert_eq!(deeper_than(&json!({}), 1), None);
        assert_eq!(deeper_than(&json!({"a": {}}), 1), Some("a".into()));
        assert_eq!(
            deeper_than(&json!({"a": [1, {"b": 2}]}), 2),
            Some("a.1".into())
        );
        assert_eq!(deeper_than(&json!({"a": [1, {"b": 2}]}), 3), None);
        assert_eq!(deeper_than(&json!({"a": "x"}), 1), None);
    }
}
