//! Third-party credentials a tenant brings (WhatsApp/Meta, Genesys Cloud,
//! SMTP, OAuth clients, anything else): their kinds, the fields each kind
//! takes, which fields are sealed (encrypted), and how sealed values are
//! masked when shown.

use crate::error::ValidationError;
use serde_json::{Map, Value};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    Whatsapp,
    Genesys,
    Smtp,
    OauthClient,
    Generic,
}

impl CredentialKind {
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        Ok(match value {
            "whatsapp" => Self::Whatsapp,
            "genesys" => Self::Genesys,
            "smtp" => Self::Smtp,
            "oauth_client" => Self::OauthClient,
            "generic" => Self::Generic,
            _ => {
                return Err(ValidationError::new(
                    "kind",
                    "unknown_kind",
                    "must be one of whatsapp, genesys, smtp, oauth_client, generic",
                ));
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Whatsapp => "whatsapp",
            Self::Genesys => "genesys",
            Self::Smtp => "smtp",
            Self::OauthClient => "oauth_client",
            Self::Generic => "generic",
        }
    }

    /// The fields of a fixed kind: (name, required, sealed, check). `None`
    /// for `generic`, which takes any fields.
    fn fields(self) -> Option<&'static [FieldSpec]> {
        Some(match self {
            Self::Whatsapp => &[
                ("business_account_id", true, false, Check::Digits),
                ("phone_number_id", true, false, Check::Digits),
                ("display_name", false, false, Check::Text),
                ("access_token", true, true, Check::Secret),
                ("app_secret", true, true, Check::Secret),
                ("verify_token", true, true, Check::Secret),
            ],
            Self::Genesys => &[
                ("organization_id", false, false, Check::Identifier),
                ("region", true, false, Check::GenesysRegion),
                ("client_id", true, true, Check::Secret),
                ("client_secret", true, true, Check::Secret),
            ],
            Self::Smtp => &[
                ("host", true, false, Check::Host),
                ("port", true, false, Check::Port),
                ("username", true, false, Check::Text),
                ("password", true, true, Check::Secret),
                ("from", false, false, Check::Email),
            ],
            Self::OauthClient => &[
                ("client_id", true, false, Check::Text),
                ("client_secret", true, true, Check::Secret),
                ("token_url", true, false, Check::HttpsUrl),
                ("scopes", false, false, Check::Scopes),
            ],
            Self::Generic => return None,
        })
    }

    /// Whether `field` of this kind is sealed.
    pub fn is_sealed(self, field: &str) -> bool {
        match self.fields() {
            Some(fields) => fields
                .iter()
                .any(|(name, _, sealed, _)| *name == field && *sealed),
            None => is_sensitive_name(field),
        }
    }
}

type FieldSpec = (&'static str, bool, bool, Check);

#[derive(Debug, Clone, Copy)]
enum Check {
    Digits,
    Text,
    Secret,
    Identifier,
    GenesysRegion,
    Host,
    Port,
    Email,
    HttpsUrl,
    Scopes,
}

/// Genesys Cloud regions and their API domains.
pub const GENESYS_REGIONS: &[(&str, &str)] = &[
    ("us_east_1", "mypurecloud.com"),
    ("eu_west_1", "mypurecloud.ie"),
    ("ap_southeast_2", "mypurecloud.com.au"),
    ("ap_northeast_1", "mypurecloud.jp"),
    ("eu_central_1", "mypurecloud.de"),
    ("us_west_2", "usw2.pure.cloud"),
    ("ca_central_1", "cac1.pure.cloud"),
    ("ap_northeast_2", "apne2.pure.cloud"),
    ("eu_west_2", "euw2.pure.cloud"),
    ("ap_south_1", "aps1.pure.cloud"),
    ("us_east_2", "use2.us-gov-pure.cloud"),
    ("me_central_1", "mec1.pure.cloud"),
    ("ap_northeast_3", "apne3.pure.cloud"),
    ("sa_east_1", "sae1.pure.cloud"),
    ("eu_central_2", "euc2.pure.cloud"),
];

/// Names whose values are secrets: case-insensitively and ignoring `_` and
/// `-`, the name contains password, secret, token, key (which covers apikey
/// and privatekey), clientsecret or appsecret.
pub fn is_sensitive_name(name: &str) -> bool {
    let normalized: String = name
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    [
        "password",
        "secret",
        "token",
        "key",
        "apikey",
        "clientsecret",
        "appsecret",
        "privatekey",
    ]
    .iter()
    .any(|word| normalized.contains(word))
}

/// How a sealed value is shown: its last 4 characters at most, and nothing
/// at all of a value shorter than 12 characters.
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() < 12 {
        "****".to_owned()
    } else {
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("****{tail}")
    }
}

