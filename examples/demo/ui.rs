//! The window: a top bar with the status line, the screen on the left (title, coin field, store), the
//! inventory, achievements and reward cards on the right, toasts in the corner. Panels are rebuilt when what
//! they show changes; the coin field is drawn with sprites every frame.

use bevy::ecs::system::SystemParam;
use bevy::input::ButtonState;
use bevy::input::keyboard::{Key, KeyboardInput};
use bevy::prelude::*;
use bevy_amazon_rewards::prelude::*;

use super::panels;
use super::services::SEASON_PASS;
use super::story::{
    Arrivals, BANK, DemoAction, DeviceCode, FIELD, Field, GemShop, KeyEntry, Links, SPEED, Screen, Toasts, Tone,
    shown_race,
};

const BACKGROUND: Color = Color::srgb(0.09, 0.11, 0.15);
pub(super) const PANEL: Color = Color::srgb(0.14, 0.17, 0.22);
pub(super) const CARD: Color = Color::srgb(0.19, 0.23, 0.30);
pub(super) const TEXT: Color = Color::srgb(0.92, 0.93, 0.95);
pub(super) const MUTED: Color = Color::srgb(0.62, 0.66, 0.72);
pub(super) const ACCENT: Color = Color::srgb(1.0, 0.60, 0.0);
pub(super) const GOOD: Color = Color::srgb(0.35, 0.80, 0.45);
pub(super) const BAD: Color = Color::srgb(0.95, 0.40, 0.35);
const SIDE_WIDTH: f32 = 340.0;
const TOP_HEIGHT: f32 = 44.0;

/// Draws the game.
pub struct DemoUiPlugin;

impl Plugin for DemoUiPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(ClearColor(BACKGROUND))
            .init_resource::<Shown>()
            .add_systems(Startup, setup)
            .add_systems(OnEnter(Screen::Field), spawn_field)
            .add_systems(
                Update,
                (
                    press_buttons,
                    keyboard,
                    (rebuild_main, rebuild_side, update_status_line, rebuild_toasts),
                    draw_field.run_if(in_state(Screen::Field)),
                ),
            );
    }
}

#[derive(Component)]
struct MainPanel;
#[derive(Component)]
struct SidePanel;
#[derive(Component)]
struct StatusLine;
#[derive(Component)]
struct ToastStack;
#[derive(Component)]
struct ButtonAction(DemoAction);
#[derive(Component)]
struct CoinSprite(usize);
#[derive(Component)]
struct PlayerSprite;

/// What the panels show now, to rebuild them only on change.
#[derive(Resource, Default)]
struct Shown {
    main: String,
    side: String,
    status: String,
    toasts: String,
}

pub(super) fn text(value: impl Into<String>, size: f32, color: Color) -> impl Bundle {
    (Text::new(value), TextFont::from_font_size(size), TextColor(color))
}

pub(super) fn button(label: &str, action: DemoAction, primary: bool) -> impl Bundle {
    (
        Button,
        ButtonAction(action),
        Node {
            padding: UiRect::axes(px(14), px(8)),
            margin: UiRect::top(px(8)),
            border_radius: BorderRadius::all(px(6)),
            justify_content: JustifyContent::Center,
            align_self: AlignSelf::FlexStart,
            ..default()
        },
        BackgroundColor(if primary { ACCENT } else { CARD }),
        children![text(label, 16.0, if primary { Color::BLACK } else { TEXT })],
    )
}

pub(super) fn card() -> Node {
    Node {
        flex_direction: FlexDirection::Column,
        padding: UiRect::all(px(12)),
        margin: UiRect::bottom(px(10)),
        border_radius: BorderRadius::all(px(8)),
        ..default()
    }
}

