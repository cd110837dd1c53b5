//! Plans, tenant configuration, usage metering, quotas and rate limits.
//!
//! Changes (plans, meters, a tenant's configuration) go through the change
//! path and are audited; metering (usage events, quota consumption, rate
//! limits) is bookkeeping written through untracked transactions.

pub mod config;
pub mod group_commit;
pub mod leases;
pub mod meters;
pub mod plans;
pub mod quotas;
pub mod ratelimit;
pub mod service;
pub mod tenant_config;
pub mod usage;
