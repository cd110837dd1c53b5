//! Constraints the server enforces on every request, stated once for the
//! whole document rather than on each type:
//! - no string and no object key anywhere in a request may hold a NUL
//!   character (`http::extract` refuses `\u0000` in bodies and query
//!   strings: PostgreSQL's text and jsonb cannot store it), so every string
//!   schema without a pattern of its own gets `^[^\x00]*$`, and free-form
//!   objects hold [`JSON_VALUE`]s;
//! - every list's `limit` is 1 to [`MAX_PAGE`] and its `cursor` one that the
//!   list gave out, never empty.
//!
//! These work on the JSON form of the document: they touch every schema,
//! wherever utoipa put it.

use crate::api::MAX_PAGE;
use serde_json::{Map, Value, json};

/// A string without a NUL character.
pub const NO_NUL: &str = "^[^\\x00]*$";

/// The name of the schema of a free-form JSON value.
pub const JSON_VALUE: &str = "JsonValue";

pub fn apply(doc: &mut Value) {
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        schemas.insert(
            JSON_VALUE.to_owned(),
            json!({
                "description": "Any JSON value; its strings and object keys hold no NUL character.",
                "type": ["null", "boolean", "number", "string", "array", "object"],
                "pattern": NO_NUL,
                "items": { "$ref": format!("#/components/schemas/{JSON_VALUE}") },
                "propertyNames": { "pattern": NO_NUL },
                "additionalProperties": { "$ref": format!("#/components/schemas/{JSON_VALUE}") },
            }),
        );
    }
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for op in item.values_mut() {
                pagination(op);
            }
        }
    }
    for key in ["paths", "components"] {
        if let Some(part) = doc.get_mut(key) {
            walk(part);
        }
    }
}

/// `limit` and `cursor` of a list operation.
fn pagination(op: &mut Value) {
    let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
        return;
    };
    for param in params {
        if param["in"] != "query" {
            continue;
        }
        let name = param["name"].as_str().unwrap_or_default().to_owned();
        let Some(schema) = param.get_mut("schema").and_then(Value::as_object_mut) else {
            continue;
        };
        match name.as_str() {
            "limit" => {
                schema.insert("minimum".into(), json!(1));
                schema.insert("maximum".into(), json!(MAX_PAGE));
            }
            "cursor" => {
                schema.insert("minLength".into(), json!(1));
            }
            _ => {}
        }
    }
}

fn has_type(schema: &Map<String, Value>, name: &str) -> bool {
    match schema.get("type") {
        Some(Value::String(t)) => t == name,
        Some(Value::Array(types)) => types.iter().any(|t| t == name),
        _ => false,
    }
}

fn walk(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let is_schema_like = map.contains_key("type");
            if is_schema_like {
                if has_type(map, "string")
                    && !map.contains_key("pattern")
                    && !map.contains_key("enum")
                    && !map.contains_key("format")
                    && !map.contains_key("const")
                {
                    map.insert("pattern".into(), json!(NO_NUL));
                }
                let open = map
                    .get("additionalProperties")
                    .is_none_or(|a| *a == Value::Bool(true));
                if has_type(map, "object") && open {
                    map.insert(
                        "additionalProperties".into(),
                        json!({ "$ref": format!("#/components/schemas/{JSON_VALUE}") }),
                    );
                }
                if has_type(map, "object") && open {
                    let names = map.entry("propertyNames").or_insert_with(|| json!({}));
                    if let Some(names) = names.as_object_mut() {
                        names.entry("pattern").or_insert_with(|| json!(NO_NUL));
                    }
                }
            }
            for (key, child) in map.iter_mut() {
                // Examples are values, not schemas.
                if key != "example" && key != "examples" {
                    walk(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(walk),
        _ => {}
    }
}
