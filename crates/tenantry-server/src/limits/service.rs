//! Reading plans, meters and effective configurations, cached in memory and
//! invalidated like the rest (a config change is `Invalidation::Tenant`, a
//! plan change `Invalidation::All`).
#![allow(clippy::disallowed_methods)] // Not yet on the change path (issue 9): transactions opened directly.

use super::config::{EffectiveConfig, Plan, effective};
use crate::app::AppState;
use crate::resolution::cache::Entry;
use std::collections::HashMap;
use std::sync::Arc;
use tenantry_core::TenantId;
use tenantry_store::{StoreError, TenantTx};

/// How a meter aggregates its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// Quantities add up.
    Sum,
    /// A gauge: the latest value counts.
    Last,
    /// Distinct subjects per period.
    Distinct,
}

impl Aggregation {
    pub fn parse(value: &str) -> Option<Aggregation> {
        match value {
            "sum" => Some(Aggregation::Sum),
            "last" => Some(Aggregation::Last),
            "distinct" => Some(Aggregation::Distinct),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Aggregation::Sum => "sum",
            Aggregation::Last => "last",
            Aggregation::Distinct => "distinct",
        }
    }
}

pub fn plan_from_row(name: &str, definition: &serde_json::Value) -> Result<Plan, StoreError> {
    Plan::parse(name, definition)
        .map_err(|_| StoreError::Corrupt(format!("plan {name} is invalid")))
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
    let mut op = state.store.operator_read().await?;
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
    let mut op = state.store.operator_read().await?;
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
    let mut tx = state.store.tenant_read(tenant).await?;
    let config = effective_config(state, &mut tx).await?;
    tx.commit().await?;
    Ok(config)
}
