//! The audit log of a tenant, or the operator chain.

use crate::page::stream;
use crate::resources::{failed, split_params};
use crate::{Client, Error, ItemStream};
use reqwest::Method;
use tenantry_api::audit::{
    AuditEntryOut, AuditKeyRotatedOut, AuditQuery, CheckpointOut, CheckpointQuery, ExportQuery,
    PublicKeyOut, VerifyReport,
};

impl Client {
    /// The audit chain of `tenant`.
    pub fn audit(&self, tenant: &str) -> Audit {
        Audit {
            client: self.clone(),
            prefix: vec![
                "v1".into(),
                "tenants".into(),
                tenant.to_owned(),
                "audit".into(),
            ],
        }
    }

    /// The operator's audit chain, and the audit signing keys.
    pub fn operator_audit(&self) -> Audit {
        Audit {
            client: self.clone(),
            prefix: vec!["v1".into(), "operator".into(), "audit".into()],
        }
    }
}

#[derive(Debug, Clone)]
pub struct Audit {
    client: Client,
    prefix: Vec<String>,
}

impl Audit {
    fn path<'a>(&'a self, rest: &[&'a str]) -> Vec<&'a str> {
        let mut p: Vec<&str> = self.prefix.iter().map(String::as_str).collect();
        p.extend_from_slice(rest);
        p
    }

    /// `GET …/audit`: entries, newest first, filtered.
    pub fn list(&self, query: AuditQuery) -> ItemStream<AuditEntryOut> {
        match split_params(&query) {
            Ok((q, list)) => stream(&self.client, &self.path(&[]), q, list),
            Err(e) => failed(e),
        }
    }

    /// `GET …/audit/checkpoints`: signed checkpoints of the chain.
    pub fn checkpoints(&self, query: CheckpointQuery) -> ItemStream<CheckpointOut> {
        match split_params(&query) {
            Ok((q, list)) => stream(&self.client, &self.path(&["checkpoints"]), q, list),
            Err(e) => failed(e),
        }
    }

    /// `GET …/audit/verify`: recomputes the hash chain.
    pub async fn verify(&self) -> Result<VerifyReport, Error> {
        self.client
            .call(Method::GET, &self.path(&["verify"]))
            .send()
            .await
    }

    /// `GET …/audit/export`: NDJSON (default) or CSV, whole.
    pub async fn export(&self, query: &ExportQuery) -> Result<String, Error> {
        self.client
            .call(Method::GET, &self.path(&["export"]))
            .query_struct(query)
            .send_text()
            .await
    }

    /// `GET /v1/audit/keys`: the public keys that verify checkpoints.
    pub async fn signing_keys(&self) -> Result<Vec<PublicKeyOut>, Error> {
        self.client
            .call(Method::GET, &["v1", "audit", "keys"])
            .send()
            .await
    }

    /// `POST /v1/operator/audit/signing-keys/rotate`
    pub async fn rotate_signing_key(&self) -> Result<AuditKeyRotatedOut, Error> {
        self.client
            .call(
                Method::POST,
                &["v1", "operator", "audit", "signing-keys", "rotate"],
            )
            .send()
            .await
    }
}
