//! When the [`RewardsSend`](super::RewardsSend) schedule runs: each plugin registers, while it is built, the
//! message types whose arrival is work for it and a function saying when it next has work of its own (a pull
//! allowed again, a report's backoff over, a moment due). Those functions are asked only after the send
//! schedule has run, and the earliest answer is kept; the one condition, [`send_has_work`], then reads a few
//! message resources (ids resolved once), whether the [`PlayerSession`](crate::PlayerSession) was replaced or
//! removed, whether the receive schedule ran this frame (a result changed some service's state) and that one
//! instant. An idle frame pays for the message checks and a pointer read or two, however many services there
//! are.

use std::time::Instant;

use bevy::ecs::component::ComponentId;
use bevy::ecs::message::{Message, Messages};
use bevy::prelude::*;
use bevy::ptr::Ptr;

use crate::auth::PlayerSession;

/// Whether a message resource holds a message: `ptr` must point at the `Messages<T>` it was made for.
type MessagesCheck = unsafe fn(Ptr<'_>) -> bool;

/// When a service next has work of its own: `None` until one of its messages or a new session arrives.
pub(crate) type NextWork = fn(&World) -> Option<Instant>;

/// What wakes the [`AmazonRewardsSystems::Send`](crate::AmazonRewardsSystems::Send) set.
#[derive(Resource)]
pub(crate) struct SendWakers {
    messages: Vec<(ComponentId, MessagesCheck)>,
    services: Vec<NextWork>,
    /// The earliest instant a service has work, as its [`NextWork`] said after the last send.
    due: Option<Instant>,
    /// The receive schedule ran this frame: its results may be work for the send systems.
    received: bool,
}

impl Default for SendWakers {
    fn default() -> Self {
        // Every service starts with the first frame (loading, following the session).
        Self { messages: Vec::new(), services: Vec::new(), due: Some(Instant::now()), received: false }
    }
}

impl SendWakers {
    /// The receive schedule ran.
    pub(crate) fn received(&mut self) {
        self.received = true;
    }

    /// After the send schedule ran: asks each service when it next has work.
    pub(crate) fn sent(world: &mut World) {
        let Some(services) = world.get_resource::<SendWakers>().map(|w| w.services.clone()) else { return };
        let due = services.iter().filter_map(|next| next(world)).min();
        let mut wakers = world.resource_mut::<SendWakers>();
        wakers.due = due;
        wakers.received = false;
    }
}

/// # Safety
/// `ptr` points at a `Messages<T>`.
unsafe fn holds_messages<T: Message>(ptr: Ptr<'_>) -> bool {
    // SAFETY: the caller passes the resource registered under this check's component id.
    !unsafe { ptr.deref::<Messages<T>>() }.is_empty()
}

/// Registering what wakes the send set, from a plugin's `build`.
pub(crate) trait WakeSendOn {
    /// A message of type `T` waiting wakes the send set (the type is registered too).
    fn wake_send_on<T: Message>(&mut self) -> &mut Self;
    /// The send set runs when `next` says, asked each time the send set has run.
    fn wake_send_at(&mut self, next: NextWork) -> &mut Self;
}

impl WakeSendOn for App {
    fn wake_send_on<T: Message>(&mut self) -> &mut Self {
        self.add_message::<T>();
        let id = self.world().components().component_id::<Messages<T>>().expect("registered just now");
        let mut wakers = self.world_mut().get_resource_or_init::<SendWakers>();
        if !wakers.messages.iter().any(|(known, _)| *known == id) {
            wakers.messages.push((id, holds_messages::<T>));
        }
        self
    }

    fn wake_send_at(&mut self, next: NextWork) -> &mut Self {
        self.world_mut().get_resource_or_init::<SendWakers>().services.push(next);
        self
    }
}

/// The run condition of the send set: some registered message waits, the session was replaced or removed, the
/// receive schedule ran, or a service's work is due.
pub(crate) fn send_has_work(world: &World, session: Option<Res<PlayerSession>>, mut signed_in: Local<bool>) -> bool {
    let session_changed = session.as_ref().is_some_and(|s| s.is_changed()) || *signed_in != session.is_some();
    *signed_in = session.is_some();
    let Some(wakers) = world.get_resource::<SendWakers>() else {
        return false;
    };
    session_changed
        || wakers.received
        || wakers.due.is_some_and(|due| Instant::now() >= due)
        || wakers.messages.iter().any(|(id, holds)| {
            // SAFETY: `id` is the component id of the `Messages<T>` resource `holds` was made for.
            world.get_resource_by_id(*id).is_some_and(|ptr| unsafe { holds(ptr) })
        })
}
