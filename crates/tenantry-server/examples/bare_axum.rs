//! The baseline of `bench/resolve.sh`: a bare axum server answering
//! `GET /healthz` with the same body as Tenantry's (`{"status":"ok"}`), with
//! no middleware at all, served by `axum::serve` (with `TCP_NODELAY`, as
//! Tenantry sets it). Tenantry's own `/healthz`
//! measured against it shows what Tenantry's request path costs (request id,
//! tracing, metrics, timeouts, limits). `POST /echo` answers the JSON body it
//! is sent: with the same rotating bodies as `POST /v1/keys/verify`, it is
//! the ceiling of what the load generator and the HTTP stack allow for
//! requests with bodies (issue 16).
//!
//!   bare_axum 127.0.0.1:3999

use axum::Json;
use axum::Router;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use tenantry_api::health::Health;

async fn echo(Json(body): Json<serde_json::Value>) -> Json<serde_json::Value> {
    Json(body)
}

async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3999".to_owned());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("bare axum listening on http://{}", listener.local_addr()?);
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(
        listener,
        Router::new()
            .route("/healthz", get(healthz))
            .route("/echo", post(echo)),
    )
    .await?;
    Ok(())
}
