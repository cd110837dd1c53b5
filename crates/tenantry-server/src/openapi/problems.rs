//! The problem answers of every operation, derived from what the operation
//! is rather than listed by hand per handler: an authenticated operation can
//! answer 401, 403 and 429; one with a JSON body 400, 413, 415 and 422; one
//! with query parameters 422; one with a path parameter 404; one that honours
//! `Idempotency-Key` 409 and 422; any that touches the database 503. Each is
//! one shared response under `components.responses`, whose body is the
//! Problem schema as `application/problem+json`. A status a handler
//! documents itself (with its own description) is left as it is.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, ObjectBuilder, OpenApi, Ref, RefOr, Type};

pub const PROBLEM_JSON: &str = "application/problem+json";

/// One shared problem response: its status, component name and description.
struct Shared {
    status: &'static str,
    name: &'static str,
    description: &'static str,
    /// Whether it carries `Retry-After`.
    retry_after: bool,
}

const MALFORMED: Shared = Shared {
    status: "400",
    name: "MalformedJson",
    description: "The body is not valid JSON (`malformed_json`).",
    retry_after: false,
};
const UNAUTHORIZED: Shared = Shared {
    status: "401",
    name: "Unauthorized",
    description: "No valid key or token (`unauthorized`, `invalid_credentials`).",
    retry_after: false,
};
const FORBIDDEN: Shared = Shared {
    status: "403",
    name: "Forbidden",
    description: "The credential may not do this (`insufficient_scope`, `operator_required`), or its tenant is suspended (`tenant_suspended`).",
    retry_after: false,
};
const NOT_FOUND: Shared = Shared {
    status: "404",
    name: "NotFound",
    description: "Nothing by that id within the caller's reach; another tenant's ids are answered so too (`tenant_not_found`, `not_found`, …).",
    retry_after: false,
};
const CONFLICT: Shared = Shared {
    status: "409",
    name: "Conflict",
    description: "A request with this `Idempotency-Key` is still running (`idempotency_key_in_progress`), or the change conflicts with the current state.",
    retry_after: true,
};
const TOO_LARGE: Shared = Shared {
    status: "413",
    name: "PayloadTooLarge",
    description: "The body is larger than the server's body limit (`payload_too_large`).",
    retry_after: false,
};
const MEDIA_TYPE: Shared = Shared {
    status: "415",
    name: "UnsupportedMediaType",
    description: "The body is not sent as `application/json` (`unsupported_media_type`).",
    retry_after: false,
};
const INVALID: Shared = Shared {
    status: "422",
    name: "ValidationFailed",
    description: "Invalid input: `validation_failed` names each offending field in `errors` (or `idempotency_key_reused`).",
    retry_after: false,
};
const RATE_LIMITED: Shared = Shared {
    status: "429",
    name: "RateLimited",
    description: "Over the rate limit (`rate_limited`) or a quota (`quota_exceeded`); `Retry-After` says when to try again.",
    retry_after: true,
};
const UNAVAILABLE: Shared = Shared {
    status: "503",
    name: "Unavailable",
    description: "A dependency (the database, Redis) is unavailable or the request took too long (`database_unavailable`, `unavailable`, `request_timeout`), or the database's storage refuses writes (`storage_full`, `storage_read_only`, `storage_io_error`); `Retry-After` says when to try again.",
    retry_after: true,
};

const ALL: [&Shared; 10] = [
    &MALFORMED,
    &UNAUTHORIZED,
    &FORBIDDEN,
    &NOT_FOUND,
    &CONFLICT,
    &TOO_LARGE,
    &MEDIA_TYPE,
    &INVALID,
    &RATE_LIMITED,
    &UNAVAILABLE,
];

/// The paths that answer without touching the database.
const NO_DATABASE: &[&str] = &["/healthz"];

/// What the document says about an operation, from which its problem
/// answers follow.
struct Facts {
    authenticated: bool,
    json_body: bool,
    any_body: bool,
    query: bool,
    path_param: bool,
    idempotent: bool,
    database: bool,
}

impl Facts {
    fn of(path: &str, op: &Operation) -> Facts {
        // `security: [{}]` (or none at all) is a public operation; no
        // `security` inherits the document's bearer requirement.
        let authenticated = match &op.security {
            None => true,
            Some(reqs) => reqs.iter().any(|r| *r != SecurityRequirement::default()),
        };
        let params = op.parameters.as_deref().unwrap_or_default();
        let body = op.request_body.as_ref();
        Facts {
            authenticated,
            json_body: body.is_some_and(|b| b.content.contains_key("application/json")),
            any_body: body.is_some(),
            query: params
                .iter()
                .any(|p| matches!(p.parameter_in, ParameterIn::Query)),
            path_param: path.contains('{'),
            idempotent: params.iter().any(|p| p.name == "Idempotency-Key"),
            database: !NO_DATABASE.contains(&path),
        }
    }

    fn statuses(&self) -> Vec<&'static Shared> {
        let mut out = Vec::new();
        let mut add = |on: bool, shared: &'static Shared| {
            if on {
                out.push(shared);
            }
        };
        add(self.json_body, &MALFORMED);
        add(self.authenticated, &UNAUTHORIZED);
        add(self.authenticated, &FORBIDDEN);
        add(self.path_param, &NOT_FOUND);
        add(self.idempotent, &CONFLICT);
        add(self.any_body, &TOO_LARGE);
        add(self.json_body, &MEDIA_TYPE);
        add(self.json_body || self.query || self.idempotent, &INVALID);
        add(self.authenticated, &RATE_LIMITED);
        add(self.database, &UNAVAILABLE);
        out
    }
}

fn problem_response(shared: &Shared) -> utoipa::openapi::Response {
    let mut response = ResponseBuilder::new()
        .description(shared.description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        );
    if shared.retry_after {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(0)),
                )
                .description(Some("seconds to wait before retrying"))
                .build(),
        );
    }
    response.build()
}

/// Adds the shared responses to the components and refers to them from every
/// operation that can give them.
pub fn document(openapi: &mut OpenApi) {
    let components = openapi.components.get_or_insert_with(Default::default);
    for shared in ALL {
        components
            .responses
            .insert(shared.name.to_owned(), RefOr::T(problem_response(shared)));
    }
    for (path, item) in openapi.paths.paths.iter_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            for shared in Facts::of(path, op).statuses() {
                op.responses
                    .responses
                    .entry(shared.status.to_owned())
                    .or_insert_with(|| {
                        RefOr::Ref(Ref::new(format!("#/components/responses/{}", shared.name)))
                    });
            }
        }
    }
}