fn setup(mut commands: Commands) {
    // The field is centred in the area left of the side panel and below the top bar.
    commands.spawn((Camera2d, Transform::from_xyz(SIDE_WIDTH / 2.0, TOP_HEIGHT / 2.0, 0.0)));
    commands.spawn((
        Node { width: percent(100), height: percent(100), flex_direction: FlexDirection::Column, ..default() },
        children![
            (
                Node {
                    height: px(TOP_HEIGHT),
                    padding: UiRect::horizontal(px(16)),
                    align_items: AlignItems::Center,
                    justify_content: JustifyContent::SpaceBetween,
                    ..default()
                },
                BackgroundColor(Color::srgb(0.07, 0.09, 0.12)),
                children![
                    text("COIN BANK  |  Amazon rewards demo", 20.0, ACCENT),
                    (StatusLine, text("", 15.0, MUTED)),
                ],
            ),
            (
                Node { flex_grow: 1.0, flex_direction: FlexDirection::Row, ..default() },
                children![
                    (MainPanel, Node { flex_grow: 1.0, flex_direction: FlexDirection::Column, padding: UiRect::all(px(20)), ..default() }),
                    (
                        SidePanel,
                        Node { width: px(SIDE_WIDTH), flex_direction: FlexDirection::Column, padding: UiRect::all(px(14)), ..default() },
                        BackgroundColor(PANEL),
                    ),
                ],
            ),
        ],
    ));
    commands.spawn((
        ToastStack,
        Node {
            position_type: PositionType::Absolute,
            left: px(20),
            bottom: px(16),
            width: px(560),
            flex_direction: FlexDirection::Column,
            ..default()
        },
        GlobalZIndex(10),
    ));
}

fn press_buttons(
    mut buttons: Query<(&Interaction, &ButtonAction, &mut BackgroundColor), Changed<Interaction>>,
    mut actions: MessageWriter<DemoAction>,
) {
    for (interaction, action, mut color) in &mut buttons {
        match interaction {
            Interaction::Pressed => {
                actions.write(action.0.clone());
            }
            Interaction::Hovered => color.0 = color.0.lighter(0.08),
            Interaction::None => color.0 = if color.0.to_srgba().red > 0.8 { ACCENT } else { CARD },
        }
    }
}

fn keyboard(
    screen: Res<State<Screen>>,
    keys: Res<ButtonInput<KeyCode>>,
    mut typed: MessageReader<KeyboardInput>,
    mut field: ResMut<Field>,
    time: Res<Time>,
    mut actions: MessageWriter<DemoAction>,
) {
    match screen.get() {
        Screen::Field => {
            let mut direction = Vec2::ZERO;
            for (codes, step) in [
                ([KeyCode::ArrowLeft, KeyCode::KeyA], Vec2::NEG_X),
                ([KeyCode::ArrowRight, KeyCode::KeyD], Vec2::X),
                ([KeyCode::ArrowUp, KeyCode::KeyW], Vec2::Y),
                ([KeyCode::ArrowDown, KeyCode::KeyS], Vec2::NEG_Y),
            ] {
                if keys.any_pressed(codes) {
                    direction += step;
                }
            }
            field.walk(direction.normalize_or_zero() * SPEED * time.delta_secs());
        }
        Screen::Store => {
            for input in typed.read().filter(|k| k.state == ButtonState::Pressed) {
                match &input.logical_key {
                    Key::Character(c) => {
                        for ch in c.chars().filter(|ch| ch.is_ascii_alphanumeric() || *ch == '-') {
                            actions.write(DemoAction::TypeKey(ch.to_ascii_uppercase()));
                        }
                    }
                    Key::Backspace => {
                        actions.write(DemoAction::EraseKey);
                    }
                    Key::Enter => {
                        actions.write(DemoAction::ActivateKey);
                    }
                    _ => {}
                }
            }
        }
        Screen::Title | Screen::History => {}
    }
    if keys.just_pressed(KeyCode::Escape) {
        actions.write(DemoAction::Show(Screen::Title));
    }
}

pub(super) fn money(cents: i64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

#[allow(clippy::too_many_arguments)]
/// What the main panel is built from.
#[derive(SystemParam)]
pub(super) struct MainView<'w> {
    pub screen: Res<'w, State<Screen>>,
    pub login: Res<'w, State<LoginState>>,
    pub account: Option<Res<'w, AmazonAccount>>,
    pub device: Res<'w, DeviceCode>,
    pub field: Res<'w, Field>,
    pub key: Res<'w, KeyEntry>,
    pub links: Res<'w, Links>,
    pub history: Res<'w, InventoryHistory>,
    pub shop: Res<'w, GemShop>,
    pub race: Res<'w, CompetitionStandings>,
    pub status: Res<'w, RewardsStatus>,
    pub subscriptions: Res<'w, Subscriptions>,
    pub catalogs: Res<'w, Assets<ItemCatalog>>,
}

