//! Tenant resolution and access tokens.

use crate::{Client, Error};
use reqwest::Method;
use serde_json::Value;
use tenantry_api::resolve::{ResolveIn, ResolveOut};
use tenantry_api::tokens::{RotatedOut, TokenIn, TokenOut};

impl Client {
    /// `POST /v1/resolve`: which tenant a request with these inputs belongs to.
    pub async fn resolve(&self, input: &ResolveIn) -> Result<ResolveOut, Error> {
        self.call(Method::POST, &["v1", "resolve"])
            .json(input)
            .send()
            .await
    }

    /// `GET /v1/resolve`: gateway mode; the client's own key (and `headers`,
    /// such as `X-Forwarded-Host`) are what is resolved.
    pub async fn resolve_request(
        &self,
        headers: &[(&'static str, &str)],
    ) -> Result<ResolveOut, Error> {
        let mut call = self.call(Method::GET, &["v1", "resolve"]);
        for (name, value) in headers {
            call = call.header(name, value);
        }
        call.send().await
    }

    /// `POST /v1/tokens`: a short-lived access token for the caller.
    pub async fn create_token(&self, input: &TokenIn) -> Result<TokenOut, Error> {
        self.call(Method::POST, &["v1", "tokens"])
            .creating(None)
            .json(input)
            .send()
            .await
    }

    /// `GET /.well-known/jwks.json`: the keys that verify access tokens.
    pub async fn token_jwks(&self) -> Result<Value, Error> {
        self.call(Method::GET, &[".well-known", "jwks.json"])
            .anonymous()
            .send()
            .await
    }

    /// `POST /v1/operator/signing-keys/rotate`
    pub async fn rotate_token_signing_key(&self) -> Result<RotatedOut, Error> {
        self.call(Method::POST, &["v1", "operator", "signing-keys", "rotate"])
            .send()
            .await
    }
}
