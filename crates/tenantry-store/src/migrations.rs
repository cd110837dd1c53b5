//! Migrations are embedded in the binary, one folder per backend, and applied
//! by sqlx's migrator (checksums, a lock against concurrent starts). Never edit
//! a released migration: add a new file.

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use std::future::Future;
use std::pin::Pin;

#[derive(Debug)]
struct Embedded(&'static [(i64, &'static str, &'static str)]);

#[rustfmt::skip]
const SQLITE: Embedded = Embedded(&[
    (1, "tenants", include_str!("../migrations/sqlite/0001_tenants.sql")),
    (2, "api_keys", include_str!("../migrations/sqlite/0002_api_keys.sql")),
    (3, "vault", include_str!("../migrations/sqlite/0003_vault.sql")),
    (4, "limits", include_str!("../migrations/sqlite/0004_limits.sql")),
    (5, "vault_hardening", include_str!("../migrations/sqlite/0005_vault_hardening.sql")),
    (7, "domain_verification", include_str!("../migrations/sqlite/0007_domain_verification.sql")),
    (8, "defence_in_depth", include_str!("../migrations/sqlite/0008_defence_in_depth.sql")),
    (9, "audit", include_str!("../migrations/sqlite/0009_audit.sql")),
    (10, "idempotency", include_str!("../migrations/sqlite/0010_idempotency.sql")),
    (11, "audit_checkpoints", include_str!("../migrations/sqlite/0011_audit_checkpoints.sql")),
    (12, "webhooks", include_str!("../migrations/sqlite/0012_webhooks.sql")),
    (13, "access_log_in_audit", include_str!("../migrations/sqlite/0013_access_log_in_audit.sql")),
    (14, "inbound", include_str!("../migrations/sqlite/0014_inbound.sql")),
    (15, "audit_keys_private", include_str!("../migrations/sqlite/0015_audit_keys_private.sql")),
    (16, "provisioning", include_str!("../migrations/sqlite/0016_provisioning.sql")),
    (17, "identity", include_str!("../migrations/sqlite/0017_identity.sql")),
    (19, "widgets", include_str!("../migrations/sqlite/0019_widgets.sql")),
    (26, "message_routes", include_str!("../migrations/sqlite/0026_message_routes.sql")),
    (33, "quota_leases", include_str!("../migrations/sqlite/0033_quota_leases.sql")),
    (34, "citus_distributable", include_str!("../migrations/sqlite/0034_citus_distributable.sql")),
    (35, "region_directory", include_str!("../migrations/sqlite/0035_region_directory.sql")),
]);

#[rustfmt::skip]
const POSTGRES: Embedded = Embedded(&[
    (1, "tenants", include_str!("../migrations/postgres/0001_tenants.sql")),
    (2, "api_keys", include_str!("../migrations/postgres/0002_api_keys.sql")),
    (3, "vault", include_str!("../migrations/postgres/0003_vault.sql")),
    (4, "limits", include_str!("../migrations/postgres/0004_limits.sql")),
    (5, "vault_hardening", include_str!("../migrations/postgres/0005_vault_hardening.sql")),
    (7, "domain_verification", include_str!("../migrations/postgres/0007_domain_verification.sql")),
    (8, "defence_in_depth", include_str!("../migrations/postgres/0008_defence_in_depth.sql")),
    (9, "audit", include_str!("../migrations/postgres/0009_audit.sql")),
    (10, "idempotency", include_str!("../migrations/postgres/0010_idempotency.sql")),
    (11, "audit_checkpoints", include_str!("../migrations/postgres/0011_audit_checkpoints.sql")),
    (12, "webhooks", include_str!("../migrations/postgres/0012_webhooks.sql")),
    (13, "access_log_in_audit", include_str!("../migrations/postgres/0013_access_log_in_audit.sql")),
    (14, "inbound", include_str!("../migrations/postgres/0014_inbound.sql")),
    (15, "audit_keys_private", include_str!("../migrations/postgres/0015_audit_keys_private.sql")),
    (16, "provisioning", include_str!("../migrations/postgres/0016_provisioning.sql")),
    (17, "identity", include_str!("../migrations/postgres/0017_identity.sql")),
    (19, "widgets", include_str!("../migrations/postgres/0019_widgets.sql")),
    (26, "message_routes", include_str!("../migrations/postgres/0026_message_routes.sql")),
    (33, "quota_leases", include_str!("../migrations/postgres/0033_quota_leases.sql")),
    (34, "citus_distributable", include_str!("../migrations/postgres/0034_citus_distributable.sql")),
    (35, "region_directory", include_str!("../migrations/postgres/0035_region_directory.sql")),
]);

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 's>> {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|(version, name, sql)| {
                    Migration::new(
                        *version,
                        (*name).into(),
                        MigrationType::Simple,
                        (*sql).into(),
                        false,
                    )
                })
                .collect())
        })
    }
}

pub(crate) async fn sqlite() -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(SQLITE).await
}

pub(crate) async fn postgres() -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(POSTGRES).await
}
