//! Public chat widgets and their short-lived tokens.

use crate::{Client, Error};
use reqwest::Method;
use tenantry_api::widgets::{
    VerifyIn, WidgetContextOut, WidgetIn, WidgetList, WidgetOut, WidgetPatchIn, WidgetTokenIn,
    WidgetTokenOut,
};

impl Client {
    pub fn widgets(&self, tenant: &str) -> Widgets {
        Widgets {
            client: self.clone(),
            tenant: tenant.to_owned(),
        }
    }

    /// `POST /v1/widgets/verify`: a widget token's tenant context (anonymous:
    /// browsers call it).
    pub async fn verify_widget_token(&self, input: &VerifyIn) -> Result<WidgetContextOut, Error> {
        self.call(Method::POST, &["v1", "widgets", "verify"])
            .anonymous()
            .json(input)
            .send()
            .await
    }
}

#[derive(Debug, Clone)]
pub struct Widgets {
    client: Client,
    tenant: String,
}

impl Widgets {
    /// `POST /v1/tenants/{id}/widgets`
    pub async fn create(&self, input: &WidgetIn) -> Result<WidgetOut, Error> {
        self.client
            .call(Method::POST, &["v1", "tenants", &self.tenant, "widgets"])
            .json(input)
            .send()
            .await
    }

    /// `GET /v1/tenants/{id}/widgets`
    pub async fn list(&self) -> Result<WidgetList, Error> {
        self.client
            .call(Method::GET, &["v1", "tenants", &self.tenant, "widgets"])
            .send()
            .await
    }

    /// `PATCH /v1/tenants/{id}/widgets/{wid}`
    pub async fn update(&self, id: &str, patch: &WidgetPatchIn) -> Result<WidgetOut, Error> {
        self.client
            .call(
                Method::PATCH,
                &["v1", "tenants", &self.tenant, "widgets", id],
            )
            .json(patch)
            .send()
            .await
    }

    /// `POST /v1/tenants/{id}/widgets/{wid}/tokens`
    pub async fn issue_token(
        &self,
        id: &str,
        input: &WidgetTokenIn,
    ) -> Result<WidgetTokenOut, Error> {
        self.client
            .call(
                Method::POST,
                &["v1", "tenants", &self.tenant, "widgets", id, "tokens"],
            )
            .json(input)
            .send()
            .await
    }
}
