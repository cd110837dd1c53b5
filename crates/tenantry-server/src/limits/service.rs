//! Reading plans, meters and effective configurations, cached in memory and
//! invalidated like the rest (a config change is `Invalidation::Tenant`, a
//! plan change `Invalidation::All`).

use super::config::{EffectiveConfig, Plan, effective};
use crate::app::AppState;
use crate::grant::{OperatorGrant, TenantGrant};
use crate::resolution::cache::Entry;
use std::collections::HashMap;
use std::sync::Arc;
pub use tenantry_api::usage::Aggregation;
use tenantry_core::TenantId;
use tenantry_store::{StoreError, TenantTx};

pub fn plan_from_row(name: &str, definition: &serde_json::Value) -> Result<Plan, StoreError> {
    Plan::parse(name, definition)
        .map_err(|_| StoreError::Corrupt(format!("plan {name} is invalid")))
}

/// The server's own authority to read the plan and meter catalog, which
/// every caller's limits are made of (a read: nothing is written).
pub(crate) fn catalog() -> OperatorGrant {
    #[allow(clippy::disallowed_methods)]
    // system grant: the catalog cache reads plans and meters for every caller
    OperatorGrant::system("limits")
}

/// A plan, from the cache or the database.
pub async fn load_plan(state: &AppState, name: &str) -> Result<Option<Arc<Plan>>, StoreError> {
    if let Some(entry) = state.caches.plans.get(name) {
        return Ok(match entry {
            Entry::Found(p) => Some(p),
            Entry::Missing => None,
        });
    }
    let generation = state.caches.generation();
    let mut op = catalog().read(state).await?;
    let row = op.get_plan(name).await?;
    op.commit().await?;
    let plan = row
        .map(|(n, def, _)| plan_from_row(&n, &def.0))
        .transpose()?
        .map(Arc::new);
    state.caches.store(
        &state.caches.plans,
        generation,
        name.to_owned(),
        plan.clone().map(Entry::Found).unwrap_or(Entry::Missing),
    );
    Ok(plan)
}

/// Every meter and its aggregation.
pub async fn meters(state: &AppState) -> Result<Arc<HashMap<String, Aggregation>>, StoreError> {
    if let Some(Entry::Found(m)) = state.caches.meters.get(&()) {
        return Ok(m);
    }
    let generation = state.caches.generation();
    let mut op = catalog().read(state).await?;
    let rows = op.list_meters().await?;
    op.commit().await?;
    let map: HashMap<String, Aggregation> = rows
        .into_iter()
        .filter_map(|(name, agg, _, _)| Aggregation::parse(&agg).map(|a| (name, a)))
        .collect();
    let map = Arc::new(map);
    state.caches.store(
        &state.caches.meters,
        generation,
        (),
        Entry::Found(map.clone()),
    );
    Ok(map)
}

/// The effective configuration of a tenant, read inside `tx`'s transaction
/// on a cache miss.
pub async fn effective_config(
    state: &AppState,
    tx: &mut TenantTx,
) -> Result<Arc<EffectiveConfig>, StoreError> {
    let id = tx.tenant_id().clone();
    if let Some(Entry::Found(config)) = state.caches.configs.get(&id) {
        return Ok(config);
    }
    let generation = state.caches.generation();
    let tenant = tx.tenant().await?;
    // The plan is read in this same transaction on a cache miss: asking the
    // pool for a second connection while holding this one can exhaust it
    // under load (every connection held by a request waiting for another).
    let cached_plan = match state.caches.plans.get(tenant.plan.as_str()) {
        Some(Entry::Found(plan)) => Some(plan),
        Some(Entry::Missing) => None,
        None => {
            let row = tx.plan_definition(tenant.plan.as_str()).await?;
            let plan = row
                .map(|def| plan_from_row(tenant.plan.as_str(), &def.0))
                .transpose()?
                .map(Arc::new);
            let entry = plan.clone().map(Entry::Found).unwrap_or(Entry::Missing);
            state.caches.store(
                &state.caches.plans,
                generation,
                tenant.plan.to_string(),
                entry,
            );
            plan
        }
    };
    let plan = cached_plan.unwrap_or_else(|| {
        // A tenant whose plan was never defined: nothing from a plan applies.
        Arc::new(Plan {
            name: tenant.plan.to_string(),
            description: String::new(),
            quotas: Default::default(),
            limits: Default::default(),
            rate_limits: Default::default(),
            features: Default::default(),
        })
    });
    let (version, overrides) = match tx.latest_config().await? {
        Some((version, overrides, _, _)) => (version, overrides.0),
        None => (0, serde_json::json!({})),
    };
    let config = Arc::new(effective(&plan, &overrides, version));
    state.caches.store(
        &state.caches.configs,
        generation,
        id,
        Entry::Found(config.clone()),
    );
    Ok(config)
}

/// The effective configuration of a tenant in a short read transaction.
pub async fn effective_config_of(
    state: &AppState,
    tenant: &TenantId,
) -> Result<Arc<EffectiveConfig>, StoreError> {
    if let Some(Entry::Found(config)) = state.caches.configs.get(tenant) {
        return Ok(config);
    }
    // A read of what is in force for whoever acts on the tenant (the
    // resolution snapshot, the limits of every call): nothing is written.
    #[allow(clippy::disallowed_methods)]
    // system grant: reads the tenant's configuration for its callers
    let grant = TenantGrant::system(tenant.clone(), "limits");
    let mut tx = grant.read(state).await?;
    let config = effective_config(state, &mut tx).await?;
    tx.commit().await?;
    Ok(config)
}