const MAX_VALUE_LEN: usize = 8192;
const MAX_FIELDS: usize = 64;

fn invalid(field: &str, code: &'static str, message: &'static str) -> ValidationError {
    ValidationError::new(format!("data.{field}"), code, message)
}

fn check_value(field: &str, check: Check, value: &Value) -> Result<(), ValidationError> {
    let text = || -> Result<&str, ValidationError> {
        match value {
            Value::String(s) if s.trim().is_empty() => {
                Err(invalid(field, "required", "must not be empty"))
            }
            Value::String(s) if s.len() > MAX_VALUE_LEN => {
                Err(invalid(field, "too_long", "must be at most 8192 bytes"))
            }
            Value::String(s) if s.chars().any(|c| c.is_control() && c != '\n') => Err(invalid(
                field,
                "invalid_characters",
                "must not contain control characters",
            )),
            Value::String(s) => Ok(s.as_str()),
            _ => Err(invalid(field, "invalid_type", "must be a string")),
        }
    };
    match check {
        Check::Text | Check::Secret => text().map(|_| ()),
        Check::Digits => {
            let s = text()?;
            if s.len() <= 32 && s.bytes().all(|b| b.is_ascii_digit()) {
                Ok(())
            } else {
                Err(invalid(
                    field,
                    "invalid_format",
                    "must be a numeric id of at most 32 digits",
                ))
            }
        }
        Check::Identifier => {
            let s = text()?;
            if s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                Ok(())
            } else {
                Err(invalid(
                    field,
                    "invalid_format",
                    "must be an id of letters, digits, '-' and '_'",
                ))
            }
        }
        Check::GenesysRegion => {
            let s = text()?;
            if GENESYS_REGIONS.iter().any(|(region, _)| *region == s) {
                Ok(())
            } else {
                Err(invalid(
                    field,
                    "invalid_value",
                    "must be a Genesys Cloud region such as us_east_1 or eu_west_1",
                ))
            }
        }
        Check::Host => {
            let s = text()?;
            if s.parse::<std::net::IpAddr>().is_ok()
                || crate::values::Hostname::parse("host", s).is_ok()
                || s == "localhost"
            {
                Ok(())
            } else {
                Err(invalid(
                    field,
                    "invalid_hostname",
                    "must be a hostname or an IP address",
                ))
            }
        }
        Check::Port => match value.as_u64() {
            Some(p) if (1..=65535).contains(&p) => Ok(()),
            _ => Err(invalid(
                field,
                "invalid_port",
                "must be a whole number from 1 to 65535",
            )),
        },
        Check::Email => {
            let s = text()?;
            match s.rsplit_once('@') {
                Some((local, domain))
                    if !local.is_empty()
                        && domain.contains('.')
                        && !s.contains(char::is_whitespace) =>
                {
                    Ok(())
                }
                _ => Err(invalid(field, "invalid_email", "must be an email address")),
            }
        }
        Check::HttpsUrl => {
            let s = text()?;
            let host = s
                .strip_prefix("https://")
                .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""));
            match host {
                Some(h) if !h.is_empty() && !h.contains(char::is_whitespace) => Ok(()),
                _ => Err(invalid(field, "invalid_url", "must be an https:// URL")),
            }
        }
        Check::Scopes => match value {
            Value::String(s) if s.len() <= MAX_VALUE_LEN => Ok(()),
            Value::Array(items)
                if items
                    .iter()
                    .all(|i| i.as_str().is_some_and(|s| !s.is_empty() && s.len() <= 256)) =>
            {
                Ok(())
            }
            _ => Err(invalid(
                field,
                "invalid_type",
                "must be a string or an array of strings",
            )),
        },
    }
}

