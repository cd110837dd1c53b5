//! Inbound traffic: the conversations and messages stored for a tenant,
//! and the provider webhooks (WhatsApp, Twilio, SendGrid, generic HMAC),
//! which third parties call with their own signatures (no API key).

use crate::page::{ListParams, stream};
use crate::{Client, Error, ItemStream};
use reqwest::Method;
use tenantry_api::callbacks::{CallbackAck, MessageIn};
use tenantry_api::inbound::{Acknowledged, ConversationOut, Handshake, MessageOut};

impl Client {
    /// The inbound conversations and messages of `tenant`.
    pub fn inbound(&self, tenant: &str) -> Inbound {
        Inbound {
            client: self.clone(),
            tenant: tenant.to_owned(),
        }
    }

    /// The provider webhook receivers, as the providers call them.
    pub fn provider_webhooks(&self) -> ProviderWebhooks {
        ProviderWebhooks {
            client: self.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Inbound {
    client: Client,
    tenant: String,
}

impl Inbound {
    /// `GET /v1/tenants/{id}/conversations`
    pub fn conversations(&self, params: ListParams) -> ItemStream<ConversationOut> {
        stream(
            &self.client,
            &["v1", "tenants", &self.tenant, "conversations"],
            Vec::new(),
            params,
        )
    }

    /// `GET /v1/tenants/{id}/conversations/{cid}/messages`
    pub fn messages(&self, conversation: &str, params: ListParams) -> ItemStream<MessageOut> {
        stream(
            &self.client,
            &[
                "v1",
                "tenants",
                &self.tenant,
                "conversations",
                conversation,
                "messages",
            ],
            Vec::new(),
            params,
        )
    }

    /// `POST /v1/tenants/{id}/messages`: registers an outbound message so
    /// the provider's status callbacks find their tenant.
    pub async fn register_message(&self, input: &MessageIn) -> Result<MessageOut, Error> {
        self.client
            .call(Method::POST, &["v1", "tenants", &self.tenant, "messages"])
            .json(input)
            .send()
            .await
    }
}

#[derive(Debug, Clone)]
pub struct ProviderWebhooks {
    client: Client,
}

impl ProviderWebhooks {
    /// `GET /v1/webhooks/whatsapp/{tenant}`: Meta's verification handshake;
    /// answers the challenge.
    pub async fn whatsapp_handshake(
        &self,
        tenant: &str,
        handshake: &Handshake,
    ) -> Result<String, Error> {
        self.client
            .call(Method::GET, &["v1", "webhooks", "whatsapp", tenant])
            .anonymous()
            .query_struct(handshake)
            .send_text()
            .await
    }

    /// `POST /v1/webhooks/whatsapp/{tenant}`: `body` exactly as signed, with
    /// its `X-Hub-Signature-256`.
    pub async fn whatsapp(
        &self,
        tenant: &str,
        body: Vec<u8>,
        signature: &str,
    ) -> Result<Acknowledged, Error> {
        self.client
            .call(Method::POST, &["v1", "webhooks", "whatsapp", tenant])
            .anonymous()
            .header("x-hub-signature-256", signature)
            .raw(body, "application/json")
            .send()
            .await
    }

    /// `POST /v1/webhooks/whatsapp`: the app-level URL (tenant from the
    /// phone number in the payload).
    pub async fn whatsapp_any(
        &self,
        body: Vec<u8>,
        signature: &str,
    ) -> Result<Acknowledged, Error> {
        self.client
            .call(Method::POST, &["v1", "webhooks", "whatsapp"])
            .anonymous()
            .header("x-hub-signature-256", signature)
            .raw(body, "application/json")
            .send()
            .await
    }

    /// `POST /v1/webhooks/twilio`: a form body with its `X-Twilio-Signature`.
    pub async fn twilio(&self, form: Vec<u8>, signature: &str) -> Result<CallbackAck, Error> {
        self.client
            .call(Method::POST, &["v1", "webhooks", "twilio"])
            .anonymous()
            .header("x-twilio-signature", signature)
            .raw(form, "application/x-www-form-urlencoded")
            .send()
            .await
    }

    /// `POST /v1/webhooks/sendgrid`: signed event batch; `headers` are the
    /// signature headers SendGrid sends (name, value).
    pub async fn sendgrid(
        &self,
        body: Vec<u8>,
        headers: &[(&'static str, &str)],
    ) -> Result<CallbackAck, Error> {
        let mut call = self
            .client
            .call(Method::POST, &["v1", "webhooks", "sendgrid"])
            .anonymous()
            .raw(body, "application/json");
        for (name, value) in headers {
            call = call.header(name, value);
        }
        call.send().await
    }

    /// `POST /v1/webhooks/generic`: a status callback signed with the
    /// generic HMAC scheme; `headers` carry its signature.
    pub async fn generic(
        &self,
        body: Vec<u8>,
        headers: &[(&'static str, &str)],
    ) -> Result<CallbackAck, Error> {
        let mut call = self
            .client
            .call(Method::POST, &["v1", "webhooks", "generic"])
            .anonymous()
            .raw(body, "application/json");
        for (name, value) in headers {
            call = call.header(name, value);
        }
        call.send().await
    }
}
