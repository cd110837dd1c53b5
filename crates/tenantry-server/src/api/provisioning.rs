//! `/v1/provisioning`: onboarding a tenant in one call (operators only).
//! The behaviour is in [`crate::provisioning`].

use super::{Checks, PageParams, cursor, parse_name};
use crate::app::AppState;
use crate::http::auth::Operator;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::problem::{ApiError, Problem};
use crate::provisioning::{
    GenesysSecrets, GenesysSpec, IssuedKey, KeySpec, Secrets, Spec, TenantSpec, WhatsappSecrets,
    WhatsappSpec, Workflow, WorkflowStatus, date, genesys, service, steps,
};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
pub use tenantry_api::provisioning::{
    ApiKeyIn, GenesysIn, ListParams, ProvisioningIn, ProvisioningTenantIn, WhatsappIn,
    WorkflowList, WorkflowOut,
};
use tenantry_core::credentials::{CredentialKind, validate};
use tenantry_core::keys::{Environment, Scopes};
use tenantry_core::values::{Metadata, PlanName, Region, Subdomain, TenantName};
use tenantry_core::{TenantId, ValidationError};

fn workflow_out(wf: Workflow, keys: Option<Vec<IssuedKey>>) -> WorkflowOut {
    WorkflowOut {
        next_attempt_at: steps::next_attempt(&wf),
        id: Some(wf.id),
        tenant_id: wf.tenant_id.to_string(),
        status: wf.status,
        dry_run: false,
        on_failure: wf.spec.on_failure,
        steps: wf.steps,
        api_keys: keys,
        api_keys_pending: wf.issued_keys.is_some(),
        created_at: Some(date(wf.created_ms)),
        updated_at: Some(date(wf.updated_ms)),
    }
}

/// Most API keys one workflow generates.
const MAX_KEYS: usize = 20;

/// Most webhook endpoints one workflow registers.
const MAX_ENDPOINTS: usize = 10;

/// A credential's fields, checked as the vault checks them, errors named
/// after the request's own fields (`whatsapp.access_token`).
fn check_credential(checks: &mut Checks, kind: CredentialKind, prefix: &'static str, data: Value) {
    let Value::Object(data) = data else { return };
    if let Err(errors) = validate(kind, &data, None) {
        for mut e in errors {
            e.field = e.field.replacen("data.", &format!("{prefix}."), 1).into();
            checks.check::<()>(Err(e));
        }
    }
}

