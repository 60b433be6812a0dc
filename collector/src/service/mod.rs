//! gRPC services. Each RPC: authorize from the certificate, validate, call
//! the store on a blocking thread, map errors in one place (crate::error).

pub mod admin;
pub mod agent;

use std::sync::Arc;

use crate::error::ServiceError;
use crate::store::{GroupCommit, Store};

/// What the services share.
#[derive(Clone)]
pub struct State {
    pub store: Arc<dyn Store>,
    pub commit: GroupCommit,
}

impl State {
    pub fn new(store: Arc<dyn Store>) -> Self {
        let commit = GroupCommit::start(store.clone());
        State { store, commit }
    }

    /// Runs a store call on the blocking pool (sled does blocking IO).
    pub async fn blocking<T, F>(&self, f: F) -> Result<T, ServiceError>
    where
        F: FnOnce(&dyn Store) -> Result<T, crate::store::StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| ServiceError::Internal(format!("store task failed: {e}")))?
            .map_err(ServiceError::from)
    }
}
