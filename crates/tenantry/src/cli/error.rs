//! How the remote CLI fails: one error type, one exit code per kind, and the
//! `error: <code>: <detail> (field …)` line a problem response becomes.

use serde_json::Value;

/// Exit codes of the remote commands (documented in `--help` and README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 1: anything else (a 5xx, an unreadable answer, a local I/O error).
    Generic = 1,
    /// 2: the command line or the profile/configuration is wrong.
    Usage = 2,
    /// 3: 404, the resource does not exist (or belongs to another tenant).
    NotFound = 3,
    /// 4: 401/403, no valid key or not allowed.
    Unauthorized = 4,
    /// 5: 409, conflict (already exists, in progress, wrong state).
    Conflict = 5,
    /// 6: 400/413/415/422, the server refused the input.
    Validation = 6,
    /// 7: 429/503 or the server cannot be reached: try again later.
    Unavailable = 7,
}

pub const EXIT_CODES_HELP: &str = "\
Exit codes of remote commands:
  0  success
  1  other error (server error, unreadable answer, local I/O)
  2  usage: bad arguments, no server configured, unknown profile
  3  not found (404)
  4  unauthorised or forbidden (401, 403)
  5  conflict (409)
  6  invalid input (400, 413, 415, 422)
  7  unavailable or rate limited (429, 503, server unreachable)";

#[derive(Debug)]
pub struct CliError {
    pub exit: Exit,
    pub message: String,
}

impl CliError {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        CliError {
            exit,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Exit::Usage, message)
    }

    pub fn generic(message: impl Into<String>) -> Self {
        Self::new(Exit::Generic, message)
    }

    /// The error an HTTP answer with status `status` and body `body` means.
    pub fn from_response(status: u16, body: &str) -> Self {
        let exit = match status {
            404 => Exit::NotFound,
            401 | 403 => Exit::Unauthorized,
            409 => Exit::Conflict,
            400 | 413 | 415 | 422 => Exit::Validation,
            429 | 503 => Exit::Unavailable,
            _ => Exit::Generic,
        };
        let problem: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let code = problem["code"].as_str().unwrap_or("http_error");
        let detail = problem["detail"]
            .as_str()
            .or_else(|| problem["title"].as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| format!("the server answered {status}"));
        let mut message = format!("{code}: {detail}");
        if let Some(field) = problem["field"].as_str() {
            message.push_str(&format!(" (field {field})"));
        }
        CliError::new(exit, message)
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

pub type CliResult<T = ()> = Result<T, CliError>;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn problems_become_one_line_and_an_exit_code() {
        let e = CliError::from_response(
            422,
            r#"{"code":"validation_failed","detail":"must be a slug","field":"id"}"#,
        );
        assert_eq!(e.exit, Exit::Validation);
        assert_eq!(e.message, "validation_failed: must be a slug (field id)");
        assert_eq!(CliError::from_response(404, "").exit, Exit::NotFound);
        assert_eq!(CliError::from_response(401, "").exit, Exit::Unauthorized);
        assert_eq!(CliError::from_response(429, "").exit, Exit::Unavailable);
        assert_eq!(CliError::from_response(500, "oops").exit, Exit::Generic);
    }
}
