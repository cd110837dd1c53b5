//! Secrets are types: their `Debug` and `Display` never show the value.

use std::fmt;

/// A secret string (an API key, a root key, a credential). The value is only
/// reachable through [`SecretString::expose`], which makes every use greppable.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(\"[REDACTED]\")")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl Drop for SecretString {
    fn drop(&mut self) {
        // Overwrite the buffer before it goes back to the allocator.
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact() {
        let secret = SecretString::new("tnt_super_secret_value_1234567890");
        assert!(!format!("{secret:?}").contains("super_secret"));
        assert!(!format!("{secret}").contains("super_secret"));
        assert!(!format!("{:?}", Some(&secret)).contains("super_secret"));
        assert_eq!(secret.expose(), "tnt_super_secret_value_1234567890");
    }
}
