//! The tower `Layer` and `Service`.

use crate::LayerError;
use crate::cache::ResolutionCache;
use crate::config::LayerConfig;
use crate::context::{TenantContext, in_tenant_scope};
use crate::problem::Refusal;
use crate::shared::{Lookup, Shared};
use bytes::Bytes;
use http::{Request, Response};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::task::futures::TaskLocalFuture;

/// Resolves each request's tenant through Tenantry (see the crate docs).
/// Cheap to clone: clones share one cache and one change-stream task.
#[derive(Clone)]
pub struct TenantryLayer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TenantryLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantryLayer")
            .field("config", &self.shared.config)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl TenantryLayer {
    /// Makes the layer and starts its change-stream task (on the current
    /// tokio runtime).
    pub fn new(config: LayerConfig) -> Result<TenantryLayer, LayerError> {
        if config.strategies.is_empty() {
            return Err(LayerError::NoStrategy);
        }
        reqwest::Url::parse(&config.tenantry_url).map_err(|e| LayerError::Url(e.to_string()))?;
        tokio::runtime::Handle::try_current().map_err(|_| LayerError::NoRuntime)?;
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|_| LayerError::Client)?;
        let shared = Arc::new(Shared {
            cache: ResolutionCache::new(config.capacity, config.ttl, config.refusal_ttl),
            identity: crate::shared::Identity::random(),
            config,
            http: http.clone(),
        });
        crate::stream::spawn(&shared, http);
        Ok(TenantryLayer { shared })
    }

    /// Whether the change stream is live (results are being cached).
    pub fn is_connected(&self) -> bool {
        self.shared.cache.is_connected()
    }

    /// Waits up to `timeout` for the change stream to go live.
    pub async fn wait_connected(&self, timeout: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.is_connected() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        true
    }

    /// Resolves the tenant of a request's headers (what the service does).
    pub async fn resolve(
        &self,
        headers: &http::HeaderMap,
        uri: &http::Uri,
    ) -> Result<TenantContext, Refusal> {
        self.shared.resolve_request(headers, uri).await
    }

    /// A tenant's context by id (for jobs; the service key must be an
    /// operator key or have `resolve:trusted`).
    pub async fn context_of(&self, tenant_id: &str) -> Result<TenantContext, Refusal> {
        self.shared.context_of(tenant_id).await
    }
}

impl<S> tower::Layer<S> for TenantryLayer {
    type Service = TenantryService<S>;

    fn layer(&self, inner: S) -> TenantryService<S> {
        TenantryService {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The middleware: answers refusals itself, passes resolved requests on
/// with their [`TenantContext`] in the extensions and the task-local.
#[derive(Clone)]
pub struct TenantryService<S> {
    inner: S,
    shared: Arc<Shared>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, B, ResBody> tower::Service<Request<B>> for TenantryService<S>
where
    S: tower::Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    ResBody: From<Bytes> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, B, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone that was polled ready serves this request.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        // The cache is asked here, synchronously: a hit goes straight to the
        // inner service, and only a miss allocates a future for its call
        // to Tenantry.
        let state = match self.shared.lookup(request.headers(), request.uri()) {
            Lookup::Hit(tenant) => State::running(inner, request, tenant),
            Lookup::Refused(refusal) => State::Refused {
                response: Some(refusal.into_response()),
            },
            Lookup::Miss { inputs, id } => {
                let shared = Arc::clone(&self.shared);
                State::Resolving {
                    resolve: Box::pin(async move { shared.resolve_miss(inputs, id).await }),
                    next: Some((inner, request)),
                }
            }
        };
        ResponseFuture { state }
    }
}

pin_project_lite::pin_project! {
    /// The future of a [`TenantryService`] call.
    pub struct ResponseFuture<S, B, ResBody>
    where
        S: tower::Service<Request<B>>,
    {
        #[pin]
        state: State<S, B, ResBody>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<S, B, ResBody>
    where
        S: tower::Service<Request<B>>,
    {
        /// A cache miss: Tenantry is being asked.
        Resolving {
            resolve: BoxFuture<Result<TenantContext, Refusal>>,
            next: Option<(S, Request<B>)>,
        },
        /// The inner service runs in the tenant's task-local scope.
        Running {
            #[pin]
            future: TaskLocalFuture<Option<TenantContext>, S::Future>,
        },
        /// Refused: the answer is ready.
        Refused {
            response: Option<Response<ResBody>>,
        },
    }
}

impl<S, B, ResBody> State<S, B, ResBody>
where
    S: tower::Service<Request<B>>,
{
    fn running(mut inner: S, mut request: Request<B>, tenant: TenantContext) -> Self {
        request.extensions_mut().insert(tenant.clone());
        State::Running {
            future: in_tenant_scope(Some(tenant), inner.call(request)),
        }
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B, ResBody>
where
    S: tower::Service<Request<B>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Running { future } => return future.poll(cx),
                StateProj::Refused { response } => {
                    // (Polled again after its answer: a refusal, never a panic.)
                    let response = response
                        .take()
                        .unwrap_or_else(|| Refusal::unavailable().into_response());
                    return Poll::Ready(Ok(response));
                }
                StateProj::Resolving { resolve, next } => {
                    let outcome = std::task::ready!(resolve.as_mut().poll(cx));
                    let next = match (outcome, next.take()) {
                        (Ok(tenant), Some((inner, request))) => {
                            State::running(inner, request, tenant)
                        }
                        (Err(refusal), _) => State::Refused {
                            response: Some(refusal.into_response()),
                        },
                        (Ok(_), None) => State::Refused { response: None },
                    };
                    state.set(next);
                }
            }
        }
    }
}
