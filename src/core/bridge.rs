//! The background runtime and the bridge back to the frame: network and disk work runs on a Tokio runtime
//! (and the ledger's writer thread), and each service gets its own typed channel ([`RewardsRuntime::channel`])
//! whose [`Inbox`] that service drains in its own system. The bridge knows no service: it only counts what is
//! waiting, so one run condition ([`bridge_has_work`]) keeps every receive system off an idle frame.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use bevy::prelude::*;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// What every channel shares: how many results wait in all inboxes, and how to wake the event loop (set with
/// the `winit` feature, so a result is applied at once even when a reactive loop sleeps unfocused).
#[derive(Default)]
struct Shared {
    waiting: AtomicUsize,
    /// Services with work left over for the next frame (grants spread over frames).
    busy: AtomicUsize,
    waker: OnceLock<Box<dyn Fn() + Send + Sync>>,
}

/// The sending half of one service's channel: sends a result, then wakes the event loop.
pub(crate) struct Outbox<T> {
    sender: UnboundedSender<T>,
    shared: Arc<Shared>,
}

impl<T> Clone for Outbox<T> {
    fn clone(&self) -> Self {
        Self { sender: self.sender.clone(), shared: self.shared.clone() }
    }
}

impl<T> Outbox<T> {
    pub(crate) fn send(&self, result: T) {
        // Counted before it can be received, so the count never runs below what is waiting.
        self.shared.waiting.fetch_add(1, Ordering::AcqRel);
        if self.sender.send(result).is_err() {
            // The app exited meanwhile; nobody is waiting for the result.
            self.shared.waiting.fetch_sub(1, Ordering::AcqRel);
        } else if let Some(wake) = self.shared.waker.get() {
            wake();
        }
    }
}

/// The receiving half of one service's channel, a resource drained by that service's receive system.
#[derive(Resource)]
pub(crate) struct Inbox<T> {
    receiver: UnboundedReceiver<T>,
    shared: Arc<Shared>,
}

impl<T> Inbox<T> {
    /// The next waiting result, if any.
    pub(crate) fn next(&mut self) -> Option<T> {
        let result = self.receiver.try_recv().ok()?;
        self.shared.waiting.fetch_sub(1, Ordering::AcqRel);
        Some(result)
    }
}

/// One service's "work left over" flag (see [`RewardsRuntime::busy_flag`]).
pub(crate) struct BusyFlag {
    raised: bool,
    shared: Arc<Shared>,
}

impl BusyFlag {
    pub(crate) fn set(&mut self, busy: bool) {
        if busy != self.raised {
            self.raised = busy;
            if busy {
                self.shared.busy.fetch_add(1, Ordering::AcqRel);
            } else {
                self.shared.busy.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

impl Drop for BusyFlag {
    fn drop(&mut self) {
        self.set(false);
    }
}

/// The Tokio runtime the plugins' network work runs on.
#[derive(Resource)]
pub(crate) struct RewardsRuntime {
    runtime: tokio::runtime::Runtime,
    shared: Arc<Shared>,
}

impl RewardsRuntime {
    pub(crate) fn new() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("amazon-rewards-io")
            .enable_all()
            .build()?;
        Ok(Self { runtime, shared: Arc::default() })
    }

    /// A new channel for one service: results sent on the [`Outbox`] wait in the [`Inbox`].
    pub(crate) fn channel<T>(&self) -> (Outbox<T>, Inbox<T>) {
        let (sender, receiver) = unbounded_channel();
        (Outbox { sender, shared: self.shared.clone() }, Inbox { receiver, shared: self.shared.clone() })
    }

    /// Whether any inbox holds a result, or a service has work left over.
    pub(crate) fn has_results(&self) -> bool {
        self.shared.waiting.load(Ordering::Acquire) > 0 || self.shared.busy.load(Ordering::Acquire) > 0
    }

    /// A flag a service raises while it has work left for the next frame, so the receive schedule runs then
    /// even without new results.
    pub(crate) fn busy_flag(&self) -> BusyFlag {
        BusyFlag { raised: false, shared: self.shared.clone() }
    }

    /// Sets how the event loop is woken when a result arrives (once).
    #[cfg_attr(not(feature = "winit"), allow(dead_code))]
    pub(crate) fn set_waker(&self, wake: impl Fn() + Send + Sync + 'static) {
        let _ = self.shared.waker.set(Box::new(wake));
    }

    /// Runs `work` in the background and sends its result to `outbox`.
    pub(crate) fn spawn<T, F>(&self, outbox: &Outbox<T>, work: F) -> tokio::task::AbortHandle
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        let outbox = outbox.clone();
        self.runtime.spawn(async move { outbox.send(work.await) }).abort_handle()
    }

    /// Runs `work` in the background with no result for the frame.
    pub(crate) fn spawn_detached<F>(&self, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.runtime.spawn(work);
    }
}

/// The run condition of the receive schedule's runner: a result waits in some service's inbox, or a service
/// has work left over. One check for every service, so an idle frame dispatches no receive system.
pub(crate) fn bridge_has_work(runtime: Option<Res<RewardsRuntime>>) -> bool {
    runtime.is_some_and(|runtime| runtime.has_results())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bridge_counts_what_waits_in_every_inbox() {
        let runtime = RewardsRuntime::new().unwrap();
        let (numbers, mut number_inbox) = runtime.channel::<u32>();
        let (words, mut word_inbox) = runtime.channel::<&str>();
        assert!(!runtime.has_results());
        numbers.send(1);
        words.send("one");
        assert!(runtime.has_results());
        assert_eq!(number_inbox.next(), Some(1));
        assert!(runtime.has_results(), "a word still waits");
        assert_eq!(word_inbox.next(), Some("one"));
        assert_eq!(word_inbox.next(), None);
        assert!(!runtime.has_results());
        let mut busy = runtime.busy_flag();
        busy.set(true);
        busy.set(true);
        assert!(runtime.has_results(), "work left over keeps the receive schedule running");
        busy.set(false);
        assert!(!runtime.has_results());
        drop(number_inbox);
        numbers.send(2);
        assert!(!runtime.has_results(), "a result nobody can receive is not counted");
    }
}
