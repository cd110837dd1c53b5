//! What every clone of the layer shares: configuration, HTTP client, cache.

use crate::cache::{Depends, Hit, ResolutionCache};
use crate::client::{self, Inputs};
use crate::config::{LayerConfig, Strategy};
use crate::context::TenantContext;
use crate::problem::Refusal;
use http::header::{self, HeaderMap, HeaderName};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::hash::{BuildHasher, Hasher, RandomState};

pub(crate) struct Shared {
    pub config: LayerConfig,
    pub http: reqwest::Client,
    pub cache: ResolutionCache,
    pub identity: Identity,
}

/// The cache key of a set of inputs: 128 bits, two SipHash-1-3 (std's keyed
/// hash, a PRF) under one random key drawn from the OS for this process,
/// over the parts tagged and length-prefixed (so no two sets of inputs
/// collide by construction), once with the domain byte 0 and once with 1.
/// Without the key, which never leaves the process, nobody can compute an
/// identity or aim for a collision, and the cache never holds a
/// credential's plaintext. (It replaced a SHA-256 of the same bytes, which
/// cost more per request.)
pub(crate) struct Identity(RandomState);

impl Identity {
    pub fn random() -> Identity {
        Identity(RandomState::new())
    }

    fn of(&self, parts: [(u8, Option<&str>); 4]) -> u128 {
        let half = |domain: u8| {
            let mut hasher = self.0.build_hasher();
            hasher.write_u8(domain);
            for (tag, part) in parts {
                if let Some(part) = part {
                    hasher.write_u8(tag);
                    hasher.write_u64(part.len() as u64);
                    hasher.write(part.as_bytes());
                }
            }
            hasher.finish()
        };
        (u128::from(half(0)) << 64) | u128::from(half(1))
    }
}

/// Whether a bearer credential has the shape of a JWT.
fn looks_like_token(credential: &str) -> bool {
    credential.starts_with("eyJ") && credential.bytes().filter(|b| *b == b'.').count() == 2
}

static X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// A header's value, trimmed, if present, text and not empty; `Err` when the
/// header is sent more than once (one copy would go unchecked).
fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a str>, Refusal> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(Refusal::unauthorized());
    }
    Ok(first
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty()))
}

/// What a request presents under the configured strategies, borrowed from
/// its headers: a cache hit copies nothing.
struct Presented<'a> {
    host: Option<Cow<'a, str>>,
    api_key: Option<&'a str>,
    token: Option<&'a str>,
}

impl Presented<'_> {
    fn identity(&self, identity: &Identity) -> u128 {
        identity.of([
            (b'h', self.host.as_deref()),
            (b'k', self.api_key),
            (b't', self.token),
            (b'i', None),
        ])
    }

    fn to_inputs(&self) -> Inputs {
        Inputs {
            host: self.host.as_deref().map(str::to_owned),
            api_key: self.api_key.map(str::to_owned),
            token: self.token.map(str::to_owned),
            tenant_id: None,
        }
    }
}

/// What the cache says of a request, before any call to Tenantry.
pub(crate) enum Lookup {
    Hit(TenantContext),
    Refused(Refusal),
    /// Not cached: ask Tenantry with these inputs (`id`: their cache key).
    Miss {
        inputs: Inputs,
        id: u128,
    },
}

