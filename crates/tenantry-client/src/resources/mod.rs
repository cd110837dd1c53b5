//! One handle per resource of the API; each method is one operation.

pub mod audit;
pub mod credentials;
pub mod domains;
pub mod identity;
pub mod inbound;
pub mod keys;
pub mod limits;
pub mod operations;
pub mod provisioning;
pub mod resolve;
pub mod tenants;
pub mod webhooks;
pub mod widgets;

use crate::error::Error;
use crate::page::ListParams;
use serde::Serialize;

/// A parameter struct's filters as query pairs, its `limit`/`cursor` apart.
pub(crate) fn split_params<Q: Serialize>(
    params: &Q,
) -> Result<(Vec<(String, String)>, ListParams), Error> {
    let value = serde_json::to_value(params).map_err(Error::Encode)?;
    let mut query = Vec::new();
    let mut list = ListParams::default();
    if let serde_json::Value::Object(map) = value {
        for (k, v) in map {
            match (k.as_str(), v) {
                (_, serde_json::Value::Null) => {}
                ("limit", v) => list.limit = v.as_u64().and_then(|n| u32::try_from(n).ok()),
                ("cursor", serde_json::Value::String(s)) => list.cursor = Some(s),
                (_, serde_json::Value::String(s)) => query.push((k, s)),
                (_, other) => query.push((k, other.to_string())),
            }
        }
    }
    Ok((query, list))
}

/// A stream that yields `err` once.
pub(crate) fn failed<T: Send + 'static>(err: Error) -> crate::ItemStream<T> {
    use futures_util::StreamExt;
    futures_util::stream::once(async move { Err(err) }).boxed()
}
