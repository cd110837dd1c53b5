//! Grants: the only way to open a transaction.
//!
//! A [`TenantGrant`] is proof that its holder may act on one tenant; it is
//! returned by the permission check ([`Caller::grant`]) and nothing else in
//! a request path can make one (its fields are private to this module).
//! Workers and commands act on their own authority through the explicit
//! system grants ([`TenantGrant::system`], [`OperatorGrant::system`]), which
//! `clippy.toml` lists under `disallowed-methods` so that each use carries
//! an `#[allow]` with its reason. The store's own `tenant_write`,
//! `tenant_read`, `operator_write` and `operator_read` are disallowed the
//! same way everywhere but here.
//!
//! A grant opens a read transaction ([`TenantGrant::read`]) or a change
//! ([`TenantGrant::change`], see [`crate::change`]), which carries the
//! grant's actor into the audit log.

#![allow(clippy::disallowed_methods)]

use crate::app::AppState;
use crate::change::{OperatorChange, TenantChange};
use crate::http::auth::{Caller, insufficient_scope};
use crate::http::problem::ApiError;
use tenantry_core::TenantId;
use tenantry_core::audit::{ActorType, AuditActor};
use tenantry_core::keys::Scope;
use tenantry_core::tenant::Actor;
use tenantry_store::{OperatorTx, StoreError, TenantTx};

/// Who a grant acts as: the audit log's actor, and the short form the
/// tenant event history has always shown (`operator:root`, `key:key_…`).
#[derive(Debug, Clone)]
pub(crate) struct Principal {
    pub(crate) audit: AuditActor,
    pub(crate) legacy: Actor,
}

impl Principal {
    fn system(worker: &str) -> Principal {
        Principal {
            audit: AuditActor::system(worker),
            legacy: Actor::system(),
        }
    }

    /// A provider's webhook (`source`: `whatsapp`, `twilio`, …),
    /// authenticated by the tenant's own secret for it.
    pub(crate) fn webhook(source: &str) -> Principal {
        Principal {
            audit: AuditActor::new(ActorType::Webhook, source, None),
            legacy: Actor::from_trusted(format!("webhook:{source}")),
        }
    }

    pub(crate) fn api_key(key_id: &str) -> Principal {
        Principal {
            audit: AuditActor::new(ActorType::ApiKey, key_id, None),
            legacy: Actor::from_trusted(format!("key:{key_id}")),
        }
    }

    pub(crate) fn token(key_id: &str) -> Principal {
        Principal {
            audit: AuditActor::new(ActorType::Token, key_id, None),
            legacy: Actor::from_trusted(format!("token:{key_id}")),
        }
    }

    /// A user of an external identity provider: the audit log shows the
    /// provider-namespaced subject, and the issuer (and, for a super admin,
    /// that they acted as an operator).
    pub(crate) fn user(user: &crate::identity::ExternalUser) -> Principal {
        let name = if user.super_admin {
            format!("super admin via {}", user.issuer)
        } else {
            user.issuer.clone()
        };
        Principal {
            audit: AuditActor::new(ActorType::User, user.member_key(), Some(name)),
            legacy: Actor::from_trusted(format!("user:{}", user.member_key())),
        }
    }

    /// The principal behind an authenticated caller.
    pub(crate) fn of(caller: &Caller) -> Principal {
        match caller {
            Caller::Operator {
                user: Some(user), ..
            }
            | Caller::Tenant {
                user: Some(user), ..
            } => Principal::user(user),
            Caller::Operator { actor, root, .. } => {
                let id = actor
                    .as_str()
                    .strip_prefix("operator:")
                    .unwrap_or(actor.as_str());
                Principal {
                    audit: AuditActor::new(
                        ActorType::Operator,
                        id,
                        root.then(|| "root key".to_owned()),
                    ),
                    legacy: actor.clone(),
                }
            }
            Caller::Tenant {
                key_id, via_token, ..
            } => Principal {
                audit: AuditActor::new(
                    if *via_token {
                        ActorType::Token
                    } else {
                        ActorType::ApiKey
                    },
                    key_id.clone(),
                    None,
                ),
                legacy: caller.actor(),
            },
        }
    }
}

/// Proof that the holder may act on one tenant.
#[derive(Debug, Clone)]
pub struct TenantGrant {
    tenant: TenantId,
    principal: Principal,
}

impl TenantGrant {
    /// A worker's or command's own authority over `tenant` (`worker` names
    /// it in the audit log). Disallowed by clippy outside an `#[allow]`.
    pub fn system(tenant: TenantId, worker: &str) -> TenantGrant {
        TenantGrant {
            tenant,
            principal: Principal::system(worker),
        }
    }