impl Shared {
    /// The inputs a request presents under the configured strategies; a
    /// request presenting two different credentials is refused (one would
    /// go unchecked).
    fn presented<'a>(
        &self,
        headers: &'a HeaderMap,
        uri: &'a http::Uri,
    ) -> Result<Presented<'a>, Refusal> {
        let strategies = &self.config.strategies;
        let mut presented = Presented {
            host: None,
            api_key: None,
            token: None,
        };
        let api_key = single(headers, &X_API_KEY)?;
        let bearer = single(headers, &header::AUTHORIZATION)?.and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| rest.trim())
                .filter(|r| !r.is_empty())
        });
        if let (Some(a), Some(b)) = (api_key, bearer)
            && a != b
        {
            return Err(Refusal::unauthorized());
        }
        if strategies.contains(&Strategy::Host) {
            presented.host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .or_else(|| uri.host())
                .map(lowercase);
        }
        if let Some(credential) = bearer.or(api_key) {
            let token = looks_like_token(credential);
            if token && strategies.contains(&Strategy::Token) {
                presented.token = Some(credential);
            } else if !token && strategies.contains(&Strategy::ApiKey) {
                presented.api_key = Some(credential);
            }
        }
        if presented.host.is_none() && presented.api_key.is_none() && presented.token.is_none() {
            return Err(Refusal::unauthorized());
        }
        Ok(presented)
    }

    /// The request's tenant or refusal if cached; otherwise what to ask
    /// Tenantry ([`Shared::resolve_miss`]).
    pub fn lookup(&self, headers: &HeaderMap, uri: &http::Uri) -> Lookup {
        let presented = match self.presented(headers, uri) {
            Ok(presented) => presented,
            Err(refusal) => return Lookup::Refused(refusal),
        };
        let id = presented.identity(&self.identity);
        match self.cache.get(&id) {
            Some(Hit::Tenant(tenant)) => Lookup::Hit(tenant),
            Some(Hit::Refused(refusal)) => Lookup::Refused(refusal),
            None => Lookup::Miss {
                inputs: presented.to_inputs(),
                id,
            },
        }
    }

    /// The request's tenant: from the cache, else from Tenantry.
    pub async fn resolve_request(
        &self,
        headers: &HeaderMap,
        uri: &http::Uri,
    ) -> Result<TenantContext, Refusal> {
        match self.lookup(headers, uri) {
            Lookup::Hit(tenant) => Ok(tenant),
            Lookup::Refused(refusal) => Err(refusal),
            Lookup::Miss { inputs, id } => self.resolve_miss(inputs, id).await,
        }
    }

    /// A tenant by id (jobs; the service key must be trusted).
    pub async fn context_of(&self, tenant_id: &str) -> Result<TenantContext, Refusal> {
        self.resolve(Inputs {
            tenant_id: Some(tenant_id.to_owned()),
            ..Inputs::default()
        })
        .await
    }

    async fn resolve(&self, inputs: Inputs) -> Result<TenantContext, Refusal> {
        let id = self.identity.of([
            (b'h', inputs.host.as_deref()),
            (b'k', inputs.api_key.as_deref()),
            (b't', inputs.token.as_deref()),
            (b'i', inputs.tenant_id.as_deref()),
        ]);
        match self.cache.get(&id) {
            Some(Hit::Tenant(tenant)) => return Ok(tenant),
            Some(Hit::Refused(refusal)) => return Err(refusal),
            None => {}
        }
        self.resolve_miss(inputs, id).await
    }

    /// Asks Tenantry what the cache did not know, and caches the answer.
    pub async fn resolve_miss(&self, inputs: Inputs, id: u128) -> Result<TenantContext, Refusal> {
        let generation = self.cache.generation();
        let outcome = client::resolve(&self.http, &self.config, &inputs)
            .await
            .and_then(|tenant| {
                // Only active tenants reach the app.
                if tenant.status == "active" {
                    Ok(tenant)
                } else {
                    Err(Refusal::new(
                        http::StatusCode::FORBIDDEN,
                        "tenant_suspended",
                    ))
                }
            });
        let depends = Depends {
            key_hash: inputs
                .api_key
                .as_deref()
                .map(|k| Sha256::digest(k.as_bytes()).into()),
            token: inputs.token.is_some(),
            host: inputs.host.is_some(),
        };
        self.cache.store(generation, id, &outcome, depends);
        outcome
    }
}

/// A host name in lower case, copied only if it is not already.
fn lowercase(host: &str) -> Cow<'_, str> {
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}
