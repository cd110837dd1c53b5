//! The middleware of Tenantry's own every request, as one `tower` service
//! (see [`super::router`] for where it sits among the layers).
//!
//! It used to be four `axum::middleware::from_fn` closures, each applied by
//! its own `Router::layer`. Each of those boxed every route once more and
//! cloned the whole stack below it on every request; together they cost
//! Tenantry's cheapest request several times its handler (bench/RESULTS.md,
//! issue 16). Here the work before the handler is done when the request is
//! handed in (`call`), the handler's future is created at once, without
//! cloning the stack, and one boxed future does the work after it.
//!
//! In order, for each request (the same order as the old layers):
//! 1. metrics: the route, method, status and latency of every answer;
//! 2. the request context (audit `request` of every change), the request
//!    timeout (reads are cut off at it, changes run to completion), and
//!    a refused request recorded in the tenant's audit chain;
//! 3. the body limit: a declared oversized body is refused at once, and the
//!    whole body must arrive within the body timeout;
//! 4. the rate limit slot: the API rate limiter's decision becomes
//!    `RateLimit-*` headers.

use super::body;
use super::extract::BodyLimit;
use super::problem::ApiError;
use crate::app::AppState;
use crate::change::RequestContext;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use http_body::Body as _;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tower::{Layer, Service};
use tower_http::request_id::{MakeRequestId, RequestId};

/// See the module documentation.
#[derive(Clone)]
pub struct RequestPathLayer {
    state: AppState,
}

impl RequestPathLayer {
    pub fn new(state: AppState) -> RequestPathLayer {
        RequestPathLayer { state }
    }
}

impl<S> Layer<S> for RequestPathLayer {
    type Service = RequestPath<S>;

    fn layer(&self, inner: S) -> RequestPath<S> {
        RequestPath {
            state: self.state.clone(),
            inner,
        }
    }
}

#[derive(Clone)]
pub struct RequestPath<S> {
    state: AppState,
    inner: S,
}

impl<S> Service<Request> for RequestPath<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let state = self.state.clone();
        let config = &state.config;
        let (body_limit, body_timeout) = (config.max_body_bytes, config.body_timeout);
        let request_timeout = config.request_timeout;
        // 1. Metrics.
        let started = Instant::now();
        let method = req.method().clone();
        let route = req.extensions().get::<MatchedPath>().cloned();
        // 2. Every change the handler makes is recorded with this request.
        let (info, mut req) = request_info(&state, req);
        let context = Arc::new(RequestContext::new(info));
        // 3. Refuse a declared oversized body at once, without reading it.
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let handler = if declared.is_some_and(|len| len > body_limit as u64) {
            None
        } else {
            req.extensions_mut().insert(BodyLimit(body_limit));
            // The whole body must arrive within the body timeout, counted
            // from now (not per chunk: a client sending a byte a second
            // would pass that). It is still read only by the handler's
            // extractor, after authentication. A request that has no body
            // has nothing to wait for.
            if !req.body().is_end_stream() {
                req = body::with_deadline(req, body_timeout);
            }
            // 4. The API's own rate limiter (in the Caller extractor) leaves
            // its decision here.
            let slot = super::auth::RateLimitSlot::default();
            req.extensions_mut().insert(slot.clone());
            let handler =
                crate::change::REQUEST.sync_scope(context.clone(), || self.inner.call(req));
            Some((handler, slot))
        };
        Box::pin(async move {
            let handler = async move {
                let Some((handler, slot)) = handler else {
                    return ApiError::PayloadTooLarge { limit: body_limit }.into_response();
                };
                let mut response = match handler.await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                if let Some(decision) = slot.take() {
                    super::problem::add_rate_limit_headers(response.headers_mut(), &decision);
                }
                response
            };
            let handler = crate::change::REQUEST.scope(context.clone(), handler);
            // Changes run to completion (see `run_to_completion`). Reads
            // change nothing that a cancellation could leave half done:
            // they skip the task (a spawn per request roughly doubled the
            // cost of the cheapest requests).
            let response = if method.is_safe() {
                match tokio::time::timeout(request_timeout, handler).await {
                    Ok(response) => response,
                    Err(_) => {
                        tracing::warn!("request timed out");
                        ApiError::RequestTimeout.into_response()
                    }
                }
            } else {
                run_to_completion(handler, request_timeout).await
            };
            let route = route.as_ref().map(MatchedPath::as_str);
            crate::change::record_refusal(&state, &context, response.status(), &method, route)
                .await;
            state.metrics.request(
                route.unwrap_or(crate::metrics::UNMATCHED),
                &method,
                response.status().as_u16(),
                started.elapsed(),
            );
            if let Some(code) = response.extensions().get::<super::problem::ProblemCode>() {
                state.metrics.problem(code.0);
            }
            Ok(response)
        })
    }
}

/// Runs a handler that may change something in a task of its own, never
/// cancelled half-way: a change that commits still clears this process's
/// caches after its commit. Past the timeout the caller gets 503 and the
/// handler's eventual answer is dropped.
async fn run_to_completion(
    handler: impl std::future::Future<Output = Response> + Send + 'static,
    timeout: Duration,
) -> Response {
    use tracing::Instrument;
    let mut handler = tokio::spawn(handler.in_current_span());
    match tokio::time::timeout(timeout, &mut handler).await {
        Ok(Ok(response)) => response,
        Ok(Err(_)) => {
            tracing::error!("request handler panicked");
            ApiError::Internal.into_response()
        }
        Err(_) => {
            tracing::warn!("request timed out; its handler finishes in the background");
            ApiError::RequestTimeout.into_response()
        }
    }
}

/// Who sent a request, as the audit log records it: its id, the client
/// address (behind a trusted proxy, the one it names) and user agent.
fn request_info(state: &AppState, req: Request) -> (tenantry_core::audit::RequestInfo, Request) {
    let (parts, body) = req.into_parts();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(256).collect::<String>())
    };
    let info = tenantry_core::audit::RequestInfo {
        id: header("x-request-id"),
        ip: crate::api::resolve::source_addr(state, &parts).map(|ip| ip.to_string()),
        user_agent: header("user-agent"),
    };
    (info, Request::from_parts(parts, body))
}

/// Request ids for requests that come without one: random (version 4)
/// UUIDs, as `tower_http`'s `MakeRequestUuid` made them, but drawn from the
/// thread's cryptographic generator (ChaCha, seeded from the system and
/// reseeded now and then) instead of one `getrandom` system call each.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let id = uuid_v4(rand::Rng::r#gen(&mut rand::thread_rng()));
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// `bytes` as a version 4 UUID (RFC 9562): 122 of its bits, in the usual
/// lower-case hyphenated form.
fn uuid_v4(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_4_uuids() {
        let id = uuid_v4([0xff; 16]);
        assert_eq!(id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let id = uuid_v4([0; 16]);
        assert_eq!(id, "00000000-0000-4000-8000-000000000000");
    }
}
