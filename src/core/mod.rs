//! What every service plugin stands on, added by [`RewardsCorePlugin`]: the [`RewardsConfig`] resource, the
//! background runtime and its bridge back to the frame, the one HTTP client, the data directory's instance
//! lock, the plugin's system sets and the messages every service shares ([`RewardsError`], [`TokenRefused`]).

pub(crate) mod bridge;
pub mod guard;
pub(crate) mod http;
pub(crate) mod instance;
pub(crate) mod loopback;
pub(crate) mod storage;
pub(crate) mod token_gate;
pub(crate) mod wake;

use bevy::ecs::schedule::{ScheduleLabel, SingleThreadedExecutor};
use bevy::prelude::*;
use bevy::window::{AppLifecycle, WindowFocused, WindowOccluded};

use crate::config::RewardsConfig;
use crate::error::RewardsError;

/// The plugins' systems, public so games can order against them.
///
/// `Receive` and `Apply` run in [`PreUpdate`] (one system, in both sets, runs the [`RewardsReceive`] schedule:
/// results first, then grants), so the game's `Update` sees this frame's results;
/// `Send` runs in [`PostUpdate`], so requests the game writes in `Update` act in the same frame.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AmazonRewardsSystems {
    /// Each service drains the results of its background work (pulls, reports, ledger writes, sign-ins,
    /// activations, deliveries): the [`RewardsReceive`] schedule, run in [`PreUpdate`] only on frames when a
    /// result waits.
    Receive,
    /// Grants pulled entitlements into the recipient's inventory, within a per-frame budget: the last step of
    /// [`RewardsReceive`], which keeps running on the following frames while grants wait. [`PreUpdate`].
    Apply,
    /// Each service starts the work the game asked for or that is due: paced pulls, fulfilment reports,
    /// sign-ins, activations, moment deliveries: the [`RewardsSend`] schedule, run in [`PostUpdate`] only on
    /// frames when a service's request message waits or its own check says work is due.
    Send,
}

/// The schedule each service's receive systems are added to, run by the one system of
/// [`AmazonRewardsSystems::Receive`] only on frames when a result waits in some service's inbox. A schedule
/// that does not run costs an idle frame nothing, however many services it holds.
#[derive(ScheduleLabel, Debug, Clone, PartialEq, Eq, Hash)]
pub struct RewardsReceive;

/// The schedule each service's send systems are added to, run by the one system of
/// [`AmazonRewardsSystems::Send`] only on frames when a service's request message waits or its own check
/// says work is due.
#[derive(ScheduleLabel, Debug, Clone, PartialEq, Eq, Hash)]
pub struct RewardsSend;

/// A service refused the player's access token (HTTP 400/401 from Amazon, 401 from the studio backend): it may
/// have expired. [`LoginPlugin`](crate::auth::LoginPlugin) refreshes it once (Amazon's error process: retry,
/// refresh, relink); a game that brings its own login and drops `LoginPlugin` reads this message to renew the
/// [`PlayerSession`](crate::auth::PlayerSession) it inserts.
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenRefused;

/// The core of [`AmazonRewardsPlugins`](crate::AmazonRewardsPlugins); every service plugin needs it, added
/// before them.
///
/// Adds the [`RewardsReceive`] and [`RewardsSend`] schedules the service plugins put their systems in, and one
/// system in each of [`AmazonRewardsSystems::Receive`] and [`AmazonRewardsSystems::Send`] that runs them when
/// there is work: an idle frame pays for two run conditions whatever the services.
#[derive(Debug, Clone, Default)]
pub struct RewardsCorePlugin {
    /// The shared settings, inserted as the [`RewardsConfig`] resource (each service plugin writes its own
    /// section into it when built). Default: [`RewardsConfig::default`], production Amazon.
    pub config: RewardsConfig,
}

impl Plugin for RewardsCorePlugin {
    fn build(&self, app: &mut App) {
        let endpoints = guard::endpoints(&self.config);
        if let Err(refused) =
            guard::check_endpoints(guard::BuildKind::current(), endpoints, self.config.allow_sandbox_in_release)
        {
            // Refused at start, loudly: a test build must never reach players by accident.
            panic!("{refused}");
        }
        let runtime = bridge::RewardsRuntime::new().expect("cannot start the rewards I/O runtime");
        let http = http::ApiClient::new(self.config.request_timeout, self.config.max_response_bytes)
            .expect("cannot build the rewards HTTP client");
        app.add_message::<RewardsError>()
            .add_message::<TokenRefused>()
            // Registered by WindowPlugin in windowed games; registered here too so headless apps work.
            .add_message::<WindowFocused>()
            .add_message::<WindowOccluded>()
            .add_message::<AppLifecycle>();
        let access = instance::DataDirAccess::take(app.world_mut(), self.config.resolved_data_dir());
        app.insert_resource(self.config.clone())
            .insert_resource(runtime)
            .insert_resource(http)
            .insert_resource(access)
            .init_resource::<wake::SendWakers>()
            .init_schedule(RewardsReceive)
            .init_schedule(RewardsSend)
            .add_systems(
                PreUpdate,
                run_receive
                    .in_set(AmazonRewardsSystems::Receive)
                    .in_set(AmazonRewardsSystems::Apply)
                    .run_if(bridge::bridge_has_work),
            )
            .add_systems(PostUpdate, run_send.in_set(AmazonRewardsSystems::Send).run_if(wake::send_has_work));
        // A handful of systems each: threads would cost more than they save.
        for label in [RewardsReceive.intern(), RewardsSend.intern()] {
            app.edit_schedule(label, |schedule| {
                schedule.set_executor(SingleThreadedExecutor::new()).set_apply_final_deferred(true);
            });
        }
        #[cfg(feature = "winit")]
        app.add_systems(PreStartup, wake_the_event_loop);
    }
}

/// Runs every service's receive systems.
fn run_receive(world: &mut World) {
    world.run_schedule(RewardsReceive);
    world.resource_mut::<wake::SendWakers>().received();
}

/// Runs every service's send systems.
fn run_send(world: &mut World) {
    world.run_schedule(RewardsSend);
    wake::SendWakers::sent(world);
}

/// With a reactive winit loop (`WinitSettings::desktop_app()`), wakes it as soon as a result arrives, e.g.
/// when the player comes back from the browser while the window is unfocused.
#[cfg(feature = "winit")]
fn wake_the_event_loop(runtime: Res<bridge::RewardsRuntime>, proxy: Option<Res<bevy::winit::EventLoopProxyWrapper>>) {
    if let Some(proxy) = proxy {
        let proxy = (**proxy).clone();
        runtime.set_waker(move || {
            let _ = proxy.send_event(bevy::winit::WinitUserEvent::WakeUp);
        });
    }
}

/// The core resources a service plugin needs while it is built, or a clear panic naming what is missing.
pub(crate) fn require_core<'a>(app: &'a App, plugin: &str) -> (&'a bridge::RewardsRuntime, &'a RewardsConfig) {
    let world = app.world();
    match (world.get_resource::<bridge::RewardsRuntime>(), world.get_resource::<RewardsConfig>()) {
        (Some(runtime), Some(config)) => (runtime, config),
        _ => panic!("{plugin} needs RewardsCorePlugin added before it (AmazonRewardsPlugins adds both in order)"),
    }
}
