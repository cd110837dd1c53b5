//! Regions and data residency (docs/regions.md): which tenants this node
//! must not serve (they live in another region, or are being moved out),
//! and the operator workflow that moves a tenant to another region.
//!
//! Every region's database holds a `region_directory` saying where each
//! tenant lives. A node keeps the entries that concern it (tenants of other
//! regions, tenants being moved out) in memory, reread every
//! `region_directory_refresh`, so the check on each request is one map
//! lookup, and costs nothing at all with a single region.

use crate::app::AppState;
use crate::grant::OperatorGrant;
use crate::http::codes::Code;
use crate::http::problem::ApiError;
use crate::resolution::cache::{Invalidation, subdomain_key};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use tenantry_core::TenantId;
use tenantry_core::audit::Chain;
use tenantry_store::regions::{DirectoryEntry, TableCount};
use tenantry_store::{Store, StoreError};
use tokio::sync::watch;

/// Where a tenant this node knows of, but must not serve, is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Its home is that other region.
    Elsewhere(String),
    /// It is being moved out of this region: frozen.
    Moving,
}

/// The region state of one server process.
#[derive(Default)]
pub struct Regions {
    placements: RwLock<Arc<HashMap<String, Placement>>>,
    /// The other regions' databases, opened on first use.
    peers: tokio::sync::Mutex<HashMap<String, AppState>>,
    /// Moves whose copy runs in this process.
    running: Mutex<HashSet<String>>,
    /// Bumped by every entry this process writes, so that a reread that
    /// began before the write does not undo it.
    written: std::sync::atomic::AtomicU64,
}

impl Regions {
    pub fn placement(&self, tenant: &str) -> Option<Placement> {
        let map = self.placements.read().unwrap_or_else(|p| p.into_inner());
        map.get(tenant).cloned()
    }

    fn generation(&self) -> u64 {
        self.written.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Replaces the map with a reread, unless this process wrote an entry
    /// since the reread began (the next one picks it up).
    fn replace(&self, entries: &[DirectoryEntry], mine: &str, began: u64) {
        let map = entries
            .iter()
            .filter_map(|e| placement_of(e, mine).map(|p| (e.tenant.clone(), p)))
            .collect();
        let mut guard = self.placements.write().unwrap_or_else(|p| p.into_inner());
        if self.generation() == began {
            *guard = Arc::new(map);
        }
    }

    /// Applies one entry this process just wrote, before the next reread.
    fn note(&self, entry: &DirectoryEntry, mine: &str) {
        let mut guard = self.placements.write().unwrap_or_else(|p| p.into_inner());
        self.written
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut map = (**guard).clone();
        match placement_of(entry, mine) {
            Some(p) => map.insert(entry.tenant.clone(), p),
            None => map.remove(&entry.tenant),
        };
        *guard = Arc::new(map);
    }
}

fn placement_of(entry: &DirectoryEntry, mine: &str) -> Option<Placement> {
    if entry.region != mine {
        Some(Placement::Elsewhere(entry.region.clone()))
    } else if entry.moving_to.is_some() {
        Some(Placement::Moving)
    } else {
        None
    }
}

/// Whether this node may serve `tenant`: `421 wrong_region` when it lives
/// in another region, `503 tenant_moving` while it is moved out.
pub fn admit(state: &AppState, tenant: &str) -> Result<(), ApiError> {
    if state.config.regions.is_empty() {
        return Ok(());
    }
    match state.regions.placement(tenant) {
        None => Ok(()),
        Some(Placement::Moving) => Err(ApiError::TenantMoving),
        Some(Placement::Elsewhere(region)) => Err(wrong_region(state, &region)),
    }
}

pub fn wrong_region(state: &AppState, region: &str) -> ApiError {
    ApiError::WrongRegion {
        url: state
            .config
            .region_url(region)
            .unwrap_or_default()
            .to_owned(),
        region: region.to_owned(),
    }
}

fn conflict(detail: impl Into<std::borrow::Cow<'static, str>>) -> ApiError {
    ApiError::Conflict {
        code: Code::MoveConflict,
        detail: detail.into(),
        field: None,
    }
}

/// The tenant a request names in its path or in `X-Tenant-ID` is checked
/// against the directory before anything else runs (so a tenant of another
/// region is never looked up here). The move endpoints are exempt: they
/// are how an operator follows a move. Requests without any credential go
/// on (to their `401`).
pub async fn gate(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if state.config.regions.is_empty() || crate::http::auth::credential(request.headers()).is_none()
    {
        return next.run(request).await;
    }
    let mut segments = request.uri().path().trim_start_matches('/').split('/');
    let named = match (segments.next(), segments.next()) {
        (Some("v1"), Some("tenants")) => segments.next(),
        (Some("v1"), Some("operator")) if segments.next() == Some("tenants") => segments.next(),
        _ => None,
    };
    let on_move = segments.next() == Some("move");
    let header = crate::http::auth::tenant_header(request.headers());
    for tenant in named.filter(|_| !on_move).into_iter().chain(header) {
        if let Err(err) = admit(&state, tenant) {
            return err.into_response();
        }
    }
    next.run(request).await
}

/// Rereads the directory of this region's database.
pub async fn refresh(state: &AppState) -> Result<Vec<DirectoryEntry>, StoreError> {
    let began = state.regions.generation();
    let mut op = directory_grant().read(state).await?;
    let entries = op.region_directory().await?;
    op.commit().await?;
    state
        .regions
        .replace(&entries, state.config.region.as_str(), began);
    Ok(entries)
}

fn directory_grant() -> OperatorGrant {
    #[allow(clippy::disallowed_methods)] // system grant: the region directory and moves
    OperatorGrant::system("regions")
}

/// Keeps the directory fresh, and resumes the copies of moves a crash
/// interrupted (a move left `copying` with no copy running here).
pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    if state.config.regions.is_empty() {
        return;
    }
    let mut interval = tokio::time::interval(state.config.region_directory_refresh);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut resumed = false;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait_for(|stop| *stop) => break,
        }
        match refresh(&state).await {
            Ok(entries) if !resumed => {
                resumed = true;
                for entry in entries {
                    if entry.region == state.config.region.as_str()
                        && entry.move_state.as_deref() == Some("copying")
                        && let (Some(to), Ok(id)) =
                            (entry.moving_to.clone(), TenantId::parse(&entry.tenant))
                    {
                        tracing::info!(tenant_id = %id, to = %to, "resuming an interrupted move");
                        spawn_copy(&state, id, to);
                    }
                }
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "region directory reread failed; will retry"),
        }
    }
}