/// Validates a credential's fields for its kind. With `existing` (the names
/// of fields already stored), a partial update: given fields are checked and
/// required fields may come from what is stored. A field given as `null` in
/// an update is removed (refused for required fields).
pub fn validate(
    kind: CredentialKind,
    data: &Map<String, Value>,
    existing: Option<&[String]>,
) -> Result<(), Vec<ValidationError>> {
    let mut errors = Vec::new();
    match kind.fields() {
        Some(fields) => {
            for (name, value) in data {
                match fields.iter().find(|(n, _, _, _)| n == name) {
                    None => errors.push(ValidationError::new(
                        format!("data.{name}"),
                        "unknown_field",
                        format!("is not a field of {} credentials", kind.as_str()),
                    )),
                    Some((_, required, _, _)) if value.is_null() => {
                        if *required {
                            errors.push(invalid(name, "required", "is required"));
                        }
                    }
                    Some((_, _, _, check)) => {
                        if let Err(e) = check_value(name, *check, value) {
                            errors.push(e);
                        }
                    }
                }
            }
            for (name, required, _, _) in fields {
                let given = data.get(*name).is_some_and(|v| !v.is_null());
                let stored = existing.is_some_and(|names| names.iter().any(|n| n == name))
                    && !data.contains_key(*name);
                if *required && !given && !stored {
                    errors.push(invalid(name, "required", "is required"));
                }
            }
        }
        None => {
            if data.len() > MAX_FIELDS {
                errors.push(ValidationError::new(
                    "data",
                    "too_many_fields",
                    "may have at most 64 fields",
                ));
            }
            for (name, value) in data {
                if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
                    errors.push(ValidationError::new(
                        format!("data.{name}"),
                        "invalid_name",
                        "field names must be 1 to 64 characters",
                    ));
                } else if serde_json::to_vec(value)
                    .map(|v| v.len())
                    .unwrap_or(usize::MAX)
                    > MAX_VALUE_LEN
                {
                    errors.push(invalid(name, "too_long", "must be at most 8192 bytes"));
                }
            }
            if existing.is_none() && data.is_empty() {
                errors.push(ValidationError::new(
                    "data",
                    "required",
                    "must have at least one field",
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn sensitive_names() {
        for name in [
            "password",
            "Client_Secret",
            "api-key",
            "apiKey",
            "appSecret",
            "PRIVATE_KEY",
            "token",
            "x_token_y",
            "keyId",
        ] {
            assert!(is_sensitive_name(name), "{name}");
        }
        for name in ["host", "port", "username", "display_name", "region", "tok"] {
            assert!(!is_sensitive_name(name), "{name}");
        }
    }

    #[test]
    fn masking() {
        assert_eq!(mask("short"), "****");
        assert_eq!(mask("elevenchars"), "****");
        assert_eq!(mask("twelve-chars"), "****hars");
        assert_eq!(mask("EAAG-very-long-token-9f3a"), "****9f3a");
    }

    #[test]
    fn whatsapp() {
        let ok = obj(
            json!({"business_account_id": "123", "phone_number_id": "456", "access_token": "EAAG...", "app_secret": "s", "verify_token": "v"}),
        );
        assert!(validate(CredentialKind::Whatsapp, &ok, None).is_ok());
        let missing = obj(json!({"business_account_id": "123", "phone_number_id": "456"}));
        let errors = validate(CredentialKind::Whatsapp, &missing, None).expect_err("missing");
        assert!(errors.iter().any(|e| e.field == "data.access_token"));
        let bad = obj(
            json!({"business_account_id": "12a", "phone_number_id": "456", "access_token": "x", "app_secret": "s", "verify_token": "v", "extra": 1}),
        );
        let errors = validate(CredentialKind::Whatsapp, &bad, None).expect_err("bad");
        assert!(errors.iter().any(|e| e.field == "data.business_account_id"));
        assert!(errors.iter().any(|e| e.field == "data.extra"));
        assert!(CredentialKind::Whatsapp.is_sealed("access_token"));
        assert!(!CredentialKind::Whatsapp.is_sealed("phone_number_id"));
        // Genesys client ids are sealed although their name is not sensitive.
        assert!(CredentialKind::Genesys.is_sealed("client_id"));
        assert!(CredentialKind::Generic.is_sealed("apiKey"));
    }
}