impl MainView<'_> {
    pub fn name(&self) -> Option<String> {
        self.account.as_ref().map(|a| a.name.clone())
    }

    pub fn pass(&self) -> Option<SubscriptionStatus> {
        self.subscriptions.get(SEASON_PASS).cloned()
    }

    /// Everything the main panel shows, to rebuild it only when that changes.
    fn key(&self) -> String {
        let (field, history) = (&self.field, &self.history);
        format!(
            "{:?}{:?}{:?}{:?}{}{}{}{:?}{}{}{}{}{}{}",
            self.screen.get(),
            self.login.get(),
            self.name(),
            self.device.0,
            field.carried,
            field.deposits,
            field.banked,
            self.pass(),
            self.key.0,
            self.status.pulling,
            self.shop.waiting.len(),
            history.changes.len(),
            history.loading,
            history.more
        ) + &race_key(&self.race)
    }
}

/// The main panel: the screen the player is on.
fn rebuild_main(
    mut commands: Commands,
    mut shown: ResMut<Shown>,
    view: MainView,
    main: Single<Entity, With<MainPanel>>,
) {
    let key = view.key();
    if shown.main == key {
        return;
    }
    shown.main = key;
    commands.entity(*main).despawn_children();
    commands.entity(*main).with_children(|panel| match view.screen.get() {
        Screen::Title => panels::title(panel, &view),
        Screen::History => history_panel(panel, &view.history, view.catalogs.iter().next().map(|(_, c)| c)),
        Screen::Field => panels::field(panel, &view),
        Screen::Store => panels::store(panel, &view),
    });
}

/// The side panel: inventory, achievements, rewards.
fn rebuild_side(
    mut commands: Commands,
    mut shown: ResMut<Shown>,
    (achievements, moments, arrivals): (Res<Achievements>, Res<MomentsStatus>, Res<Arrivals>),
    inventory: Query<&Inventory, With<RewardsRecipient>>,
    (catalogs, assets): (Res<Assets<ItemCatalog>>, Res<AssetServer>),
    side: Single<Entity, With<SidePanel>>,
) {
    let items: Vec<(String, u64)> =
        inventory.iter().next().map(|i| i.iter().map(|(k, v)| (k.to_owned(), v)).collect()).unwrap_or_default();
    let progress: Vec<(String, u32, u32, bool)> = achievements
        .iter()
        .map(|a| (a.definition.title.clone(), a.count.min(a.threshold()), a.threshold(), a.unlocked))
        .collect();
    let side_key = format!(
        "{items:?}{progress:?}{:?}{:?}",
        moments.rewards,
        arrivals.0.iter().map(|(i, _)| i).collect::<Vec<_>>()
    );
    if shown.side == side_key {
        return;
    }
    shown.side = side_key;
    let catalog = catalogs.iter().next().map(|(_, c)| c.clone());
    commands.entity(*side).despawn_children();
    commands.entity(*side).with_children(|panel| {
        panels::inventory(panel, &items, catalog.as_ref(), &arrivals, &assets);
        panels::achievements(panel, &progress);
        panels::rewards(panel, &moments);
    });
}

