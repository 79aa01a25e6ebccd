//! One running instance per data directory: the first instance holds `instance.lock` for its lifetime; a
//! second one is told ([`RewardsError::AnotherInstanceRunning`]) and writes nothing there, so two instances
//! never overwrite each other's ledger, tokens or Moments file.

use bevy::prelude::*;

use crate::core::storage::{self, InstanceLockError};
use crate::error::RewardsError;

/// Whether this instance may write in its data directory, and the lock that says so (held for the app's
/// lifetime).
#[derive(Resource)]
pub(crate) struct DataDirAccess {
    read_only: bool,
    _lock: Option<std::fs::File>,
}

impl DataDirAccess {
    /// Another instance holds the data directory: grant, report, refresh and save nothing there.
    pub(crate) fn read_only(&self) -> bool {
        self.read_only
    }

    /// Takes the data directory `dir` (none configured: nothing to protect).
    pub(crate) fn take(world: &mut World, dir: Option<std::path::PathBuf>) -> Self {
        let Some(dir) = dir else {
            return Self { read_only: false, _lock: None };
        };
        match storage::lock_instance(&dir) {
            Ok(file) => Self { read_only: false, _lock: Some(file) },
            Err(InstanceLockError::HeldByAnotherInstance) => {
                let data_dir = dir.display().to_string();
                error!("another instance of the game is using {data_dir}; this one grants and saves nothing");
                world.write_message(RewardsError::AnotherInstanceRunning { data_dir });
                Self { read_only: true, _lock: None }
            }
            Err(InstanceLockError::Io(error)) => {
                // A file system without locks (some network shares): carry on as before, unprotected.
                warn!("cannot lock {}: {error}; a second instance would not be stopped", dir.display());
                Self { read_only: false, _lock: None }
            }
        }
    }
}