/// The state of another region's database, opened on first use (with this
/// node's keyring: both regions must share it, see docs/regions.md).
async fn peer(state: &AppState, region: &str) -> Result<AppState, ApiError> {
    let mut peers = state.regions.peers.lock().await;
    if let Some(peer) = peers.get(region) {
        return Ok(peer.clone());
    }
    let Some((_, url)) = state
        .config
        .region_databases
        .iter()
        .find(|(r, _)| r.as_str() == region)
    else {
        return Err(conflict(format!(
            "no database is configured for region '{region}' (region_databases)"
        )));
    };
    let options = tenantry_store::DatabaseOptions::Postgres {
        url: url.expose().to_owned(),
        max_connections: 4,
        timeout: state.config.database_timeout,
    };
    let open = async {
        let mut store = Store::connect(&options).await?;
        store.prepare().await?;
        Ok::<_, StoreError>(store)
    };
    let store = open.await.map_err(|err| {
        tracing::warn!(region, error = %err, "cannot open the region's database");
        ApiError::DatabaseUnavailable
    })?;
    let vault = crate::vault::Vault::load(&state.config).map_err(|err| {
        tracing::warn!(error = %err, "cannot load the keyring for another region");
        ApiError::Internal
    })?;
    let peer = AppState::for_command(store, state.config.clone(), vault).map_err(|err| {
        tracing::warn!(error = %err, "cannot set up another region's state");
        ApiError::Internal
    })?;
    peers.insert(region.to_owned(), peer.clone());
    Ok(peer)
}

/// Writes one directory entry into `state`'s database, audited in its
/// operator chain, and notes it in this process when it is this region's.
async fn put_entry(
    state: &AppState,
    entry: DirectoryEntry,
    action: &str,
    local: Option<&AppState>,
) -> Result<(), ApiError> {
    let mut change = directory_grant().change(state).await?;
    change.tx().put_region_entry(&entry).await?;
    change.audit(
        action,
        vec![super::target(&TenantId::from_trusted(entry.tenant.clone()))],
        json!({ "region": entry.region, "moving_to": entry.moving_to, "move_state": entry.move_state }),
    );
    change.invalidate(Invalidation::Tenant(TenantId::from_trusted(
        entry.tenant.clone(),
    )));
    change.commit().await?;
    if let Some(local) = local {
        local.regions.note(&entry, local.config.region.as_str());
    }
    Ok(())
}

