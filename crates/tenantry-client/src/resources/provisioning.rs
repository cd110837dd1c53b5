//! Provisioning workflows: onboarding a tenant in one call.

use crate::page::stream;
use crate::resources::{failed, split_params};
use crate::{Client, Error, ItemStream};
use reqwest::Method;
use tenantry_api::provisioning::{ListParams, ProvisioningIn, WorkflowOut};

impl Client {
    pub fn provisioning(&self) -> Provisioning {
        Provisioning {
            client: self.clone(),
            idempotency_key: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Provisioning {
    client: Client,
    idempotency_key: Option<String>,
}

impl Provisioning {
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// `POST /v1/provisioning`: starts a workflow (or, with `dry_run`,
    /// checks the request). Generated keys are in the answer, once.
    pub async fn create(&self, input: &ProvisioningIn) -> Result<WorkflowOut, Error> {
        self.client
            .call(Method::POST, &["v1", "provisioning"])
            .creating(self.idempotency_key.clone())
            .json(input)
            .send()
            .await
    }

    /// `GET /v1/provisioning`
    pub fn list(&self, params: ListParams) -> ItemStream<WorkflowOut> {
        match split_params(&params) {
            Ok((q, list)) => stream(&self.client, &["v1", "provisioning"], q, list),
            Err(e) => failed(e),
        }
    }

    /// `GET /v1/provisioning/{id}`
    pub async fn get(&self, id: &str) -> Result<WorkflowOut, Error> {
        self.client
            .call(Method::GET, &["v1", "provisioning", id])
            .send()
            .await
    }

    /// `POST /v1/provisioning/{id}/retry`: resumes a held workflow.
    pub async fn retry(&self, id: &str) -> Result<WorkflowOut, Error> {
        self.client
            .call(Method::POST, &["v1", "provisioning", id, "retry"])
            .send()
            .await
    }

    /// `POST /v1/provisioning/{id}/cancel`: compensates and cancels.
    pub async fn cancel(&self, id: &str) -> Result<WorkflowOut, Error> {
        self.client
            .call(Method::POST, &["v1", "provisioning", id, "cancel"])
            .send()
            .await
    }
}