    /// A provider's authority over `tenant`, once its delivery verified
    /// with the tenant's own secret (`source` names it in the audit log).
    /// Disallowed by clippy outside an `#[allow]`.
    pub fn webhook(tenant: TenantId, source: &str) -> TenantGrant {
        TenantGrant {
            tenant,
            principal: Principal::webhook(source),
        }
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The actor as the tenant event history shows it.
    pub fn actor(&self) -> &Actor {
        &self.principal.legacy
    }

    pub fn audit_actor(&self) -> &AuditActor {
        &self.principal.audit
    }

    /// A read transaction on this tenant. In PostgreSQL it is read-only:
    /// nothing written through it could commit.
    pub async fn read(&self, state: &AppState) -> Result<TenantTx, StoreError> {
        state.store.tenant_read(&self.tenant).await
    }

    /// A write transaction that records nothing, for bookkeeping that is
    /// not a change anyone made (key last-used times, usage counters, a
    /// quota's consumption). Disallowed by clippy outside an `#[allow]`
    /// saying why: a change to anything a tenant or operator configured
    /// goes through [`TenantGrant::change`].
    pub async fn untracked_write(&self, state: &AppState) -> Result<TenantTx, StoreError> {
        state.store.tenant_write(&self.tenant).await
    }

    /// A change to this tenant: a write transaction whose commit records
    /// the change (see [`crate::change`]).
    pub async fn change(&self, state: &AppState) -> Result<TenantChange, StoreError> {
        let tx = state.store.tenant_write(&self.tenant).await?;
        Ok(TenantChange::new(state, tx, self.principal.clone()))
    }
}

/// Proof that the holder is an operator (or the server itself).
#[derive(Debug, Clone)]
pub struct OperatorGrant {
    principal: Principal,
}

impl OperatorGrant {
    /// The server's own authority on the operator path (cross-tenant
    /// lookups, workers, commands). Disallowed by clippy outside an
    /// `#[allow]`.
    pub fn system(worker: &str) -> OperatorGrant {
        OperatorGrant {
            principal: Principal::system(worker),
        }
    }

    pub(crate) fn from_caller(caller: &Caller) -> OperatorGrant {
        OperatorGrant {
            principal: Principal::of(caller),
        }
    }

    pub fn actor(&self) -> &Actor {
        &self.principal.legacy
    }

    pub fn audit_actor(&self) -> &AuditActor {
        &self.principal.audit
    }

    /// An operator may act on any tenant.
    pub fn on_tenant(&self, tenant: TenantId) -> TenantGrant {
        TenantGrant {
            tenant,
            principal: self.principal.clone(),
        }
    }

    pub async fn read(&self, state: &AppState) -> Result<OperatorTx, StoreError> {
        state.store.operator_read().await
    }

    /// A write on the operator path that records nothing (bookkeeping: see
    /// [`TenantGrant::untracked_write`]). Disallowed by clippy outside an
    /// `#[allow]` saying why.
    pub async fn untracked_write(&self, state: &AppState) -> Result<OperatorTx, StoreError> {
        state.store.operator_write().await
    }

    /// A change on the operator path (the tenant registry, operator keys,
    /// plans, meters, the keyring), recorded in the operator's audit chain
    /// unless it moves on to a tenant ([`OperatorChange::scope_to`]).
    pub async fn change(&self, state: &AppState) -> Result<OperatorChange, StoreError> {
        let tx = state.store.operator_write().await?;
        Ok(OperatorChange::new(state, tx, self.principal.clone()))
    }
}

impl Caller {
    /// The permission check: a grant on `tenant` when the caller may act on
    /// it with `scope`. Another tenant's resources answer 404 (their
    /// existence is not revealed); a missing scope answers 403.
    pub fn grant(&self, tenant: &str, scope: Scope) -> Result<TenantGrant, ApiError> {
        let id = TenantId::parse(tenant).map_err(|_| ApiError::tenant_not_found())?;
        if let Caller::Tenant {
            tenant: own,
            scopes,
            ..
        } = self
        {
            if own.id != id {
                return Err(ApiError::tenant_not_found());
            }
            if !scopes.grants(scope) {
                return Err(insufficient_scope(scope));
            }
        }
        Ok(TenantGrant {
            tenant: id,
            principal: Principal::of(self),
        })
    }

    /// A grant on the caller's own tenant (tenant callers only).
    pub fn own_grant(&self, scope: Scope) -> Result<Option<TenantGrant>, ApiError> {
        match self {
            Caller::Tenant { tenant, .. } => self.grant(tenant.id.as_str(), scope).map(Some),
            Caller::Operator { .. } => Ok(None),
        }
    }
}
