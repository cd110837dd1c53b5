//! A deadline on reading a request body: the body fails once the deadline
//! has passed, and the extractor that reads it answers
//! `408 request_body_timeout` (see [`timed_out`]).

use axum::body::{Body, Bytes};
use axum::extract::Request;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

/// Set in the request's extensions; true once its body missed the deadline.
#[derive(Debug, Clone, Default)]
pub struct BodyDeadline(Arc<AtomicBool>);

/// Whether the body of the request whose [`BodyDeadline`] this is timed out.
pub fn timed_out(deadline: Option<&BodyDeadline>) -> bool {
    deadline.is_some_and(|d| d.0.load(Ordering::Acquire))
}

/// Wraps the body of `req` so that reading it fails after `timeout`.
pub fn with_deadline(req: Request, timeout: Duration) -> Request {
    let (mut parts, body) = req.into_parts();
    let flag = BodyDeadline::default();
    parts.extensions.insert(flag.clone());
    let body = Body::new(Deadline {
        inner: body,
        sleep: Box::pin(tokio::time::sleep(timeout)),
        flag,
    });
    Request::from_parts(parts, body)
}

struct Deadline {
    inner: Body,
    sleep: Pin<Box<tokio::time::Sleep>>,
    flag: BodyDeadline,
}

#[derive(Debug, thiserror::Error)]
#[error("the request body was not received in time")]
struct BodyTimedOut;

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.sleep.as_mut().poll(cx).is_ready() {
            this.flag.0.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
