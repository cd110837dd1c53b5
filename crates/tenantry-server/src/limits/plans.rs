//! The plan catalog: every plan, and putting one (operators). A plan change
//! takes effect at once for every tenant on it, on every server process.

use super::config::Plan;
use super::service::{catalog, plan_from_row};
use crate::app::AppState;
use crate::grant::OperatorGrant;
use crate::http::problem::ApiError;
use crate::resolution::cache::Invalidation;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use tenantry_core::ValidationError;
use tenantry_core::audit::AuditTarget;

/// A catalog name (of a plan, or with `dash: false` of a meter): 1 to 63
/// characters of a-z, 0-9, '_' (and '-').
pub fn name_ok(name: &str, dash: bool) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || (dash && b == b'-')
        })
}

pub fn target(name: &str) -> AuditTarget {
    AuditTarget::new("plan", name)
}

/// Every plan, with when it was last put (any authenticated caller may
/// read the catalog).
pub async fn list(state: &AppState) -> Result<Vec<(Plan, DateTime<Utc>)>, ApiError> {
    let mut op = catalog().read(state).await?;
    let rows = op.list_plans().await?;
    op.commit().await?;
    let mut plans = Vec::with_capacity(rows.len());
    for (name, def, updated_at) in rows {
        plans.push((plan_from_row(&name, &def.0)?, updated_at));
    }
    Ok(plans)
}

/// Creates or replaces the plan `name`: one `plan.updated` entry in the
/// operator chain either way (`changes`: the definition after a creation,
/// else the sections that changed). Putting the same definition again
/// changes nothing and records nothing.
pub async fn put(
    state: &AppState,
    grant: &OperatorGrant,
    name: &str,
    definition: &Value,
) -> Result<(Plan, DateTime<Utc>), ApiError> {
    if !name_ok(name, true) {
        return Err(ValidationError::new(
            "name",
            "invalid_name",
            "plan names are 1 to 63 characters of a-z, 0-9, '-' and '_'",
        )
        .into());
    }
    let plan = Plan::parse(name, definition).map_err(ApiError::Validation)?;
    let after = plan.to_json();
    let now = state.clock.now();
    let mut change = grant.change(state).await?;
    // Locked: a concurrent put of this plan waits, and then diffs against
    // this one's result.
    let before = change.tx().plan_for_update(name).await?;
    let changes = match &before {
        None => json!({ "after": after }),
        Some((_, def, updated_at)) => {
            let diff = sections_changed(&def.0, &after);
            if diff.is_empty() {
                // Nothing changes: the transaction rolls back, unrecorded.
                return Ok((plan, *updated_at));
            }
            Value::Object(diff)
        }
    };
    change.tx().put_plan(name, &after, now).await?;
    change.audit("plan.updated", vec![target(name)], changes);
    change.invalidate(Invalidation::All);
    change.commit().await?;
    Ok((plan, now))
}

/// `{section: {from, to}}` for each top-level section that differs.
fn sections_changed(before: &Value, after: &Value) -> Map<String, Value> {
    let mut diff = Map::new();
    for section in ["description", "quotas", "limits", "rate_limits", "features"] {
        let (from, to) = (&before[section], &after[section]);
        if from != to {
            diff.insert(section.to_owned(), json!({ "from": from, "to": to }));
        }
    }
    diff
}
