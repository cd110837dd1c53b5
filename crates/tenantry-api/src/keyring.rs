//! `keyring` wire types.

use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct TenantKeyRotated {
    pub tenant_id: String,
    pub data_key_id: String,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct KekStatus {
    pub id: String,
    pub active: bool,
    /// Whether this server's keyring holds it.
    pub in_keyring: bool,
    /// Keys it wraps: tenants' data keys, token-signing and audit
    /// checkpoint seeds, and webhook endpoints' secrets. A non-active KEK
    /// at 0 can be removed from the keyring.
    pub data_keys: i64,
    pub retirable: bool,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct KeyringStatus {
    pub active_kek: String,
    pub keks: Vec<KekStatus>,
    /// Keys (as counted in `data_keys`) still wrapped by a KEK other than the active one.
    pub rewrap_pending: i64,
    /// Whether the server can rotate the keyring itself (a keyring file).
    pub writable: bool,
}
