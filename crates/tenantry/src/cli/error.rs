//! How the remote CLI fails: one error type, one exit code per kind, and the
//! `error: <code>: <detail> (field …)` line a problem response becomes.

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

    /// The exit code an HTTP error status means.
    fn exit_for(status: u16) -> Exit {
        match status {
            404 => Exit::NotFound,
            401 | 403 => Exit::Unauthorized,
            409 => Exit::Conflict,
            400 | 413 | 415 | 422 => Exit::Validation,
            429 | 503 => Exit::Unavailable,
            _ => Exit::Generic,
        }
    }
}

/// A failed client call: a problem answer becomes `<code>: <detail> (field
/// …)` and the exit code of its status; no answer at all is "try again
/// later". None of these messages carries the key (the client keeps it out
/// of its errors, and the URL too).
impl From<tenantry_client::Error> for CliError {
    fn from(err: tenantry_client::Error) -> Self {
        use tenantry_client::Error as E;
        match err {
            E::Api(problem) => {
                let detail = if !problem.detail.is_empty() {
                    problem.detail.clone()
                } else if !problem.title.is_empty() {
                    problem.title.clone()
                } else {
                    format!("the server answered {}", problem.status)
                };
                let mut message = format!("{}: {detail}", problem.code);
                if let Some(field) = &problem.field {
                    message.push_str(&format!(" (field {field})"));
                }
                CliError::new(CliError::exit_for(problem.status), message)
            }
            E::Transport(e) => {
                CliError::new(Exit::Unavailable, format!("cannot reach the server: {e}"))
            }
            E::BaseUrl(_) | E::InvalidHeader(_) => CliError::usage(err.to_string()),
            E::Decode { .. } | E::Encode(_) => CliError::generic(err.to_string()),
        }
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

    fn problem(status: u16, body: &str) -> CliError {
        let p: tenantry_client::api::Problem = serde_json::from_str(body).unwrap();
        CliError::from(tenantry_client::Error::Api(Box::new(
            tenantry_client::ApiError {
                status,
                code: p.code,
                title: p.title,
                detail: p.detail,
                field: p.field,
                errors: p.errors,
                retry_after: None,
                request_id: None,
            },
        )))
    }

    #[test]
    fn problems_become_one_line_and_an_exit_code() {
        let e = problem(
            422,
            r#"{"type":"about:blank","title":"Invalid","status":422,"code":"validation_failed","detail":"must be a slug","field":"id"}"#,
        );
        assert_eq!(e.exit, Exit::Validation);
        assert_eq!(e.message, "validation_failed: must be a slug (field id)");
        assert_eq!(CliError::exit_for(404), Exit::NotFound);
        assert_eq!(CliError::exit_for(401), Exit::Unauthorized);
        assert_eq!(CliError::exit_for(403), Exit::Unauthorized);
        assert_eq!(CliError::exit_for(409), Exit::Conflict);
        assert_eq!(CliError::exit_for(429), Exit::Unavailable);
        assert_eq!(CliError::exit_for(503), Exit::Unavailable);
        assert_eq!(CliError::exit_for(500), Exit::Generic);
    }
}
