//! Plans, tenant configuration, usage metering, quotas and rate limits.

pub mod config;
pub mod quotas;
pub mod ratelimit;
pub mod service;
pub mod usage;
