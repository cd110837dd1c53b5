//! What remote commands print: a human table by default, the server's JSON
//! with `--json` (for scripts: exactly what the API answered).

use serde_json::Value;
use tabled::builder::Builder;
use tabled::settings::Style;

/// How a command prints its result.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints a list (`{"data": [...]}` or a bare array) as a table with
    /// these columns (dotted paths reach into objects).
    pub fn list(&self, value: &Value, columns: &[&str]) {
        if self.json {
            println!("{}", pretty(value));
            return;
        }
        let empty = Vec::new();
        let items = value["data"]
            .as_array()
            .or_else(|| value.as_array())
            .unwrap_or(&empty);
        if items.is_empty() {
            println!("(none)");
        } else {
            let mut builder = Builder::default();
            builder.push_record(columns.iter().map(|c| c.to_ascii_uppercase()));
            for item in items {
                builder.push_record(columns.iter().map(|c| cell(lookup(item, c))));
            }
            println!("{}", builder.build().with(Style::sharp()));
        }
        if value["has_more"] == Value::Bool(true) {
            eprintln!("more: pass --all, or a larger --limit");
        }
    }

    /// Prints one object as a two-column table of its fields.
    pub fn one(&self, value: &Value) {
        if self.json {
            println!("{}", pretty(value));
            return;
        }
        match value.as_object() {
            Some(map) => {
                let mut builder = Builder::default();
                for (k, v) in map {
                    builder.push_record([k.clone(), cell(Some(v))]);
                }
                println!("{}", builder.build().with(Style::blank()));
            }
            None => println!("{}", cell(Some(value))),
        }
    }

    /// Says that `what` `id` is gone (`deleted`, `removed`, …): `{"id": …,
    /// "<verb>": true}` with `--json`.
    pub fn gone(&self, what: &str, id: &str, verb: &str) {
        self.done(
            &serde_json::json!({ "id": id, verb: true }),
            &format!("{what} {id} {verb}"),
        );
    }

    /// Prints a short human message, or the JSON value with `--json`.
    pub fn done(&self, value: &Value, message: &str) {
        if self.json {
            println!("{}", pretty(value));
        } else {
            println!("{message}");
        }
    }
}

pub fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, part| v.get(part))
}

/// One table cell: strings bare, null as `-`, lists comma-joined, objects
/// as compact JSON.
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) if items.iter().all(|i| !i.is_object()) => items
            .iter()
            .map(|i| cell(Some(i)))
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn cells() {
        assert_eq!(cell(None), "-");
        assert_eq!(cell(Some(&serde_json::json!(["a", "b"]))), "a,b");
        assert_eq!(cell(Some(&serde_json::json!({"a": 1}))), "{\"a\":1}");
        let v = serde_json::json!({"tenant": {"id": "acme"}});
        assert_eq!(cell(lookup(&v, "tenant.id")), "acme");
    }
}
