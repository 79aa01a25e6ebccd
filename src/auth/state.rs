//! [`LoginState`] without a per-frame cost: the login owns the state and changes it only when a sign-in starts,
//! ends or is undone, so instead of Bevy's state machinery (about 6,400 instructions a frame for one state:
//! ten systems in `StateTransition`, measured with `scripts/frame-cost.sh`) the plugin applies each transition
//! itself, the way Bevy's does: `State<LoginState>` is replaced, a `StateTransitionEvent<LoginState>` is written,
//! and the `OnExit`, `OnTransition` and `OnEnter` schedules run. `in_state(LoginState::LoggedIn)`,
//! `state_changed::<LoginState>` and `OnEnter(LoginState::…)` work as for any state; `NextState<LoginState>` does
//! not exist (the login decides) and state-scoped entities are not despawned for it.

use bevy::prelude::*;
use bevy::state::state::StateTransitionEvent;

use super::LoginState;

/// Inserts `State<LoginState>` and its transition messages.
pub(super) fn add_login_state(app: &mut App) {
    app.insert_resource(State::new(LoginState::default())).add_message::<StateTransitionEvent<LoginState>>();
}

/// Enters the initial state at startup (its `OnEnter` schedule runs), as Bevy does for an initialised state.
pub(super) fn enter_initial_state(world: &mut World) {
    let entered = *world.resource::<State<LoginState>>().get();
    world.write_message(StateTransitionEvent {
        exited: None,
        entered: Some(entered),
        allow_same_state_transitions: false,
    });
    let _ = world.try_run_schedule(OnEnter(entered));
}

/// Moves to `entered` when the deferred commands are applied; nothing when already there.
pub(super) fn change_login_state(commands: &mut Commands, entered: LoginState) {
    commands.queue(move |world: &mut World| {
        let exited = *world.resource::<State<LoginState>>().get();
        if exited == entered {
            return;
        }
        world.insert_resource(State::new(entered));
        world.write_message(StateTransitionEvent {
            exited: Some(exited),
            entered: Some(entered),
            allow_same_state_transitions: false,
        });
        let _ = world.try_run_schedule(OnExit(exited));
        let _ = world.try_run_schedule(OnTransition { exited, entered });
        let _ = world.try_run_schedule(OnEnter(entered));
    });
}
