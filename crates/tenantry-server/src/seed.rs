//! `tenantry seed`: loads many tenants and keys quickly, for benchmarks and
//! load tests. Tenants are `<prefix>-<n>` with that subdomain; every key is
//! a real key (random, hashed); samples of valid keys and of well-formed but
//! unknown keys are written out for the load generator. Rows go in through
//! [`Store::bulk_load`] (multi-row statements, PostgreSQL `COPY`).
#![allow(clippy::disallowed_methods)] // Load-test seeding (`tenantry seed`) writes many tenants in one transaction and records nothing: a development tool, not a change path.

use crate::resolution::keys::mint;
use anyhow::Context;
use chrono::Utc;
use std::io::Write;
use std::path::Path;
use tenantry_core::TenantId;
use tenantry_core::keys::{ApiKey, Environment, KeyKind, Scopes};
use tenantry_core::tenant::NewTenant;
use tenantry_core::values::{Metadata, PlanName, Region, Subdomain, TenantName};
use tenantry_store::Store;

pub struct SeedPlan {
    pub tenants: usize,
    pub keys_per_tenant: usize,
    pub prefix: String,
    /// How many valid and unknown keys to write to `out_dir`.
    pub sample: usize,
}

/// Seeds and writes `valid-keys.txt`, `unknown-keys.txt` and
/// `subdomains.txt` (one per line) into `out_dir`.
pub async fn seed(store: &Store, plan: &SeedPlan, out_dir: &Path) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    seed_with_progress(store, plan, out_dir, &|done, keys| {
        if done % 100_000 == 0 {
            eprintln!(
                "seeded {done} tenants, {keys} keys ({:.0?})",
                started.elapsed()
            );
        }
    })
    .await
}

/// Tenants per transaction: large enough that commits and statements are
/// few, small enough that a chunk's keys (10 per tenant: ~10 MB) stay modest.
const CHUNK: usize = 10_000;

/// One chunk, made ready to write.
struct Chunk {
    tenants: Vec<NewTenant>,
    keys: Vec<ApiKey>,
    /// The sampled keys' secrets, for `valid-keys.txt`.
    sampled: Vec<String>,
}

