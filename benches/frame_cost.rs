//! What the plugin costs a frame, in wall time (criterion). Instruction counts, which are repeatable where wall
//! time is not, come from `scripts/frame-cost.sh` (callgrind over `crates/frame-cost`, one setup per plugin).
//!
//! - `idle_frame`: one `App::update` of a bare `MinimalPlugins` app, of the same plus `AssetPlugin` and
//!   `StatesPlugin` (the plugin's prerequisites), of that plus one `States` type (Bevy's own cost of a state
//!   such as `LoginState`), and of the prerequisites plus `AmazonRewardsPlugins` logged in with nothing to do,
//!   measured in the same run. Target: under 1 µs added per frame by the plugin. Each is measured twice: on
//!   Bevy's single-threaded executor (`…/single_threaded`: the systems' own work), and on the multi-threaded
//!   executor a windowed game uses (`…/multi_threaded`: that plus the executor's per-system task dispatch,
//!   which on this 2-core machine costs tens of µs per schedule whatever the systems do). `plus_three_empty_systems`
//!   is the state baseline plus three systems that do nothing: on the multi-threaded executor, the plugin
//!   (two runner systems with run conditions on an idle frame) should cost no more than they do.
//! - `grant_10k`: a pull that returns 10,000 entitlements from the sandbox (100 pages): total time from login
//!   to all 10,000 granted (criterion), and per frame the time spent inside the plugin's system sets —
//!   main-thread CPU time and wall time — printed as the worst frame (target ≤ 1 ms). Wall time on this
//!   2-core machine includes preemption by the sandbox, the I/O runtime and the ledger writer running in the
//!   same process; CPU time is the plugin's own work.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevy_amazon_rewards::prelude::*;
use common::*;
use criterion::{Criterion, criterion_group, criterion_main};

fn bare_app() -> App {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins);
    app.finish();
    app.cleanup();
    app
}

fn asset_app() -> App {
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins,
        bevy::asset::AssetPlugin { file_path: assets_dir(), ..default() },
        bevy::state::app::StatesPlugin,
    ));
    app.finish();
    app.cleanup();
    app
}

/// Main-thread CPU time and wall time spent inside the plugin's system sets, per frame.
#[derive(Resource, Default)]
struct PluginFrameTime {
    cpu_started: Duration,
    wall_started: Option<Instant>,
    cpu: Duration,
    wall: Duration,
}

fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn start_timer(mut time: ResMut<PluginFrameTime>) {
    time.cpu_started = thread_cpu_time();
    time.wall_started = Some(Instant::now());
}

fn stop_timer(mut time: ResMut<PluginFrameTime>) {
    let cpu = thread_cpu_time().saturating_sub(time.cpu_started);
    let wall = time.wall_started.take().map(|t| t.elapsed()).unwrap_or_default();
    time.cpu += cpu;
    time.wall += wall;
}

fn time_plugin_systems(app: &mut App) {
    use bevy_amazon_rewards::AmazonRewardsSystems as Sets;
    app.init_resource::<PluginFrameTime>()
        .add_systems(PreUpdate, (start_timer.before(Sets::Receive), stop_timer.after(Sets::Apply)))
        .add_systems(PostUpdate, (start_timer.before(Sets::Send), stop_timer.after(Sets::Send)));
}

/// Runs every schedule of `app` on Bevy's single-threaded executor.
fn single_threaded(app: &mut App) {
    let mut schedules = app.world_mut().resource_mut::<Schedules>();
    for (_, schedule) in schedules.iter_mut() {
        schedule.set_executor(bevy::ecs::schedule::SingleThreadedExecutor::default());
        schedule.set_apply_final_deferred(true);
    }
}

