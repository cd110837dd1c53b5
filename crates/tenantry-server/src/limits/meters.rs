//! Meters: what usage is counted in. Built-in meters come with the server;
//! operators register custom ones.

use super::plans::name_ok;
use super::service::{Aggregation, catalog};
use crate::api::Checks;
use crate::app::AppState;
use crate::grant::OperatorGrant;
use crate::http::problem::ApiError;
use crate::resolution::cache::Invalidation;
use serde_json::json;
use tenantry_core::ValidationError;
use tenantry_core::audit::AuditTarget;

/// A meter of the catalog.
#[derive(Debug, Clone)]
pub struct Meter {
    pub name: String,
    pub aggregation: Aggregation,
    pub description: String,
    pub builtin: bool,
}

/// Every meter, built-in and custom (any authenticated caller may read
/// the catalog).
pub async fn list(state: &AppState) -> Result<Vec<Meter>, ApiError> {
    let mut op = catalog().read(state).await?;
    let rows = op.list_meters().await?;
    op.commit().await?;
    Ok(rows
        .into_iter()
        .filter_map(|(name, agg, description, builtin)| {
            Aggregation::parse(&agg).map(|aggregation| Meter {
                name,
                aggregation,
                description,
                builtin,
            })
        })
        .collect())
}

/// Registers a custom meter (`meter.created` in the operator chain);
/// `409 meter_exists` when the name is taken, with nothing recorded.
pub async fn create(
    state: &AppState,
    grant: &OperatorGrant,
    name: &str,
    aggregation: Option<&str>,
    description: Option<String>,
) -> Result<Meter, ApiError> {
    let mut checks = Checks::default();
    let name = checks.check(if name_ok(name, false) {
        Ok(name.to_owned())
    } else {
        Err(ValidationError::new(
            "name",
            "invalid_name",
            "meter names are 1 to 63 characters of a-z, 0-9 and '_'",
        ))
    });
    let aggregation = checks.check(match aggregation {
        None => Ok(Aggregation::Sum),
        Some(a) => Aggregation::parse(a).ok_or_else(|| {
            ValidationError::new(
                "aggregation",
                "invalid_value",
                "must be sum, last or distinct",
            )
        }),
    });
    let description = description.unwrap_or_default();
    if description.chars().count() > 500 {
        checks.check::<()>(Err(ValidationError::new(
            "description",
            "too_long",
            "must be at most 500 characters",
        )));
    }
    checks.finish()?;
    let (Some(name), Some(aggregation)) = (name, aggregation) else {
        return Err(ApiError::Internal);
    };
    let mut change = grant.change(state).await?;
    if !change
        .tx()
        .insert_meter(&name, aggregation.as_str(), &description, state.clock.now())
        .await?
    {
        // Dropped: rolls back, nothing recorded.
        return Err(ApiError::Conflict {
            code: crate::http::codes::Code::MeterExists,
            detail: "a meter with this name exists".into(),
            field: Some("name"),
        });
    }
    change.audit(
        "meter.created",
        vec![AuditTarget::new("meter", name.as_str())],
        json!({ "after": { "name": name, "aggregation": aggregation, "description": description } }),
    );
    change.invalidate(Invalidation::All);
    change.commit().await?;
    Ok(Meter {
        name,
        aggregation,
        description,
        builtin: false,
    })
}
