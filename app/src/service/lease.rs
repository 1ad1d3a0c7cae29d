//! Upload leases held while work runs. A lease is claimed for
//! `Settings::verify_lease` and renewed every third of that while the
//! work goes on, however long a transfer or a hash of a large file takes;
//! so a process that dies (killed, out of memory, its machine gone)
//! frees its slots within one lease, and the client's `upload/complete`
//! stops answering "not yet" soon after, instead of after a lease long
//! enough for the slowest verification.

use std::future::Future;

use tooltool_domain::StagingKey;

use super::{Service, later};

impl Service {
    /// Runs `work` while renewing the lease on `key` this worker holds.
    pub(super) async fn holding<T>(&self, key: &StagingKey, work: impl Future<Output = T>) -> T {
        let every = self.settings.verify_lease / 3;
        let renew = async {
            loop {
                tokio::time::sleep(every).await;
                let until = later(self.clock.now(), self.settings.verify_lease);
                if let Err(e) = self.store.renew_upload(key, until).await {
                    // The next renewal may succeed; if none does, the lease
                    // lapses and at worst another worker repeats the work.
                    tracing::warn!(
                        slot = %key,
                        error = &e as &(dyn std::error::Error + 'static),
                        "cannot renew an upload lease"
                    );
                }
            }
        };
        tokio::select! {
            out = work => out,
            never = renew => never,
        }
    }
}
