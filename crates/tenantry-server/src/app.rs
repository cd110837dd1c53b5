//! The state every request handler shares.

use crate::config::Config;
use crate::http::auth::RootKey;
use crate::ids::IdGenerator;
use std::sync::Arc;
use tenantry_core::Clock;
use tenantry_store::Store;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub config: Config,
    pub root_key: RootKey,
    pub ids: IdGenerator,
}

impl AppState {
    pub fn new(store: Store, clock: Arc<dyn Clock>, config: Config, root_key: RootKey) -> Self {
        Self(Arc::new(Inner {
            store,
            clock,
            config,
            root_key,
            ids: IdGenerator::default(),
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
