use std::borrow::Cow;

/// An input value that does not satisfy its rules. Carries the offending
/// field (as the API names it) and a stable machine code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: Cow<'static, str>,
    pub code: &'static str,
    pub message: Cow<'static, str>,
}

impl ValidationError {
    pub fn new(
        field: impl Into<Cow<'static, str>>,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            field: field.into(),
            code,
            message: message.into(),
        }
    }

    /// The same error, reported under another field name (e.g. a nested path).
    pub fn at(mut self, field: impl Into<Cow<'static, str>>) -> Self {
        self.field = field.into();
        self
    }
}
