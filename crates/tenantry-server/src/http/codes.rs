//! The catalogue of stable problem codes: every `code` an error answer can
//! carry, in one place. Clients match on these strings; once released, a
//! code is never renamed or reused for another meaning.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    ApiKeyRequired,
    CredentialNotFound,
    DatabaseUnavailable,
    DecryptionFailed,
    DnsUnavailable,
    DomainNotFound,
    DomainTaken,
    DomainVerificationFailed,
    IdempotencyKeyInProgress,
    IdempotencyKeyReused,
    IdempotencyKeyUnavailable,
    InsufficientScope,
    InternalError,
    InvalidCredentials,
    KeyAlreadyRotated,
    KeyExpired,
    KeyNotFound,
    KeyOutlivesCaller,
    KeyRevoked,
    KeyringReadOnly,
    KeyringUnavailable,
    KeyringWriteFailed,
    MalformedJson,
    MeterExists,
    MethodNotAllowed,
    NotFound,
    OperatorRequired,
    PayloadTooLarge,
    QuotaExceeded,
    RateLimited,
    RequestBodyTimeout,
    RequestTimeout,
    RootKeyRequired,
    SettingsNotFound,
    SubdomainTaken,
    TenantDeleted,
    TenantExists,
    TenantMismatch,
    TenantNotFound,
    TenantSuspended,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
    ValidationFailed,
    WhatsappIdTaken,
    ConversationNotFound,
    WidgetNotFound,
    WidgetDisabled,
    OriginNotAllowed,
}

impl Code {
    pub const ALL: [Code; 49] = [
        Code::ApiKeyRequired,
        Code::CredentialNotFound,
        Code::DatabaseUnavailable,
        Code::DecryptionFailed,
        Code::DnsUnavailable,
        Code::DomainNotFound,
        Code::DomainTaken,
        Code::DomainVerificationFailed,
        Code::IdempotencyKeyInProgress,
        Code::IdempotencyKeyReused,
        Code::IdempotencyKeyUnavailable,
        Code::InsufficientScope,
        Code::InternalError,
        Code::InvalidCredentials,
        Code::KeyAlreadyRotated,
        Code::KeyExpired,
        Code::KeyNotFound,
        Code::KeyOutlivesCaller,
        Code::KeyRevoked,
        Code::KeyringReadOnly,
        Code::KeyringUnavailable,
        Code::KeyringWriteFailed,
        Code::MalformedJson,
        Code::MeterExists,
        Code::MethodNotAllowed,
        Code::NotFound,
        Code::OperatorRequired,
        Code::PayloadTooLarge,
        Code::QuotaExceeded,
        Code::RateLimited,
        Code::RequestBodyTimeout,
        Code::RequestTimeout,
        Code::RootKeyRequired,
        Code::SettingsNotFound,
        Code::SubdomainTaken,
        Code::TenantDeleted,
        Code::TenantExists,
        Code::TenantMismatch,
        Code::TenantNotFound,
        Code::TenantSuspended,
        Code::Unauthorized,
        Code::Unavailable,
        Code::UnsupportedMediaType,
        Code::ValidationFailed,
        Code::WhatsappIdTaken,
        Code::ConversationNotFound,
        Code::WidgetNotFound,
        Code::WidgetDisabled,
        Code::OriginNotAllowed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::ApiKeyRequired => "api_key_required",
            Code::CredentialNotFound => "credential_not_found",
            Code::DatabaseUnavailable => "database_unavailable",
            Code::DecryptionFailed => "decryption_failed",
            Code::DnsUnavailable => "dns_unavailable",
            Code::DomainNotFound => "domain_not_found",
            Code::DomainTaken => "domain_taken",
            Code::DomainVerificationFailed => "domain_verification_failed",
            Code::IdempotencyKeyInProgress => "idempotency_key_in_progress",
            Code::IdempotencyKeyReused => "idempotency_key_reused",
            Code::IdempotencyKeyUnavailable => "idempotency_key_unavailable",
            Code::InsufficientScope => "insufficient_scope",
            Code::InternalError => "internal_error",
            Code::InvalidCredentials => "invalid_credentials",
            Code::KeyAlreadyRotated => "key_already_rotated",
            Code::KeyExpired => "key_expired",
            Code::KeyNotFound => "key_not_found",
            Code::KeyOutlivesCaller => "key_outlives_caller",
            Code::KeyRevoked => "key_revoked",
            Code::KeyringReadOnly => "keyring_read_only",
            Code::KeyringUnavailable => "keyring_unavailable",
            Code::KeyringWriteFailed => "keyring_write_failed",
            Code::MalformedJson => "malformed_json",
            Code::MeterExists => "meter_exists",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::NotFound => "not_found",
            Code::OperatorRequired => "operator_required",
            Code::PayloadTooLarge => "payload_too_large",
            Code::QuotaExceeded => "quota_exceeded",
            Code::RateLimited => "rate_limited",
            Code::RequestBodyTimeout => "request_body_timeout",
            Code::RequestTimeout => "request_timeout",
            Code::RootKeyRequired => "root_key_required",
            Code::SettingsNotFound => "settings_not_found",
            Code::SubdomainTaken => "subdomain_taken",
            Code::TenantDeleted => "tenant_deleted",
            Code::TenantExists => "tenant_exists",
            Code::TenantMismatch => "tenant_mismatch",
            Code::TenantNotFound => "tenant_not_found",
            Code::TenantSuspended => "tenant_suspended",
            Code::Unauthorized => "unauthorized",
            Code::Unavailable => "unavailable",
            Code::UnsupportedMediaType => "unsupported_media_type",
            Code::ValidationFailed => "validation_failed",
            Code::WhatsappIdTaken => "whatsapp_id_taken",
            Code::ConversationNotFound => "conversation_not_found",
            Code::WidgetNotFound => "widget_not_found",
            Code::WidgetDisabled => "widget_disabled",
            Code::OriginNotAllowed => "origin_not_allowed",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Code;

    #[test]
    fn codes_are_distinct_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            let s = code.as_str();
            assert!(
                s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{s}"
            );
            assert!(seen.insert(s), "{s} twice");
        }
    }
}