fn entry(
    state: &AppState,
    tenant: &TenantId,
    region: &str,
    moving_to: Option<&str>,
    move_state: Option<&str>,
    report: Option<serde_json::Value>,
) -> DirectoryEntry {
    DirectoryEntry {
        tenant: tenant.to_string(),
        region: region.to_owned(),
        moving_to: moving_to.map(str::to_owned),
        move_state: move_state.map(str::to_owned),
        move_report: report.map(|r| r.to_string()),
        updated_at: state.clock.now(),
    }
}

/// A tenant was created here: every other region's directory learns that
/// it lives here, so their nodes answer `421` for it. A region whose
/// database cannot be reached is logged and skipped (its nodes answer `404`
/// for the tenant until a move or a later creation writes the entry).
pub async fn record_created(state: &AppState, tenant: &TenantId) {
    let mine = state.config.region.as_str();
    for (region, _) in &state.config.region_databases {
        let written = async {
            let peer = peer(state, region.as_str()).await?;
            let e = entry(state, tenant, mine, None, None, None);
            put_entry(&peer, e, "region.directory_updated", None).await
        };
        if let Err(err) = written.await {
            tracing::warn!(tenant_id = %tenant, region = %region, error = ?err,
                "could not record the new tenant in another region's directory");
        }
    }
}

/// A move as `GET /v1/tenants/{id}/move` reports it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct MoveStatus {
    pub tenant_id: String,
    /// The tenant's home region, as this node's directory has it.
    pub region: String,
    /// The region the tenant is being moved to, while it is.
    pub moving_to: Option<String>,
    /// `copying`, `copied` (ready for `/move/complete`), `failed`,
    /// `done` or `aborted`; absent when the tenant was never moved.
    pub state: Option<String>,
    /// Rows per table, the audit check, or the error, once known.
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<serde_json::Value>,
}

fn status_of(tenant: &TenantId, entry: Option<DirectoryEntry>, mine: &str) -> MoveStatus {
    match entry {
        Some(e) => MoveStatus {
            tenant_id: tenant.to_string(),
            region: e.region,
            moving_to: e.moving_to,
            state: e.move_state,
            report: e.move_report.and_then(|r| serde_json::from_str(&r).ok()),
        },
        None => MoveStatus {
            tenant_id: tenant.to_string(),
            region: mine.to_owned(),
            moving_to: None,
            state: None,
            report: None,
        },
    }
}

/// The move status of a tenant, from this region's directory (also after
/// the tenant left: the directory keeps where it went).
pub async fn move_status(state: &AppState, tenant: &TenantId) -> Result<MoveStatus, ApiError> {
    let mut op = directory_grant().read(state).await?;
    let found = op.region_entry(tenant).await?;
    let known = op.get_tenant(tenant).await?.is_some();
    op.commit().await?;
    if found.is_none() && !known {
        return Err(ApiError::tenant_not_found());
    }
    Ok(status_of(tenant, found, state.config.region.as_str()))
}

/// Starts moving a tenant of this region to `to`: freezes it (its traffic
/// gets `503 tenant_moving` on every node of the region), then, after the
/// drain time, copies its rows in the background. Asking again for the
/// same move reports it (and restarts one that failed).
pub async fn start_move(
    state: &AppState,
    grant: &OperatorGrant,
    tenant: &TenantId,
    to: &str,
) -> Result<MoveStatus, ApiError> {
    let mine = state.config.region.as_str();
    if state.store.backend_name() != "postgres" {
        return Err(conflict("moving tenants between regions needs PostgreSQL"));
    }
    // The target must be reachable before anything is frozen.
    peer(state, to).await?;
    let mut change = grant.change(state).await?;
    let current = change.tx().region_entry_for_update(tenant).await?;
    let Some(found) = change.tx().get_tenant(tenant).await? else {
        return Err(ApiError::tenant_not_found());
    };
    if matches!(
        found.status,
        tenantry_core::tenant::TenantStatus::Provisioning
            | tenantry_core::tenant::TenantStatus::ProvisioningFailed
    ) {
        return Err(conflict(
            "the tenant is being provisioned; move it afterwards",
        ));
    }
    if let Some(e) = &current
        && let Some(moving_to) = &e.moving_to
    {
        if moving_to != to {
            return Err(conflict(format!(
                "the tenant is being moved to '{moving_to}'; complete or abort that move first"
            )));
        }
        if e.move_state.as_deref() != Some("failed") {
            drop(change);
            let status = status_of(tenant, current, mine);
            if status.state.as_deref() == Some("copying") {
                spawn_copy(state, tenant.clone(), to.to_owned());
            }
            return Ok(status);
        }
    }
    let frozen = entry(state, tenant, mine, Some(to), Some("copying"), None);
    change.tx().put_region_entry(&frozen).await?;
    change.audit(
        "tenant.move_started",
        vec![super::target(tenant)],
        json!({ "from": mine, "to": to }),
    );
    change.invalidate(Invalidation::Tenant(tenant.clone()));
    // The tenant's own chain records it too (and travels with it).
    let mut change = change.scope_to(tenant).await?;
    change.audit(
        "tenant.move_started",
        vec![super::target(tenant)],
        json!({ "from": mine, "to": to }),
    );
    change.commit().await?;
    state.regions.note(&frozen, mine);
    tracing::info!(tenant_id = %tenant, to, "tenant frozen for a move");
    spawn_copy(state, tenant.clone(), to.to_owned());
    Ok(status_of(tenant, Some(frozen), mine))
}