fn idle_frame(c: &mut Criterion) {
    let fixture = Fixture::start();
    fixture.catalog_offers();
    let player = fixture.customer("idle@example.com");
    fixture.grant(&player.user_id, GOLD, 1);
    let token = fixture.token(&player.user_id, 3600);
    let data = tempfile::tempdir().unwrap();
    let mut rewards = headless_app(test_config(&fixture.url(), data.path()));
    spawn_recipient(&mut rewards);
    login(&mut rewards, &player.user_id, &token);
    run_until(&mut rewards, Duration::from_secs(30), "settled", |app| {
        settled(app) && all_fulfilled(&fixture, &player.user_id)
    });
    // Past the pacing interval, with nothing pending: a truly idle game.
    std::thread::sleep(Duration::from_millis(100));
    rewards.update();

    let mut bare = bare_app();
    let mut assets = asset_app();
    // The same baseline plus one more `States` type, as `LoginState` adds: Bevy's own per-state cost.
    let mut with_state = asset_app();
    with_state.init_state::<LoginState>();
    with_state.update();
    // And three systems that do nothing, where the plugin has its three: what any three systems cost to run.
    let mut with_systems = asset_app();
    with_systems.init_state::<LoginState>();
    with_systems.add_systems(PreUpdate, (|| {}, || {}).chain()).add_systems(PostUpdate, || {});
    with_systems.update();
    for executor in ["multi_threaded", "single_threaded"] {
        if executor == "single_threaded" {
            for app in [&mut bare, &mut assets, &mut with_state, &mut with_systems, &mut rewards] {
                single_threaded(app);
                app.update();
            }
        }
        let mut group = c.benchmark_group(format!("idle_frame/{executor}"));
        group.bench_function("bare_minimal_plugins", |b| b.iter(|| bare.update()));
        group.bench_function("minimal_plus_asset_plugin", |b| b.iter(|| assets.update()));
        group.bench_function("minimal_plus_asset_plus_one_state", |b| b.iter(|| with_state.update()));
        group.bench_function("plus_three_empty_systems", |b| b.iter(|| with_systems.update()));
        group.bench_function("with_amazon_rewards_idle", |b| b.iter(|| rewards.update()));
        group.finish();
    }
}

fn grant_10k(c: &mut Criterion) {
    let fixture = Fixture::start();
    fixture.catalog_offers();
    let mut group = c.benchmark_group("grant_10k");
    group.sample_size(10).measurement_time(Duration::from_secs(30));
    let (mut worst_cpu, mut worst_wall, mut worst_frame) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut frames = 0usize;
    let mut round = 0;
    group.bench_function("login_to_all_granted", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                round += 1;
                let player = fixture.customer(&format!("bulk{round}@example.com"));
                fixture.grant(&player.user_id, GOLD, 10_000);
                let token = fixture.token(&player.user_id, 3600);
                let data = tempfile::tempdir().unwrap();
                let mut app = headless_app(test_config(&fixture.url(), data.path()));
                collect::<EntitlementGranted>(&mut app);
                time_plugin_systems(&mut app);
                spawn_recipient(&mut app);
                app.update();
                let started = Instant::now();
                login(&mut app, &player.user_id, &token);
                while collected::<EntitlementGranted>(&app).len() < 10_000 {
                    let frame = Instant::now();
                    app.update();
                    worst_frame = worst_frame.max(frame.elapsed());
                    let mut time = app.world_mut().resource_mut::<PluginFrameTime>();
                    let cpu = std::mem::take(&mut time.cpu);
                    let wall = std::mem::take(&mut time.wall);
                    if cpu > Duration::from_micros(600) && std::env::var("DEBUG_FRAMES").is_ok() {
                        let s = app.world().resource::<RewardsStatus>().clone();
                        eprintln!(
                            "DEBUG frame {frames}: cpu {cpu:?} grants {} reports {}",
                            s.pending_grants, s.pending_reports
                        );
                    }
                    worst_cpu = worst_cpu.max(cpu);
                    worst_wall = worst_wall.max(wall);
                    frames += 1;
                    assert!(started.elapsed() < Duration::from_secs(120), "10k grants took too long");
                }
                total += started.elapsed();
                assert_eq!(inventory(&mut app).count("gold"), 10_000 * 500);
            }
            total
        })
    });
    group.finish();
    println!(
        "grant_10k: over {frames} frames, worst frame in the plugin's systems: {worst_cpu:?} main-thread CPU, \
         {worst_wall:?} wall; worst whole frame (wall, incl. test collectors): {worst_frame:?}"
    );
}

criterion_group!(benches, idle_frame, grant_10k);
criterion_main!(benches);
