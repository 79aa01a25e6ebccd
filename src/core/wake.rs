//! One run condition for every service's send system (the [`RewardsSend`](super::RewardsSend) schedule): each plugin registers, while it is built, the message
//! types whose arrival is work for it and a check of its own state (a pull due, a moment to deliver), and
//! [`send_has_work`] asks them all through a `&World`, with the message resources' ids resolved once. An idle
//! frame pays for one condition system and a few pointer reads, however many services there are, instead of
//! one condition system per service with one resource fetch per message type.

use bevy::ecs::component::ComponentId;
use bevy::ecs::message::{Message, Messages};
use bevy::prelude::*;
use bevy::ptr::Ptr;

/// Whether a message resource holds a message: `ptr` must point at the `Messages<T>` it was made for.
type MessagesCheck = unsafe fn(Ptr<'_>) -> bool;

/// What wakes the [`AmazonRewardsSystems::Send`](crate::AmazonRewardsSystems::Send) set.
#[derive(Resource, Default)]
pub(crate) struct SendWakers {
    messages: Vec<(ComponentId, MessagesCheck)>,
    checks: Vec<fn(&World) -> bool>,
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
    /// `check` holding wakes the send set.
    fn wake_send_when(&mut self, check: fn(&World) -> bool) -> &mut Self;
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

    fn wake_send_when(&mut self, check: fn(&World) -> bool) -> &mut Self {
        self.world_mut().get_resource_or_init::<SendWakers>().checks.push(check);
        self
    }
}

/// The run condition of the send set: some registered message waits, or some service's check holds.
pub(crate) fn send_has_work(world: &World) -> bool {
    let Some(wakers) = world.get_resource::<SendWakers>() else {
        return false;
    };
    wakers.messages.iter().any(|(id, holds)| {
        // SAFETY: `id` is the component id of the `Messages<T>` resource `holds` was made for.
        world.get_resource_by_id(*id).is_some_and(|ptr| unsafe { holds(ptr) })
    }) || wakers.checks.iter().any(|check| check(world))
}