/// The status line: online or not, the last sync, the outbox, SANDBOX when the services say so.
fn update_status_line(
    mut commands: Commands,
    mut shown: ResMut<Shown>,
    (status, moments, login): (Res<RewardsStatus>, Res<MomentsStatus>, Res<State<LoginState>>),
    status_line: Single<Entity, With<StatusLine>>,
) {
    let online = match (&status.last_error, login.get()) {
        (_, LoginState::LoggedOut) => "not linked".to_owned(),
        (Some(error), _) => format!("offline ({error})"),
        (None, _) => "online".to_owned(),
    };
    let last_pull =
        status.last_pull.map(|t| format!("{}s ago", t.elapsed().as_secs())).unwrap_or_else(|| "never".into());
    let mut line = format!("{online}  |  last sync {last_pull}  |  outbox {}", moments.pending);
    if status.environment == Environment::Sandbox {
        // The services say they are a sandbox: a test build must never pass for the real thing.
        line = format!("SANDBOX  |  {line}");
    }
    if status.last_error.is_some()
        && let Some(age) = status.inventory_age()
    {
        line.push_str(&format!("  |  inventory as of {} min ago", age.as_secs() / 60));
    }
    if let Some(error) = &moments.last_error {
        line.push_str(&format!("  |  moments waiting: {error}"));
    }
    if shown.status != line {
        shown.status = line.clone();
        commands.entity(*status_line).insert(Text::new(line));
    }
}

/// The toasts in the corner.
fn rebuild_toasts(
    mut commands: Commands,
    mut shown: ResMut<Shown>,
    toasts: Res<Toasts>,
    toast_stack: Single<Entity, With<ToastStack>>,
) {
    let toast_key: String = toasts.0.iter().map(|t| t.text.as_str()).collect::<Vec<_>>().join("|");
    if shown.toasts == toast_key {
        return;
    }
    shown.toasts = toast_key;
    commands.entity(*toast_stack).despawn_children();
    commands.entity(*toast_stack).with_children(|stack| {
        for toast in &toasts.0 {
            let color = match toast.tone {
                Tone::Good => GOOD,
                Tone::Info => TEXT,
                Tone::Bad => BAD,
            };
            stack.spawn((
                Node {
                    padding: UiRect::axes(px(12), px(8)),
                    margin: UiRect::top(px(6)),
                    border_radius: BorderRadius::all(px(6)),
                    border: UiRect::left(px(4)),
                    ..default()
                },
                BackgroundColor(Color::srgba(0.05, 0.06, 0.08, 0.92)),
                BorderColor::all(color),
                children![text(toast.text.clone(), 15.0, color)],
            ));
        }
    });
}

/// What the race panel shows, to rebuild it only when that changes (and each second while a race runs).
fn race_key(standings: &CompetitionStandings) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format!("{:?}{now}", shown_race(standings))
}

/// The coin race: time left, the top places, the player's own, and once it ended the winner and the prize.
pub(super) fn race_panel(panel: &mut ChildSpawnerCommands, standings: &CompetitionStandings) {
    let Some(race) = shown_race(standings) else { return };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    panel.spawn((BackgroundColor(PANEL), card())).with_children(|c| {
        let when = match race.state {
            CompetitionState::Running => format!("ends in {} s", (race.ends_at - now).max(0)),
            CompetitionState::Upcoming => "starts soon".to_owned(),
            CompetitionState::Closing => "ended: deciding the winner...".to_owned(),
            CompetitionState::Closed => "ended".to_owned(),
        };
        c.spawn(text(format!("{}: most coins banked wins 1,000 gems  |  {when}", race.title), 17.0, ACCENT));
        if race.untrusted {
            c.spawn(text(
                "Scores come from this game client (no game server in this demo): untrusted, shown as such.",
                13.0,
                MUTED,
            ));
        }
        for line in race.top.iter().take(3) {
            c.spawn(text(format!("{}. {}  {} coins", line.place, line.player, line.score), 15.0, TEXT));
        }
        if let Some(you) = &race.you {
            c.spawn(text(format!("You: place {} with {} coins", you.place, you.score), 15.0, GOOD));
        }
        if let Some(winner) = race.results.first() {
            let paid = match (winner.status.as_str(), &winner.reason) {
                ("rewarded", _) => "prize sent: claim it in Rewards".to_owned(),
                (_, Some(reason)) => format!("no prize ({reason})"),
                (status, None) => status.to_owned(),
            };
            c.spawn(text(format!("Winner: {} with {} coins, {paid}", winner.player, winner.score), 15.0, GOOD));
        }
    });
}