fn spawn_copy(state: &AppState, tenant: TenantId, to: String) {
    {
        let mut running = state
            .regions
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if !running.insert(tenant.to_string()) {
            return;
        }
    }
    let state = state.clone();
    tokio::spawn(async move {
        tokio::time::sleep(state.config.region_move_drain).await;
        let mine = state.config.region.to_string();
        let outcome = copy(&state, &tenant, &to).await;
        let (move_state, report) = match outcome {
            Ok(report) => ("copied", report),
            Err(why) => {
                tracing::warn!(tenant_id = %tenant, to = %to, error = %why, "tenant move failed");
                ("failed", json!({ "error": why }))
            }
        };
        let e = entry(
            &state,
            &tenant,
            &mine,
            Some(&to),
            Some(move_state),
            Some(report),
        );
        let action = format!("tenant.move_{move_state}");
        if let Err(err) = put_entry(&state, e, &action, Some(&state)).await {
            tracing::warn!(tenant_id = %tenant, error = ?err, "could not record the move's outcome");
        }
        state
            .regions
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(tenant.as_str());
    });
}

/// Copies the tenant into the target region and checks the copy: the same
/// rows per table on both sides, and the tenant's audit chain verifying in
/// the target. Returns the report; an error is a sentence for the operator.
async fn copy(state: &AppState, tenant: &TenantId, to: &str) -> Result<serde_json::Value, String> {
    let mine = state.config.region.as_str();
    let target = peer(state, to).await.map_err(|e| format!("{e:?}"))?;
    // A tenant of the same id that lives in the target already is not ours
    // to overwrite; a copy an earlier attempt left there is.
    let mut op = directory_grant()
        .read(&target)
        .await
        .map_err(|e| e.to_string())?;
    let there = op.get_tenant(tenant).await.map_err(|e| e.to_string())?;
    let their_entry = op.region_entry(tenant).await.map_err(|e| e.to_string())?;
    op.commit().await.map_err(|e| e.to_string())?;
    let ours = their_entry
        .as_ref()
        .is_some_and(|e| e.region == mine && e.move_state.as_deref() == Some("incoming"));
    if there.is_some() && !ours {
        return Err(format!("region '{to}' already has a tenant with this id"));
    }
    let incoming = entry(state, tenant, mine, Some(to), Some("incoming"), None);
    put_entry(&target, incoming, "tenant.move_incoming", None)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let copied = tenantry_store::regions::copy_tenant(&state.store, &target.store, tenant)
        .await
        .map_err(|e| e.to_string())?;
    // The tenant's checkpoints were signed here: the target must know the keys.
    tenantry_store::regions::copy_checkpoint_verifiers(&state.store, &target.store)
        .await
        .map_err(|e| e.to_string())?;
    let (source_counts, target_counts) = counts(state, &target, tenant).await?;
    if source_counts != target_counts || source_counts != copied {
        return Err("the row counts of the copy differ from the source's".into());
    }
    let audit = crate::audit::verify::verify_stored(&target.store, &Chain::Tenant(tenant.clone()))
        .await
        .map_err(|e| e.to_string())?;
    if !audit.ok {
        return Err(format!(
            "the tenant's audit chain does not verify in region '{to}': {}",
            audit.reason.unwrap_or_default()
        ));
    }
    Ok(json!({
        "tables": copied,
        "rows": copied.iter().map(|t| t.rows).sum::<i64>(),
        "audit": { "ok": true, "size": audit.size },
    }))
}

