//! The synchronization primitives, swapped for loom's under `--cfg loom` so the model
//! checker explores every thread schedule of [`SharedCoordinator`](crate::SharedCoordinator).

#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};
