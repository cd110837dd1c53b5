//! A tenant's buckets: taking from a rate limit of its configuration, per
//! tenant or per key. Nothing is written to the database (and nothing
//! audited): a rate-limit decision is metering, the hot path.

use super::{Decision, Policy};
use crate::app::AppState;
use crate::grant::TenantGrant;
use crate::http::problem::ApiError;
use crate::limits::service::effective_config_of;
use crate::tenancy::or_tenant_not_found;
use tenantry_core::ValidationError;

/// `POST /v1/ratelimit`: takes `cost` from the rate limit `limit` of the
/// grant's tenant, or of one of its keys.
pub async fn take(
    state: &AppState,
    grant: &TenantGrant,
    key_id: Option<&str>,
    limit: &str,
    cost: u64,
) -> Result<Decision, ApiError> {
    let tenant = grant.tenant();
    if cost > 1_000_000_000 {
        return Err(
            ValidationError::new("cost", "out_of_range", "must be at most 1000000000").into(),
        );
    }
    if let Some(key) = key_id
        && (key.is_empty()
            || key.len() > 64
            || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    {
        return Err(ValidationError::new(
            "key_id",
            "invalid_value",
            "must be a key id such as key_…",
        )
        .into());
    }
    let config = effective_config_of(state, tenant)
        .await
        .map_err(or_tenant_not_found)?;
    let Some(rate) = config.rate_limit(limit) else {
        return Err(ValidationError::new(
            "limit",
            "unknown_limit",
            "the tenant's configuration has no rate limit of this name",
        )
        .into());
    };
    if cost > rate.limit {
        return Err(ValidationError::new(
            "cost",
            "over_limit",
            "is more than the limit allows at once; it could never be admitted",
        )
        .into());
    }
    // Every bucket is the tenant's own: a key id names a key of this tenant,
    // so tenant A draining `user_42` leaves tenant B's `user_42` untouched.
    // (Tenant ids have no ':', key ids neither: the names cannot collide.)
    let bucket = match key_id {
        Some(key) => format!("t:{tenant}:k:{key}:{limit}"),
        None => format!("t:{tenant}:{limit}"),
    };
    let policy = Policy {
        limit: rate.limit,
        period: std::time::Duration::from_secs(rate.period_seconds),
    };
    Ok(state.rate_limiter.check(&bucket, policy, cost).await)
}