async fn counts(
    state: &AppState,
    target: &AppState,
    tenant: &TenantId,
) -> Result<(Vec<TableCount>, Vec<TableCount>), String> {
    let source = tenantry_store::regions::tenant_row_counts(&state.store, tenant)
        .await
        .map_err(|e| e.to_string())?;
    let there = tenantry_store::regions::tenant_row_counts(&target.store, tenant)
        .await
        .map_err(|e| e.to_string())?;
    Ok((source, there))
}

/// Switches a copied tenant over: the target's directory makes it its own,
/// this region's says it left, and its rows here are purged (audited in
/// both operator chains). Resumable: run again after a crash, it goes on
/// from where it stopped.
pub async fn complete_move(state: &AppState, tenant: &TenantId) -> Result<MoveStatus, ApiError> {
    let mine = state.config.region.to_string();
    let status = move_status(state, tenant).await?;
    let (Some(to), Some("copied")) = (status.moving_to.clone(), status.state.as_deref()) else {
        return Err(conflict(match status.state.as_deref() {
            Some("copying") => "the copy is still running; see GET /v1/tenants/{id}/move",
            Some("failed") => "the copy failed; move again or abort",
            _ => "the tenant is not being moved",
        }));
    };
    let target = peer(state, &to).await?;
    let mut op = directory_grant().read(&target).await?;
    let switched = op
        .region_entry(tenant)
        .await?
        .is_some_and(|e| e.region == to);
    op.commit().await?;
    if !switched {
        // Nothing may have changed since the copy was checked.
        let (source, there) = counts(state, &target, tenant).await.map_err(|why| {
            tracing::warn!(tenant_id = %tenant, error = %why, "counting a moved tenant failed");
            ApiError::DatabaseUnavailable
        })?;
        if source != there {
            return Err(conflict(
                "the tenant's rows differ between the regions since the copy; abort or move again",
            ));
        }
        let home = entry(state, tenant, &to, None, None, None);
        put_entry(&target, home, "tenant.moved_in", None).await?;
    }
    let subdomain = {
        let mut op = directory_grant().read(state).await?;
        let t = op.get_tenant(tenant).await?;
        op.commit().await?;
        t.map(|t| t.subdomain.to_string())
    };
    // Purged first, then recorded as gone: a crash between the two leaves
    // the tenant frozen here, and running this again finishes the move.
    if let Some(sub) = subdomain {
        let grant = directory_grant().on_tenant(tenant.clone());
        let (mut change, _) = super::lock(state, &grant).await?;
        change.audit(
            "tenant.purged_after_move",
            vec![super::target(tenant)],
            json!({ "from": mine, "to": to }),
        );
        change.purge().await?;
        state.forget(&[Invalidation::Host(subdomain_key(&sub))]);
    }
    let left = entry(
        state,
        tenant,
        &to,
        None,
        Some("done"),
        status.report.clone(),
    );
    put_entry(state, left.clone(), "tenant.moved_out", Some(state)).await?;
    tracing::info!(tenant_id = %tenant, to = %to, "tenant moved");
    Ok(status_of(tenant, Some(left), &mine))
}

/// Gives up a move that has not been completed: the copy in the target
/// region is deleted and the tenant is served here again.
pub async fn abort_move(state: &AppState, tenant: &TenantId) -> Result<MoveStatus, ApiError> {
    let mine = state.config.region.to_string();
    let status = move_status(state, tenant).await?;
    let Some(to) = status.moving_to.clone() else {
        return Err(conflict("the tenant is not being moved"));
    };
    let running = state
        .regions
        .running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .contains(tenant.as_str());
    if running {
        return Err(conflict(
            "the copy is still running; abort it once GET /v1/tenants/{id}/move says copied or failed",
        ));
    }
    let target = peer(state, &to).await?;
    let mut op = directory_grant().read(&target).await?;
    let theirs = op.region_entry(tenant).await?;
    op.commit().await?;
    if theirs.as_ref().is_some_and(|e| e.region == to) {
        return Err(conflict(
            "the target region already serves the tenant; complete the move",
        ));
    }
    if theirs.is_some() {
        tenantry_store::regions::delete_tenant_copy(&target.store, tenant).await?;
    }
    let back = entry(state, tenant, &mine, None, None, None);
    put_entry(&target, back.clone(), "tenant.move_aborted", None).await?;
    let here = entry(state, tenant, &mine, None, Some("aborted"), status.report);
    put_entry(state, here.clone(), "tenant.move_aborted", Some(state)).await?;
    Ok(status_of(tenant, Some(here), &mine))
}
