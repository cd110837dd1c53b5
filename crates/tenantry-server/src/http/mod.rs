//! Where a request enters: the router, the middleware every request passes
//! through, authentication, extractors and the mapping of errors to HTTP.

pub mod auth;
pub mod body;
pub mod codes;
pub mod extract;
pub mod idempotency;
pub mod problem;
pub mod request_path;
pub mod router;
pub mod serve;
