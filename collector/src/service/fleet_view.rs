//! What the metrics read of the services' state at scrape time.

use driftwatch_common::metrics::Samples;
use driftwatch_common::proto::{Finding, SweepJob};

use super::State;
use crate::metrics::FleetView;
use crate::store::StoreError;

impl FleetView for State {
    fn host_states(&self, now_ms: i64) -> Result<Vec<&'static str>, StoreError> {
        let settings = &self.evaluator.settings;
        Ok(self
            .store
            .list_hosts()?
            .iter()
            .map(|h| crate::drift::host_state(h, settings, now_ms))
            .collect())
    }

    fn findings(&self) -> Result<Vec<Finding>, StoreError> {
        self.store.findings()
    }

    fn sweeps(&self, now_ms: i64) -> Result<Vec<SweepJob>, StoreError> {
        super::sweeps::summaries(self.store.as_ref(), &self.settled_sweeps, now_ms)
    }

    fn connected_agents(&self) -> usize {
        self.streams.connected_hosts()
    }

    fn raid_arrays(&self) -> Samples {
        self.raid
            .read()
            .expect("not poisoned")
            .samples(|h| self.is_revoked(h))
    }
}
