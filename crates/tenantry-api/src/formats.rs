//! The value formats the server's validators enforce, as named schemas, so
//! the document says exactly what is accepted: a field declared
//! `#[schema(value_type = formats::Slug)]` refers to `#/components/schemas/Slug`.
//! Each is built from the constants of the validator in `tenantry-core`
//! (lengths, reserved names), and the patterns are written so that a string
//! matches exactly when the validator accepts it (see the tests).
//!
//! Patterns stay within what both ECMA-262 and Python's `re` understand (no
//! `\p{…}`, no look-around), so schema-driven tools generate from them.

use serde_json::json;
use std::borrow::Cow;
use tenantry_core::ids::{RESERVED_NAMES, SLUG_MAX, SLUG_MIN};
use tenantry_core::values::{Metadata as CoreMetadata, NAME_MAX, SIMPLE_NAME_MAX};
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::{ObjectBuilder, RefOr, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

/// Characters that are neither control characters (Rust's
/// `char::is_control`: U+0000–U+001F, U+007F–U+009F) nor white space
/// (Rust's `char::is_whitespace`, what `str::trim` removes).
const VISIBLE: &str = r"[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";
/// Any character but a control character.
const NOT_CONTROL: &str = r"[^\x00-\x1f\x7f-\x9f]";

/// The pattern of a display name: no control character, at least one
/// visible one.
pub fn name_pattern() -> String {
    format!("^{NOT_CONTROL}*{VISIBLE}{NOT_CONTROL}*$")
}

/// The pattern of a slug: `[a-z0-9]` with inner `-`, of the slug length.
pub fn slug_pattern() -> String {
    format!(
        "^[a-z0-9][a-z0-9-]{{{},{}}}[a-z0-9]$",
        SLUG_MIN - 2,
        SLUG_MAX - 2
    )
}

/// `not: {enum: [...]}`: JSON Schema's way to refuse given values, which
/// utoipa's builders have no field for (its extensions are written as they are).
fn not_one_of(values: &[&str]) -> Extensions {
    Extensions::from_iter([("not", json!({ "enum": values }))])
}

macro_rules! named_schema {
    ($(#[$doc:meta])* $name:ident, $build:expr) => {
        $(#[$doc])*
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                let build: fn() -> ObjectBuilder = $build;
                RefOr::T(Schema::Object(build().build()))
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

named_schema!(
    /// A tenant id or subdomain: 3–63 characters of a-z, 0-9 and inner '-',
    /// not a reserved name.
    Slug,
    || ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(
            "3 to 63 characters of a-z, 0-9 and '-', neither first nor last; not a reserved name",
        ))
        .min_length(Some(SLUG_MIN))
        .max_length(Some(SLUG_MAX))
        .pattern(Some(slug_pattern()))
        .extensions(Some(not_one_of(RESERVED_NAMES)))
);

named_schema!(
    /// A display name: 1–200 characters, no control characters, not blank.
    DisplayName,
    || ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(
            "1 to 200 characters, no control characters, not only white space (trimmed)",
        ))
        .min_length(Some(1))
        .max_length(Some(NAME_MAX))
        .pattern(Some(name_pattern()))
);

named_schema!(
    /// A plan name such as `starter`.
    PlanName,
    || ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("1 to 63 characters of a-z, 0-9, '-' and '_'"))
        .min_length(Some(1))
        .max_length(Some(SIMPLE_NAME_MAX))
        .pattern(Some("^[a-z0-9_-]+$"))
);

named_schema!(
    /// A region name such as `eu-west-1`.
    RegionName,
    || ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("1 to 63 characters of a-z, 0-9 and '-'"))
        .min_length(Some(1))
        .max_length(Some(SIMPLE_NAME_MAX))
        .pattern(Some("^[a-z0-9-]+$"))
);

named_schema!(
    /// Free-form metadata: an object of at most 64 keys of 1–64 characters,
    /// at most 16 KiB serialized.
    Metadata,
    || ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "a JSON object of at most 64 keys, each of 1 to 64 characters, at most 16 KiB serialized",
        ))
        .max_properties(Some(CoreMetadata::MAX_KEYS))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(CoreMetadata::MAX_KEY_CHARS)),
        ))
);

/// One DNS label: 1 to 63 letters, digits and inner '-'.
const LABEL: &str = "[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?";
/// A top-level label, which starts with a letter.
const TOP_LABEL: &str = "[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?";

/// The pattern of a hostname of at least two labels, with one optional
/// trailing dot.
pub fn hostname_pattern() -> String {
    format!("^({LABEL}\\.)+{TOP_LABEL}\\.?$")
}

named_schema!(
    /// A DNS hostname such as `support.acme.com` (case-insensitive).
    Hostname,
    || ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(
            "a hostname of at least two labels (letters, digits, inner '-'), the last starting with a letter; \
             at most 253 characters without its optional trailing dot. Reserved names (localhost, local, internal, \
             localdomain, arpa, invalid, onion, alt) and names under the base domain cannot be claimed.",
        ))
        .max_length(Some(254))
        .pattern(Some(hostname_pattern()))
);

named_schema!(
    /// An allowed origin of a widget: `scheme://host[:port]`, or
    /// `scheme://*.domain[:port]` for the domain's subdomains.
    Origin,
    || ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(
            "http or https, a lower-case host (or *. and a domain of two labels or more) and an optional port 1-65535; no path",
        ))
        .pattern(Some(r"^https?://(\*\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+|[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*)(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?$"))
);