/// The request as a workflow's spec and its secrets.
fn parse(state: &AppState, input: ProvisioningIn) -> Result<(Spec, Secrets, bool), ApiError> {
    let mut checks = Checks::default();
    let t = input.tenant;
    let id = checks.check(TenantId::parse(&t.id));
    let name = checks.check(TenantName::parse("tenant.name", &t.name));
    let subdomain = match &t.subdomain {
        Some(s) => checks.check(Subdomain::parse("tenant.subdomain", s)),
        None => id
            .as_ref()
            .map(|id| Subdomain::from_trusted(id.to_string())),
    };
    let plan = match &t.plan {
        Some(p) => checks.check(PlanName::parse("tenant.plan", p)),
        None => Some(state.config.default_plan.clone()),
    };
    let region = match &t.region {
        Some(r) => checks.check(Region::parse("tenant.region", r)),
        None => Some(state.config.region.clone()),
    };
    let metadata = match t.metadata {
        Some(m) => checks.check(Metadata::parse("tenant.metadata", m)),
        None => Some(Metadata::empty()),
    };
    let mut secrets = Secrets::default();
    let whatsapp = input.whatsapp.map(|w| {
        check_credential(
            &mut checks,
            CredentialKind::Whatsapp,
            "whatsapp",
            json!({
                "phone_number_id": w.phone_number_id, "business_account_id": w.business_account_id,
                "access_token": w.access_token, "app_secret": w.app_secret, "verify_token": w.verify_token,
            }),
        );
        secrets.whatsapp = Some(WhatsappSecrets {
            access_token: w.access_token,
            app_secret: w.app_secret,
            verify_token: w.verify_token,
        });
        WhatsappSpec {
            phone_number_id: w.phone_number_id,
            business_account_id: w.business_account_id,
            credential_id: state.ids.random("cred"),
        }
    });
    let genesys = match input.genesys {
        None => None,
        Some(g) => {
            let region = checks.check(genesys::region_name(&g.region).ok_or_else(|| {
                ValidationError::new(
                    "genesys.region",
                    "invalid_value",
                    "must be a Genesys Cloud region, by name (us_east_1) or domain (mypurecloud.com)",
                )
            }));
            check_credential(
                &mut checks,
                CredentialKind::Genesys,
                "genesys",
                json!({
                    "region": region.unwrap_or("us_east_1"),
                    "client_id": g.client_id, "client_secret": g.client_secret,
                }),
            );
            secrets.genesys = Some(GenesysSecrets {
                client_id: g.client_id,
                client_secret: g.client_secret,
            });
            region.map(|r| GenesysSpec {
                region: r.to_owned(),
                credential_id: state.ids.random("cred"),
            })
        }
    };
    let keys = input.api_keys.unwrap_or_default();
    if keys.len() > MAX_KEYS {
        checks.check::<()>(Err(ValidationError::new(
            "api_keys",
            "too_many",
            "at most 20 keys",
        )));
    }
    let mut api_keys = Vec::new();
    for key in keys {
        let name = checks.check(parse_name(&key.name));
        let scopes = checks.check(Scopes::parse("api_keys.scopes", &key.scopes));
        let environment = checks.check(Environment::parse(
            "api_keys.environment",
            key.environment.as_deref().unwrap_or("live"),
        ));
        if let Some(scopes) = &scopes
            && let Some(scope) = scopes.operator_issued()
        {
            // Operators may grant these, but not through an onboarding
            // request that hands keys to a new tenant.
            checks.check::<()>(Err(ValidationError::new(
                "api_keys.scopes",
                "operator_issued_scope",
                format!("'{scope}' cannot be given to a provisioned key"),
            )));
        }
        if let (Some(name), Some(_), Some(environment)) = (name, scopes, environment) {
            api_keys.push(KeySpec {
                name,
                scopes: key.scopes,
                environment: environment.as_str().to_owned(),
            });
        }
    }
    let webhook_endpoints = input.webhook_endpoints.unwrap_or_default();
    if webhook_endpoints.len() > MAX_ENDPOINTS {
        checks.check::<()>(Err(ValidationError::new(
            "webhook_endpoints",
            "too_many",
            "at most 10 endpoints",
        )));
    }
    for (i, body) in webhook_endpoints.iter().enumerate() {
        // The step validates each endpoint whole; its shape and URL are
        // checked now, so most mistakes are a 422 rather than a failed step.
        match serde_json::from_value::<crate::webhooks::endpoints::EndpointInput>(body.clone()) {
            Err(e) => {
                checks.check::<()>(Err(ValidationError::new(
                    format!("webhook_endpoints[{i}]"),
                    "invalid_endpoint",
                    e.to_string(),
                )));
            }
            Ok(endpoint) => {
                if let Err(e) = state.outbound.check_url(&endpoint.url) {
                    checks.check::<()>(Err(ValidationError::new(
                        format!("webhook_endpoints[{i}].url"),
                        "invalid_url",
                        e.to_string(),
                    )));
                }
            }
        }
    }
    if let Some(config) = &input.config {
        let mut overrides = json!({});
        crate::limits::config::merge_patch(&mut overrides, config);
        if let Err(errors) = crate::limits::config::validate_overrides(&overrides) {
            for mut e in errors {
                e.field = format!("config.{}", e.field).into();
                checks.check::<()>(Err(e));
            }
        }
    }
    checks.finish()?;
    let (Some(id), Some(name), Some(subdomain), Some(plan), Some(region), Some(metadata)) =
        (id, name, subdomain, plan, region, metadata)
    else {
        return Err(ApiError::Internal);
    };
    if !state.config.regions.is_empty() && region != state.config.region {
        // As for POST /v1/tenants: a tenant is created in its home region.
        return Err(crate::tenancy::regions::wrong_region(
            state,
            region.as_str(),
        ));
    }
    let spec = Spec {
        tenant: TenantSpec {
            id: id.to_string(),
            name: name.to_string(),
            subdomain: subdomain.to_string(),
            plan: plan.to_string(),
            region: region.to_string(),
            metadata: Value::Object(metadata.as_map().clone()),
        },
        whatsapp,
        genesys,
        api_keys,
        webhook_endpoints,
        config: input.config,
        on_failure: input.on_failure.unwrap_or_default(),
        cancel_requested: false,
    };
    Ok((spec, secrets, input.dry_run.unwrap_or(false)))
}