/// The history screen: every change to the player's inventory, newest first, with where it came from.
fn history_panel(panel: &mut ChildSpawnerCommands, history: &InventoryHistory, catalog: Option<&ItemCatalog>) {
    panel.spawn(text("Where is my reward?", 32.0, TEXT));
    panel.spawn(text("Every item that came and went, as the studio backend recorded it.", 15.0, MUTED));
    if history.loading && history.changes.is_empty() {
        panel.spawn(text("Loading...", 16.0, ACCENT));
    }
    if let Some(error) = &history.error {
        panel.spawn(text(format!("Could not load the history: {error}"), 15.0, BAD));
    }
    panel.spawn((BackgroundColor(PANEL), card())).with_children(|c| {
        for change in history.changes.iter().take(12) {
            let items = change
                .items
                .iter()
                .map(|s| {
                    let name = catalog.and_then(|c| c.items.get(&s.item)).map_or(s.item.as_str(), |d| d.name.as_str());
                    format!("{} x {name}", s.quantity)
                })
                .collect::<Vec<_>>()
                .join(", ");
            let (sign, color, what) = match change.kind {
                ChangeKind::Grant => ("+", GOOD, "from"),
                ChangeKind::Revoke => ("-", BAD, "taken back: refund of"),
                ChangeKind::Spend => ("-", ACCENT, "spent in"),
                _ => ("?", MUTED, "changed by"),
            };
            let source = match change.source.as_str() {
                "PRIME_GAMING" => "Prime Gaming",
                "INSTANT_ACCESS" => "an Instant Access purchase",
                "SUBSCRIPTION" | "DEVPAY" => "the season pass",
                "GAME" => "the game",
                other => other,
            };
            let ago = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |now| (now.as_secs() as i64 - change.at).max(0));
            c.spawn(text(format!("{sign} {items}  {what} {source}  ({ago}s ago)"), 15.0, color));
        }
    });
    panel.spawn(Node { flex_direction: FlexDirection::Row, column_gap: px(10), ..default() }).with_children(|row| {
        row.spawn(button("Back", DemoAction::Show(Screen::Title), false));
        if history.more {
            row.spawn(button("Older", DemoAction::OlderHistory, false));
        }
    });
}

fn spawn_field(mut commands: Commands, assets: Res<AssetServer>, field: Res<Field>) {
    let scoped = DespawnOnExit(Screen::Field);
    commands.spawn((
        Sprite::from_color(Color::srgb(0.16, 0.34, 0.22), FIELD),
        Transform::from_xyz(0.0, 0.0, -1.0),
        scoped.clone(),
    ));
    commands.spawn((
        Sprite::from_color(Color::srgb(0.55, 0.45, 0.30), Vec2::new(110.0, 80.0)),
        Transform::from_translation(BANK.extend(0.0)),
        scoped.clone(),
    ));
    commands.spawn((
        Text2d::new("BANK"),
        TextFont::from_font_size(22.0),
        TextColor(Color::WHITE),
        Transform::from_translation(BANK.extend(1.0)),
        scoped.clone(),
    ));
    for (i, coin) in field.coins.iter().enumerate() {
        commands.spawn((
            Sprite { image: assets.load("icons/gold.png"), custom_size: Some(Vec2::splat(28.0)), ..default() },
            Transform::from_translation(coin.extend(0.5)),
            CoinSprite(i),
            scoped.clone(),
        ));
    }
    commands.spawn((
        Sprite::from_color(Color::srgb(0.35, 0.65, 1.0), Vec2::splat(30.0)),
        Transform::from_translation(field.player.extend(2.0)),
        PlayerSprite,
        scoped,
    ));
}

fn draw_field(
    field: Res<Field>,
    mut coins: Query<(&CoinSprite, &mut Transform), Without<PlayerSprite>>,
    mut player: Query<&mut Transform, With<PlayerSprite>>,
) {
    for (coin, mut transform) in &mut coins {
        if let Some(at) = field.coins.get(coin.0) {
            transform.translation = at.extend(0.5);
        }
    }
    for mut transform in &mut player {
        transform.translation = field.player.extend(2.0);
    }
}
