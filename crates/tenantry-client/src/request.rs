//! One call: build the URL, send, retry as the policy and the method allow,
//! decode the answer.

use crate::Client;
use crate::error::{ApiError, Error};
use crate::retry::parse_retry_after;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::SystemTime;
use url::Url;

const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const REQUEST_ID: &str = "x-request-id";

/// A request being built. Errors in building are kept and returned by
/// `send`, so call sites stay one expression.
pub(crate) struct Call {
    client: Client,
    method: Method,
    url: Result<Url, Error>,
    body: Option<(Vec<u8>, &'static str)>,
    headers: Vec<(HeaderName, HeaderValue)>,
    idempotency_key: Option<String>,
    auth: bool,
    error: Option<Error>,
}

/// A successful answer, read whole.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

impl Client {
    /// A call to the path made of `segments` (each percent-encoded).
    pub(crate) fn call(&self, method: Method, segments: &[&str]) -> Call {
        let mut url = self.inner.base.clone();
        let pushed = match url.path_segments_mut() {
            Ok(mut path) => {
                path.extend(segments);
                true
            }
            Err(()) => false,
        };
        let url = if pushed {
            Ok(url)
        } else {
            Err(Error::BaseUrl(self.inner.base.to_string()))
        };
        Call {
            client: self.clone(),
            method,
            url,
            body: None,
            headers: Vec::new(),
            idempotency_key: None,
            auth: true,
            error: None,
        }
    }
}

/// A fresh idempotency key: 128 random bits, hex.
pub fn new_idempotency_key() -> String {
    let bits: u128 = rand::random();
    format!("tcl_{bits:032x}")
}

impl Call {
    pub(crate) fn query(mut self, name: &str, value: Option<impl ToString>) -> Call {
        if let (Ok(url), Some(value)) = (&mut self.url, value) {
            url.query_pairs_mut().append_pair(name, &value.to_string());
        }
        self
    }

    /// Appends every field of a serializable parameter struct as a query
    /// pair (`None` fields left out).
    pub(crate) fn query_struct<Q: Serialize>(mut self, params: &Q) -> Call {
        match serde_json::to_value(params) {
            Ok(serde_json::Value::Object(map)) => {
                for (k, v) in map {
                    let text = match v {
                        serde_json::Value::Null => continue,
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    self = self.query(&k, Some(text));
                }
            }
            Ok(_) => {}
            Err(e) => self.error = Some(Error::Encode(e)),
        }
        self
    }

    pub(crate) fn json<B: Serialize + ?Sized>(mut self, body: &B) -> Call {
        match serde_json::to_vec(body) {
            Ok(bytes) => self.body = Some((bytes, "application/json")),
            Err(e) => self.error = Some(Error::Encode(e)),
        }
        self
    }

    pub(crate) fn raw(mut self, body: Vec<u8>, content_type: &'static str) -> Call {
        self.body = Some((body, content_type));
        self
    }

    pub(crate) fn header(mut self, name: &'static str, value: &str) -> Call {
        match HeaderValue::from_str(value) {
            Ok(mut v) => {
                v.set_sensitive(true);
                self.headers.push((HeaderName::from_static(name), v));
            }
            Err(_) => self.error = Some(Error::InvalidHeader("header value")),
        }
        self
    }

    /// A creating POST: sends `Idempotency-Key` (the given one or a new
    /// one), the same on every retry of this call.
    pub(crate) fn creating(mut self, key: Option<String>) -> Call {
        self.idempotency_key = Some(key.unwrap_or_else(new_idempotency_key));
        self
    }

    /// Sends no `Authorization` (calls third parties or browsers make).
    pub(crate) fn anonymous(mut self) -> Call {
        self.auth = false;
        self
    }

    /// Whether repeating the request cannot do the work twice.
    fn repeatable(&self) -> bool {
        matches!(
            self.method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        ) || self.idempotency_key.is_some()
    }

    pub(crate) async fn send<T: DeserializeOwned>(self) -> Result<T, Error> {
        let answer = self.execute().await?;
        serde_json::from_slice(&answer.body).map_err(|source| Error::Decode {
            status: answer.status.as_u16(),
            source,
        })
    }

    pub(crate) async fn send_empty(self) -> Result<(), Error> {
        self.execute().await.map(|_| ())
    }

    pub(crate) async fn send_text(self) -> Result<String, Error> {
        let answer = self.execute().await?;
        Ok(String::from_utf8_lossy(&answer.body).into_owned())
    }

    pub(crate) async fn execute(mut self) -> Result<Answer, Error> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let url = std::mem::replace(&mut self.url, Err(Error::InvalidHeader("url")))?;
        let idempotency = match &self.idempotency_key {
            Some(k) => Some(
                HeaderValue::from_str(k).map_err(|_| Error::InvalidHeader("idempotency key"))?,
            ),
            None => None,
        };
        let policy = self.client.inner.retry;
        let repeatable = self.repeatable();
        let mut retry = 0u32;
        loop {
            let mut req = self
                .client
                .inner
                .http
                .request(self.method.clone(), url.clone());
            if let (true, Some(auth)) = (self.auth, &self.client.inner.auth) {
                req = req.header(AUTHORIZATION, auth.clone());
            }
            if let Some(key) = &idempotency {
                req = req.header(IDEMPOTENCY_KEY, key.clone());
            }
            for (name, value) in &self.headers {
                req = req.header(name.clone(), value.clone());
            }
            if let Some((body, content_type)) = &self.body {
                req = req.header(CONTENT_TYPE, *content_type).body(body.clone());
            }
            let outcome: Result<std::convert::Infallible, ApiError> = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, SystemTime::now()));
                    let request_id = resp
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    match resp.bytes().await {
                        Ok(body) if status.is_success() => {
                            return Ok(Answer {
                                status,
                                body: body.to_vec(),
                            });
                        }
                        Ok(body) => Err(ApiError::from_response(
                            status.as_u16(),
                            &body,
                            retry_after,
                            request_id,
                        )),
                        Err(e) => return Err(Error::Transport(e.without_url())),
                    }
                }
                Err(e) => {
                    // Nothing was sent when the connection failed: any call
                    // may be retried. A timeout or reset mid-request may have
                    // done the work: only a repeatable one.
                    let retryable =
                        e.is_connect() || (repeatable && (e.is_timeout() || e.is_request()));
                    if retryable && retry < policy.max_retries {
                        retry += 1;
                        tokio::time::sleep(policy.delay(retry, None)).await;
                        continue;
                    }
                    return Err(Error::Transport(e.without_url()));
                }
            };
            let Err(problem) = outcome;
            let retryable = match problem.status {
                429 => true,
                503 => repeatable,
                409 => {
                    self.idempotency_key.is_some() && problem.code == "idempotency_key_in_progress"
                }
                _ => false,
            };
            if retryable && retry < policy.max_retries {
                retry += 1;
                tokio::time::sleep(policy.delay(retry, problem.retry_after)).await;
                continue;
            }
            return Err(Error::Api(Box::new(problem)));
        }
    }
}
