//! Outbound webhooks: the event catalogue, endpoints (a tenant's, or the
//! operator's, which receive every tenant's events), deliveries and replays.

use crate::page::{ListParams, stream};
use crate::resources::{failed, split_params};
use crate::{Client, Error, ItemStream};
use reqwest::Method;
use tenantry_api::webhooks::{
    CreatedEndpointOut, EndpointInput, EndpointPatch, EndpointView, EventTypeList, Jwks,
    MessageDetail, MessageOut, MessageParams, ReplayIn, ReplayOut, RotateSecretIn,
};

impl Client {
    /// The webhook endpoints of `tenant`.
    pub fn webhooks(&self, tenant: &str) -> Webhooks {
        Webhooks {
            client: self.clone(),
            prefix: vec![
                "v1".into(),
                "tenants".into(),
                tenant.to_owned(),
                "webhook-endpoints".into(),
            ],
            idempotency_key: None,
        }
    }

    /// The operator's webhook endpoints.
    pub fn operator_webhooks(&self) -> Webhooks {
        Webhooks {
            client: self.clone(),
            prefix: vec!["v1".into(), "webhook-endpoints".into()],
            idempotency_key: None,
        }
    }

    /// `GET /v1/event-types`: the event catalogue.
    pub async fn event_types(&self) -> Result<EventTypeList, Error> {
        self.call(Method::GET, &["v1", "event-types"]).send().await
    }
}

#[derive(Debug, Clone)]
pub struct Webhooks {
    client: Client,
    prefix: Vec<String>,
    idempotency_key: Option<String>,
}

impl Webhooks {
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    fn path<'a>(&'a self, rest: &[&'a str]) -> Vec<&'a str> {
        let mut p: Vec<&str> = self.prefix.iter().map(String::as_str).collect();
        p.extend_from_slice(rest);
        p
    }

    /// `POST …/webhook-endpoints`: the answer holds the `whsec_` secret, once.
    pub async fn create(&self, input: &EndpointInput) -> Result<CreatedEndpointOut, Error> {
        self.client
            .call(Method::POST, &self.path(&[]))
            .creating(self.idempotency_key.clone())
            .json(input)
            .send()
            .await
    }

    /// `GET …/webhook-endpoints`
    pub fn list(&self, params: ListParams) -> ItemStream<EndpointView> {
        stream(&self.client, &self.path(&[]), Vec::new(), params)
    }

    /// `GET …/webhook-endpoints/{eid}`
    pub async fn get(&self, id: &str) -> Result<EndpointView, Error> {
        self.client
            .call(Method::GET, &self.path(&[id]))
            .send()
            .await
    }

    /// `PATCH …/webhook-endpoints/{eid}`
    pub async fn update(&self, id: &str, patch: &EndpointPatch) -> Result<EndpointView, Error> {
        self.client
            .call(Method::PATCH, &self.path(&[id]))
            .json(patch)
            .send()
            .await
    }

    /// `DELETE …/webhook-endpoints/{eid}`
    pub async fn delete(&self, id: &str) -> Result<(), Error> {
        self.client
            .call(Method::DELETE, &self.path(&[id]))
            .send_empty()
            .await
    }

    /// `POST …/webhook-endpoints/{eid}/secret/rotate`: a new secret; the old
    /// one keeps signing for the overlap.
    pub async fn rotate_secret(
        &self,
        id: &str,
        input: &RotateSecretIn,
    ) -> Result<CreatedEndpointOut, Error> {
        self.client
            .call(Method::POST, &self.path(&[id, "secret", "rotate"]))
            .creating(self.idempotency_key.clone())
            .json(input)
            .send()
            .await
    }

    /// `GET …/webhook-endpoints/{eid}/jwks.json`: its `v1a` public key.
    pub async fn jwks(&self, id: &str) -> Result<Jwks, Error> {
        self.client
            .call(Method::GET, &self.path(&[id, "jwks.json"]))
            .send()
            .await
    }

    /// `GET …/webhook-endpoints/{eid}/messages`: the delivery log.
    pub fn messages(&self, id: &str, params: MessageParams) -> ItemStream<MessageOut> {
        match split_params(&params) {
            Ok((q, list)) => stream(&self.client, &self.path(&[id, "messages"]), q, list),
            Err(e) => failed(e),
        }
    }

    /// `GET …/webhook-endpoints/{eid}/messages/{mid}`: one message and its attempts.
    pub async fn message(&self, id: &str, message: &str) -> Result<MessageDetail, Error> {
        self.client
            .call(Method::GET, &self.path(&[id, "messages", message]))
            .send()
            .await
    }

    /// `POST …/webhook-endpoints/{eid}/messages/{mid}/replay`
    pub async fn replay(&self, id: &str, message: &str) -> Result<ReplayOut, Error> {
        self.client
            .call(
                Method::POST,
                &self.path(&[id, "messages", message, "replay"]),
            )
            .send()
            .await
    }

    /// `POST …/webhook-endpoints/{eid}/replay`: every message of a time range.
    pub async fn replay_range(&self, id: &str, input: &ReplayIn) -> Result<ReplayOut, Error> {
        self.client
            .call(Method::POST, &self.path(&[id, "replay"]))
            .json(input)
            .send()
            .await
    }
}