/// Start a provisioning workflow (or, with `dry_run`, only check the credentials).
#[utoipa::path(post, path = "/v1/provisioning", tag = "provisioning", request_body = ProvisioningIn,
    responses(
        (status = 202, description = "the workflow is stored; a worker runs it", body = WorkflowOut),
        (status = 200, description = "a dry run's outcome", body = WorkflowOut),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(input): ApiJson<ProvisioningIn>,
) -> Result<Response, ApiError> {
    let (spec, secrets, dry_run) = parse(&state, input)?;
    if dry_run {
        let (status, steps) = service::dry_run(&state, &spec, &secrets).await;
        let out = WorkflowOut {
            id: None,
            tenant_id: spec.tenant.id,
            status,
            dry_run: true,
            on_failure: spec.on_failure,
            steps,
            next_attempt_at: None,
            api_keys: None,
            api_keys_pending: false,
            created_at: None,
            updated_at: None,
        };
        return Ok((StatusCode::OK, Json(out)).into_response());
    }
    let wf = service::start(&state, operator.grant(), spec, secrets).await?;
    let location = format!("/v1/provisioning/{}", wf.id);
    Ok((
        StatusCode::ACCEPTED,
        [(axum::http::header::LOCATION, location)],
        Json(workflow_out(wf, None)),
    )
        .into_response())
}

/// A workflow and each step's progress. The first read by whoever started
/// it after its keys were generated returns them (`api_keys`), once.
#[utoipa::path(get, path = "/v1/provisioning/{id}", tag = "provisioning", params(("id" = String, Path)),
    responses((status = 200, body = WorkflowOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WorkflowOut>, ApiError> {
    let (wf, keys) = service::get(&state, operator.grant(), &id).await?;
    Ok(Json(workflow_out(wf, keys)))
}

/// Workflows, oldest first.
#[utoipa::path(get, path = "/v1/provisioning", tag = "provisioning", params(ListParams),
    responses((status = 200, body = WorkflowList), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    operator: Operator,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<WorkflowList>, ApiError> {
    let page = PageParams {
        limit: params.limit,
        cursor: params.cursor,
    };
    let limit = page.limit()?;
    let after = page.after("provisioning")?;
    let status = match &params.status {
        None => None,
        Some(s) => Some(WorkflowStatus::parse(s).ok_or_else(|| {
            ApiError::from(ValidationError::new(
                "status",
                "invalid_value",
                "must be one of pending, running, succeeded, failed, compensating, compensated, cancelled",
            ))
        })?),
    };
    let (workflows, next) =
        service::list(&state, operator.grant(), status, after.as_deref(), limit).await?;
    Ok(Json(WorkflowList {
        data: workflows
            .into_iter()
            .map(|wf| workflow_out(wf, None))
            .collect(),
        next_cursor: next.map(|id| cursor("provisioning", &id)),
    }))
}

/// Resume a failed (held) workflow from its failed step.
#[utoipa::path(post, path = "/v1/provisioning/{id}/retry", tag = "provisioning", params(("id" = String, Path)),
    responses((status = 202, body = WorkflowOut), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn retry(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let wf = service::retry(&state, operator.grant(), &id).await?;
    Ok((StatusCode::ACCEPTED, Json(workflow_out(wf, None))).into_response())
}

/// Cancel a workflow: its completed steps are undone, in reverse order.
#[utoipa::path(post, path = "/v1/provisioning/{id}/cancel", tag = "provisioning", params(("id" = String, Path)),
    responses((status = 202, body = WorkflowOut), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn cancel(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let wf = service::cancel(&state, operator.grant(), &id).await?;
    Ok((StatusCode::ACCEPTED, Json(workflow_out(wf, None))).into_response())
}
