//! `tenantry seed`: loads many tenants and keys quickly, for benchmarks and
//! load tests. Tenants are `<prefix>-<n>` with that subdomain; every key is
//! a real key (random, hashed); samples of valid keys and of well-formed but
//! unknown keys are written out for the load generator.
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
        if done % 10_000 == 0 {
            eprintln!(
                "seeded {done} tenants, {keys} keys ({:.0?})",
                started.elapsed()
            );
        }
    })
    .await
}

/// [`seed`], calling `progress(tenants done, keys made)` after each batch
/// of up to 1000 tenants (the CLI draws a progress bar with it).
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
    let now = Utc::now();
    let scopes = Scopes::parse(
        "scopes",
        &["tenant:read".to_owned(), "usage:write".to_owned()],
    )?;
    let total_keys = plan.tenants * plan.keys_per_tenant;
    // Every n-th key goes to the sample, spread over all tenants.
    let every = (total_keys / plan.sample.max(1)).max(1);
    let mut key_number = 0usize;
    let started = std::time::Instant::now();
    for (chunk_index, chunk) in (0..plan.tenants)
        .collect::<Vec<_>>()
        .chunks(1000)
        .enumerate()
    {
        let tenants: Vec<NewTenant> = chunk
            .iter()
            .map(|n| {
                let id = format!("{}-{n}", plan.prefix);
                Ok(NewTenant {
                    id: TenantId::parse(&id)?,
                    name: TenantName::parse("name", &format!("Tenant {n}"))?,
                    subdomain: Subdomain::parse("subdomain", &id)?,
                    plan: PlanName::parse(
                        "plan",
                        ["starter", "professional", "enterprise"][n % 3],
                    )?,
                    region: Region::parse("region", "local")?,
                    metadata: Metadata::empty(),
                })
            })
            .collect::<Result<_, tenantry_core::ValidationError>>()
            .context("invalid seed prefix")?;
        let mut op = store.operator_write().await?;
        op.insert_tenants_bulk(&tenants, now).await?;
        let mut tx = op.scope_to(&tenants[0].id).await?;
        for tenant in &tenants {
            tx = tx.rescope(&tenant.id, store.request_role()).await?;
            let mut keys = Vec::with_capacity(plan.keys_per_tenant);
            for i in 0..plan.keys_per_tenant {
                let minted = mint(KeyKind::Tenant, Environment::Live);
                if key_number.is_multiple_of(every) {
                    writeln!(valid, "{}", minted.secret.expose())?;
                }
                key_number += 1;
                keys.push(ApiKey {
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
            tx.insert_keys(&keys).await?;
            writeln!(subdomains, "{}", tenant.subdomain)?;
        }
        tx.commit().await?;
        progress(chunk_index * 1000 + chunk.len(), key_number);
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
        key_number,
        started.elapsed()
    );
    Ok(())
}
