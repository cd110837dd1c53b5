//! What every clone of the layer shares: configuration, HTTP client, cache.

use crate::cache::{Depends, Hit, ResolutionCache};
use crate::client::{self, Inputs};
use crate::config::{LayerConfig, Strategy};
use crate::context::TenantContext;
use crate::problem::Refusal;
use http::HeaderMap;
use sha2::{Digest, Sha256};

pub(crate) struct Shared {
    pub config: LayerConfig,
    pub http: reqwest::Client,
    pub cache: ResolutionCache,
}

/// Whether a bearer credential has the shape of a JWT.
fn looks_like_token(credential: &str) -> bool {
    credential.starts_with("eyJ") && credential.bytes().filter(|b| *b == b'.').count() == 2
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

impl Shared {
    /// The inputs a request presents under the configured strategies; a
    /// request presenting two different credentials is refused (one would
    /// go unchecked).
    fn inputs(&self, headers: &HeaderMap, uri: &http::Uri) -> Result<Inputs, Refusal> {
        let strategies = &self.config.strategies;
        let mut inputs = Inputs::default();
        if strategies.contains(&Strategy::Host) {
            inputs.host = header(headers, "host")
                .or_else(|| uri.host())
                .map(|h| h.to_ascii_lowercase());
        }
        let api_key = header(headers, "x-api-key");
        let bearer = header(headers, "authorization").and_then(|v| {
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
        if headers.get_all("x-api-key").iter().count() > 1
            || headers.get_all("authorization").iter().count() > 1
        {
            return Err(Refusal::unauthorized());
        }
        if let Some(credential) = bearer.or(api_key) {
            let token = looks_like_token(credential);
            if token && strategies.contains(&Strategy::Token) {
                inputs.token = Some(credential.to_owned());
            } else if !token && strategies.contains(&Strategy::ApiKey) {
                inputs.api_key = Some(credential.to_owned());
            }
        }
        if inputs.host.is_none() && inputs.api_key.is_none() && inputs.token.is_none() {
            return Err(Refusal::unauthorized());
        }
        Ok(inputs)
    }

    /// The request's tenant: from the cache, else from Tenantry.
    pub async fn resolve_request(
        &self,
        headers: &HeaderMap,
        uri: &http::Uri,
    ) -> Result<TenantContext, Refusal> {
        let inputs = self.inputs(headers, uri)?;
        self.resolve(inputs).await
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
        let id = identity(&inputs);
        match self.cache.get(&id) {
            Some(Hit::Tenant(tenant)) => return Ok(tenant),
            Some(Hit::Refused(refusal)) => return Err(refusal),
            None => {}
        }
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

/// The cache key of a set of inputs: a SHA-256 over them, each part tagged
/// and length-prefixed so no two sets of inputs collide.
fn identity(inputs: &Inputs) -> [u8; 32] {
    let mut hash = Sha256::new();
    for (tag, part) in [
        (b'h', &inputs.host),
        (b'k', &inputs.api_key),
        (b't', &inputs.token),
        (b'i', &inputs.tenant_id),
    ] {
        if let Some(part) = part {
            hash.update([tag]);
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
    }
    hash.finalize().into()
}
