//! The committed `openapi.json` must match what the code generates.
//! Regenerate with: `cargo run -- openapi > openapi.json`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[test]
fn committed_openapi_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi.json");
    let committed =
        std::fs::read_to_string(path).expect("openapi.json is committed at the repository root");
    let generated = tenantry_server::openapi::json();
    assert!(
        committed == generated,
        "openapi.json is out of date: run `cargo run -- openapi > openapi.json` and commit it"
    );
}

#[test]
fn openapi_is_3_1_and_lists_every_route() {
    let doc: serde_json::Value = serde_json::from_str(&tenantry_server::openapi::json()).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/healthz",
        "/readyz",
        "/v1/tenants",
        "/v1/tenants/{id}",
        "/v1/tenants/{id}/suspend",
        "/v1/tenants/{id}/reactivate",
        "/v1/tenants/{id}/events",
        "/v1/tenants/{id}/domains",
        "/v1/tenants/{id}/domains/{domain}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
}