/// [`seed`], calling `progress(tenants done, keys made)` after each
/// transaction of up to [`CHUNK`] tenants (the CLI draws a progress bar with
/// it). Keys are made (random, hashed as the server verifies them) on every
/// core while the previous chunk is written.
pub async fn seed_with_progress(
    store: &Store,
    plan: &SeedPlan,
    out_dir: &Path,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> anyhow::Result<()> {
    std::fs::create_dir_all(out_dir)?;
    let mut valid = std::io::BufWriter::new(std::fs::File::create(out_dir.join("valid-keys.txt"))?);
    let mut subdomains =
        std::io::BufWriter::new(std::fs::File::create(out_dir.join("subdomains.txt"))?);
    // Checked once here, so that chunks cannot fail to build.
    TenantId::parse(&format!("{}-0", plan.prefix))
        .and_then(|id| Subdomain::parse("subdomain", id.as_str()).map(|_| ()))
        .context("invalid seed prefix")?;
    let now = Utc::now();
    let total_keys = plan.tenants * plan.keys_per_tenant;
    // Every n-th key goes to the sample, spread over all tenants.
    let every = (total_keys / plan.sample.max(1)).max(1);
    let shared = std::sync::Arc::new((plan.prefix.clone(), plan.keys_per_tenant, every, now));
    let make = |range: std::ops::Range<usize>| {
        let shared = shared.clone();
        tokio::task::spawn_blocking(move || {
            let (prefix, keys_per_tenant, every, now) = &*shared;
            make_chunk(prefix, range, *keys_per_tenant, *every, *now)
        })
    };
    let started = std::time::Instant::now();
    let mut keys_made = 0usize;
    let mut next = (plan.tenants > 0).then(|| make(0..CHUNK.min(plan.tenants)));
    let mut done = 0usize;
    while let Some(pending) = next.take() {
        let chunk = pending.await??;
        done += chunk.tenants.len();
        if done < plan.tenants {
            next = Some(make(done..(done + CHUNK).min(plan.tenants)));
        }
        store.bulk_load(&chunk.tenants, &chunk.keys, now).await?;
        for secret in &chunk.sampled {
            writeln!(valid, "{secret}")?;
        }
        for tenant in &chunk.tenants {
            writeln!(subdomains, "{}", tenant.subdomain)?;
        }
        keys_made += chunk.keys.len();
        progress(done, keys_made);
    }
    let mut unknown =
        std::io::BufWriter::new(std::fs::File::create(out_dir.join("unknown-keys.txt"))?);
    for _ in 0..plan.sample {
        writeln!(
            unknown,
            "{}",
            mint(KeyKind::Tenant, Environment::Live).secret.expose()
        )?;
    }
    valid.flush()?;
    subdomains.flush()?;
    unknown.flush()?;
    eprintln!(
        "seeded {} tenants and {} keys in {:.1?}",
        plan.tenants,
        keys_made,
        started.elapsed()
    );
    Ok(())
}

/// Builds the tenants numbered `range` and their keys, on every core.
fn make_chunk(
    prefix: &str,
    range: std::ops::Range<usize>,
    keys_per_tenant: usize,
    every: usize,
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<Chunk> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let per_thread = range.len().div_ceil(threads).max(1);
    let parts: Vec<anyhow::Result<Chunk>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (range.start..range.end)
            .step_by(per_thread)
            .map(|start| {
                let part = start..(start + per_thread).min(range.end);
                scope.spawn(move || make_tenants(prefix, part, keys_per_tenant, every, now))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a seeding thread panicked")))
            })
            .collect()
    });
    let mut chunk = Chunk {
        tenants: Vec::with_capacity(range.len()),
        keys: Vec::with_capacity(range.len() * keys_per_tenant),
        sampled: Vec::new(),
    };
    for part in parts {
        let part = part?;
        chunk.tenants.extend(part.tenants);
        chunk.keys.extend(part.keys);
        chunk.sampled.extend(part.sampled);
    }
    Ok(chunk)
}

fn make_tenants(
    prefix: &str,
    range: std::ops::Range<usize>,
    keys_per_tenant: usize,
    every: usize,
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<Chunk> {
    let scopes = Scopes::parse(
        "scopes",
        &["tenant:read".to_owned(), "usage:write".to_owned()],
    )?;
    let mut chunk = Chunk {
        tenants: Vec::with_capacity(range.len()),
        keys: Vec::with_capacity(range.len() * keys_per_tenant),
        sampled: Vec::new(),
    };
    for n in range {
        let id = format!("{prefix}-{n}");
        let tenant = NewTenant {
            id: TenantId::parse(&id)?,
            name: TenantName::parse("name", &format!("Tenant {n}"))?,
            subdomain: Subdomain::parse("subdomain", &id)?,
            plan: PlanName::parse("plan", ["starter", "professional", "enterprise"][n % 3])?,
            region: Region::parse("region", "local")?,
            metadata: Metadata::empty(),
        };
        for i in 0..keys_per_tenant {
            let minted = mint(KeyKind::Tenant, Environment::Live);
            if (n * keys_per_tenant + i).is_multiple_of(every) {
                chunk.sampled.push(minted.secret.expose().to_owned());
            }
            chunk.keys.push(ApiKey {
                id: tenantry_core::ids::prefixed_id("key", rand::random()),
                tenant_id: tenant.id.clone(),
                key_hash: minted.hash,
                start: minted.start,
                name: format!("seed {i}"),
                scopes: scopes.clone(),
                environment: Environment::Live,
                enabled: true,
                expires_at: None,
                revoked_at: None,
                metadata: Metadata::empty(),
                last_used_at: None,
                rotated_from: None,
                created_at: now,
                updated_at: now,
            });
        }
        chunk.tenants.push(tenant);
    }
    Ok(chunk)
}
