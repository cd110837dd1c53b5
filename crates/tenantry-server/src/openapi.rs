//! The OpenAPI 3.1 document, generated from the handlers' annotations. A copy
//! is committed as `openapi.json` at the repository root; a test fails when it
//! drifts (regenerate with `cargo run -- openapi > openapi.json`).

use crate::api::{self, domains, events, health, tenants};
use crate::http::problem::{FieldError, Problem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tenantry",
        description = "The multi-tenant control plane: tenants, isolation, keys, credentials, limits and audit.",
        license(name = "Apache-2.0")
    ),
    paths(
        health::healthz, health::readyz,
        tenants::create, tenants::list, tenants::get, tenants::update, tenants::delete,
        tenants::suspend, tenants::reactivate, events::list,
        domains::add, domains::list, domains::remove,
    ),
    components(schemas(Problem, FieldError, api::Page<tenants::TenantOut>, api::Page<events::EventOut>)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "tenants", description = "The tenant registry and lifecycle"),
        (name = "domains", description = "Custom domains of a tenant"),
        (name = "operations", description = "Health and readiness"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The operator root key, as `Authorization: Bearer <key>`",
                    ))
                    .build(),
            ),
        );
    }
}

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as pretty JSON with a trailing newline, as committed.
pub fn json() -> String {
    let mut text = document()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
}
