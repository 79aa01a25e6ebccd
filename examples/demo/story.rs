//! The game itself, apart from how it is drawn: screens, the coin field (collect coins, deposit them at the
//! bank; every 10 coins banked is a level), the player's actions, and what the plugin reports turned into
//! toasts. The window and the headless run share it.

use std::collections::VecDeque;
use std::time::Duration;

use bevy::prelude::*;
use bevy_amazon_rewards::prelude::*;

use super::services::{COIN_SHOWER, SEASON_PASS};

/// Which screen is up.
#[derive(States, Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Screen {
    /// Link the Amazon account.
    #[default]
    Title,
    /// The coin field.
    Field,
    /// The store.
    Store,
    /// The inventory's history: where every reward came from, and where it went.
    History,
}

/// Everything the player can do (buttons, keys, or the script).
#[derive(Message, Debug, Clone, PartialEq)]
pub enum DemoAction {
    LinkAmazon,
    LinkWithCode,
    CancelLink,
    SignOut,
    Show(Screen),
    /// Walk one step towards a point of the field (the script's "arrow keys").
    WalkTowards(Vec2),
    ClaimPrimeOffer(&'static str),
    BuyInstantAccess,
    SignUpSeasonPass,
    /// Sign up for the season pass on another device (a link to show).
    SignUpSeasonPassElsewhere,
    TypeKey(char),
    EraseKey,
    ActivateKey,
    OpenBilling,
    /// The sandbox's Amazon Payments mailbox: the e-mails a subscriber receives.
    OpenMailbox,
    ClaimReward(String),
    /// Spend gems on a shower of coins (checked by the studio backend).
    BuyCoinShower,
    /// Load the next older page of the history.
    OlderHistory,
    /// Start the game as it would run on a second PC (its own data directory), against the same services.
    ContinueOnAnotherPc,
}

/// Where the services are.
#[derive(Resource, Debug, Clone)]
pub struct Links {
    pub sandbox: String,
    pub backend: String,
    /// The demo's data directory (a second PC keeps its game data in `second-pc/` under it).
    pub data_dir: std::path::PathBuf,
    /// This is the second PC.
    pub second_pc: bool,
    /// The story is scripted: a second PC started from here runs headless with its own short script.
    pub headless: bool,
}

/// The second PC, once started: its process (the headless story waits for it).
#[derive(Resource, Default)]
pub struct SecondPc(pub Option<std::process::Child>);

/// Coin showers bought, and the spend keys still waiting for the backend's answer.
#[derive(Resource, Debug, Default)]
pub struct GemShop {
    pub bought: u32,
    pub waiting: Vec<String>,
}

/// Size of the field, centred on the origin.
pub const FIELD: Vec2 = Vec2::new(760.0, 420.0);
/// Where the bank stands.
pub const BANK: Vec2 = Vec2::new(300.0, -120.0);
const PICKUP_RADIUS: f32 = 30.0;
const BANK_RADIUS: f32 = 60.0;
/// Player speed, pixels per second.
pub const SPEED: f32 = 320.0;

/// The coin field.
#[derive(Resource, Debug, Clone)]
pub struct Field {
    pub player: Vec2,
    pub coins: Vec<Vec2>,
    pub carried: u32,
    pub banked: u32,
    pub deposits: u32,
    spawned: u32,
}

impl Default for Field {
    fn default() -> Self {
        let mut field =
            Self { player: Vec2::new(-300.0, 0.0), coins: Vec::new(), carried: 0, banked: 0, deposits: 0, spawned: 0 };
        for _ in 0..5 {
            field.spawn_coin();
        }
        field
    }
}

impl Field {
    /// Level: 1, plus one per 10 coins banked.
    pub fn level(&self) -> u32 {
        1 + self.banked / 10
    }

    fn spawn_coin(&mut self) {
        // A fixed, well-spread sequence: the same field every run, never on the bank.
        let n = self.spawned as f32;
        self.spawned += 1;
        let x = ((n * 0.618_034).fract() - 0.5) * (FIELD.x - 260.0) - 60.0;
        let y = ((n * 0.414_214 + 0.25).fract() - 0.5) * (FIELD.y - 60.0);
        self.coins.push(Vec2::new(x, y));
    }

    /// Moves the player by `delta`, staying on the field.
    pub fn walk(&mut self, delta: Vec2) {
        let half = FIELD / 2.0 - Vec2::splat(16.0);
        self.player = (self.player + delta).clamp(-half, half);
    }
}

/// The activation key being typed in the store.
#[derive(Resource, Debug, Clone, Default)]
pub struct KeyEntry(pub String);

/// A short message in the corner.
#[derive(Debug, Clone)]
pub struct Toast {
    pub text: String,
    pub tone: Tone,
    pub age: Duration,
}

/// Colour of a toast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Good,
    Info,
    Bad,
}

/// Recent toasts, newest last.
#[derive(Resource, Debug, Default)]
pub struct Toasts(pub VecDeque<Toast>);

impl Toasts {
    pub fn push(&mut self, tone: Tone, text: impl Into<String>) {
        let text = text.into();
        println!("[toast] {text}");
        self.0.push_back(Toast { text, tone, age: Duration::ZERO });
        while self.0.len() > 3 {
            self.0.pop_front();
        }
    }
}

/// A device code to show while the player enters it on another device.
#[derive(Resource, Debug, Default)]
pub struct DeviceCode(pub Option<(String, String)>);

/// Items that just arrived, for the inventory panel's animation: item id and seconds left.
#[derive(Resource, Debug, Default)]
pub struct Arrivals(pub Vec<(String, f32)>);

/// The game logic.
pub struct StoryPlugin;

/// The set the player's actions are handled in.
#[derive(SystemSet, Debug, Clone, PartialEq, Eq, Hash)]
pub struct ActSet;

impl StoryPlugin {
    /// Order scripted input before it.
    pub const ACT: ActSet = ActSet;
}

impl Plugin for StoryPlugin {
    fn build(&self, app: &mut App) {
        app.init_state::<Screen>()
            .add_message::<DemoAction>()
            .init_resource::<Field>()
            .init_resource::<KeyEntry>()
            .init_resource::<Toasts>()
            .init_resource::<DeviceCode>()
            .init_resource::<Arrivals>()
            .init_resource::<GemShop>()
            .init_resource::<SecondPc>()
            .add_observer(spend_answered)
            .add_systems(OnEnter(Screen::History), |mut history: MessageWriter<LoadHistory>| {
                history.write(LoadHistory::Newest);
            })
            // Visiting the store pulls entitlements (paced by the plugin).
            .pull_entitlements_on_enter(Screen::Store)
            .add_systems(Startup, |mut commands: Commands| {
                commands.spawn((Name::new("Player"), RewardsRecipient));
            })
            .add_systems(
                Update,
                (act.in_set(ActSet), play_field.run_if(in_state(Screen::Field)), narrate, age_toasts).chain(),
            );
    }
}

fn open(config: &RewardsConfig, url: String, toasts: &mut Toasts) {
    if let Err(error) = (config.login.open_browser)(&url) {
        toasts.push(Tone::Bad, format!("Could not open the browser: {error}. Open {url}"));
    }
}

#[allow(clippy::too_many_arguments)]
fn act(
    mut actions: MessageReader<DemoAction>,
    mut next: ResMut<NextState<Screen>>,
    mut login: MessageWriter<LoginRequest>,
    mut activate: MessageWriter<ActivateSubscription>,
    mut sign_up: MessageWriter<SignUpForSubscription>,
    mut sign_up_elsewhere: MessageWriter<SignUpOnAnotherDevice>,
    mut billing: MessageWriter<OpenBillingPage>,
    mut claim: MessageWriter<ClaimReward>,
    (mut spends, mut history, mut shop, mut second_pc): (
        MessageWriter<SpendItems>,
        MessageWriter<LoadHistory>,
        ResMut<GemShop>,
        ResMut<SecondPc>,
    ),
    mut field: ResMut<Field>,
    mut key: ResMut<KeyEntry>,
    mut toasts: ResMut<Toasts>,
    mut device: ResMut<DeviceCode>,
    links: Res<Links>,
    config: Res<RewardsConfig>,
) {
    for action in actions.read() {
        match action {
            DemoAction::LinkAmazon => {
                login.write(LoginRequest::WithBrowser);
            }
            DemoAction::LinkWithCode => {
                login.write(LoginRequest::WithDeviceCode);
            }
            DemoAction::CancelLink => {
                device.0 = None;
                login.write(LoginRequest::Cancel);
            }
            DemoAction::SignOut => {
                login.write(LoginRequest::SignOut);
            }
            DemoAction::Show(screen) => next.set(*screen),
            DemoAction::WalkTowards(target) => {
                let step = (*target - field.player).clamp_length_max(SPEED / 30.0);
                field.walk(step);
            }
            DemoAction::ClaimPrimeOffer(sku) => {
                open(&config, format!("{}/prime-gaming/claim/{sku}", links.sandbox), &mut toasts);
            }
            DemoAction::BuyInstantAccess => {
                open(&config, format!("{}/instant-access/store", links.sandbox), &mut toasts)
            }
            DemoAction::SignUpSeasonPass => {
                sign_up.write(SignUpForSubscription { product_code: SEASON_PASS.into() });
            }
            DemoAction::SignUpSeasonPassElsewhere => {
                sign_up_elsewhere.write(SignUpOnAnotherDevice { product_code: SEASON_PASS.into() });
            }
            DemoAction::TypeKey(c) if key.0.len() < 64 => key.0.push(*c),
            DemoAction::TypeKey(_) => {}
            DemoAction::EraseKey => {
                key.0.pop();
            }
            DemoAction::ActivateKey => {
                let typed = key.0.trim().to_owned();
                if typed.is_empty() {
                    toasts.push(Tone::Bad, "Type the activation key from the sign-up page first.");
                } else {
                    activate.write(ActivateSubscription { activation_key: typed, product_code: SEASON_PASS.into() });
                }
            }
            DemoAction::OpenBilling => {
                billing.write(OpenBillingPage);
            }
            DemoAction::OpenMailbox => open(&config, format!("{}/mailbox", links.sandbox), &mut toasts),
            DemoAction::ClaimReward(reward_id) => {
                claim.write(ClaimReward { reward_id: reward_id.clone() });
            }
            DemoAction::BuyCoinShower => {
                let spend = SpendItems::new([ItemStack { item: "gem".into(), quantity: COIN_SHOWER.1 }]);
                shop.waiting.push(spend.key.clone());
                spends.write(spend);
            }
            DemoAction::OlderHistory => {
                history.write(LoadHistory::Older);
            }
            DemoAction::ContinueOnAnotherPc => match start_second_pc(&links) {
                Ok(child) => {
                    second_pc.0 = Some(child);
                    toasts.push(Tone::Info, "A second PC is starting: link the same Amazon account there.");
                }
                Err(error) => toasts.push(Tone::Bad, format!("Could not start a second PC: {error}")),
            },
        }
    }
}

/// The same demo, as on another PC: its own game data directory, the same sandbox and backend.
fn start_second_pc(links: &Links) -> std::io::Result<std::process::Child> {
    let mut command = std::process::Command::new(std::env::current_exe()?);
    command
        .args(["--second-pc", "--sandbox", &links.sandbox, "--backend", &links.backend, "--data-dir"])
        .arg(&links.data_dir);
    if links.headless {
        command.arg("--headless").stdout(std::process::Stdio::piped());
    }
    command.spawn()
}

/// The backend's answer to a coin shower: coins rain on the field, or the player hears why not.
fn spend_answered(
    answer: On<SpendResult>,
    mut shop: ResMut<GemShop>,
    mut field: ResMut<Field>,
    mut toasts: ResMut<Toasts>,
) {
    let Some(position) = shop.waiting.iter().position(|key| *key == answer.key) else { return };
    match &answer.outcome {
        SpendOutcome::Spent { .. } => {
            shop.waiting.remove(position);
            shop.bought += 1;
            for _ in 0..COIN_SHOWER.2 {
                field.spawn_coin();
            }
            toasts.push(Tone::Good, format!("- {} gems: {} coins rain on the field!", COIN_SHOWER.1, COIN_SHOWER.2));
        }
        SpendOutcome::Insufficient { have, want, .. } => {
            shop.waiting.remove(position);
            toasts.push(Tone::Bad, format!("Not enough gems: {have} held, {want} needed."));
        }
        // Saved and sent again when the backend is back; the answer then settles it.
        SpendOutcome::Offline(_) => toasts.push(Tone::Info, "Offline: the purchase goes through when you are back."),
        SpendOutcome::Refused(error) => {
            shop.waiting.remove(position);
            toasts.push(Tone::Bad, format!("Purchase refused: {error}"));
        }
    }
}

/// The coin race taking scores now, if any.
pub fn running_race(standings: &CompetitionStandings) -> Option<&Standings> {
    standings.competitions.iter().find(|c| c.id.starts_with("coin-race") && c.state == CompetitionState::Running)
}

/// The coin race to show: the running one, else the one that ended last.
pub fn shown_race(standings: &CompetitionStandings) -> Option<&Standings> {
    running_race(standings).or_else(|| standings.competitions.iter().rev().find(|c| c.id.starts_with("coin-race")))
}

/// Picks up coins the player touches and deposits what they carry at the bank (each deposit is the player's
/// score in a running coin race).
fn play_field(
    mut field: ResMut<Field>,
    mut progress: MessageWriter<AchievementProgress>,
    mut unlock: MessageWriter<UnlockAchievement>,
    (mut scores, standings): (MessageWriter<SubmitScore>, Res<CompetitionStandings>),
    perks: Query<&Inventory, With<RewardsRecipient>>,
) {
    let player = field.player;
    let before = field.coins.len();
    field.coins.retain(|coin| coin.distance(player) > PICKUP_RADIUS);
    let picked = (before - field.coins.len()) as u32;
    if picked > 0 {
        field.carried += picked;
        unlock.write(UnlockAchievement { achievement: "first_coin".into() });
        for _ in 0..picked {
            field.spawn_coin();
        }
    }
    if field.carried > 0 && player.distance(BANK) < BANK_RADIUS {
        // The season pass perk: every coin counts twice while the subscription lasts.
        let worth = if perks.iter().any(|inventory| inventory.has("double_coins")) { 2 } else { 1 };
        field.banked += field.carried * worth;
        field.carried = 0;
        field.deposits += 1;
        progress.write(AchievementProgress::add("five_deposits", 1));
        progress.write(AchievementProgress::at_least("reach_level_3", field.level()));
        if let Some(race) = running_race(&standings) {
            scores.write(SubmitScore::new(race.id.clone(), i64::from(field.banked)));
        }
    }
}

fn item_names(items: &[ItemStack], catalog: Option<&ItemCatalog>) -> String {
    items
        .iter()
        .map(|stack| {
            let name = catalog.and_then(|c| c.items.get(&stack.item)).map(|d| d.name.as_str()).unwrap_or(&stack.item);
            format!("{} x {name}", stack.quantity)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn source_name(source: Option<&str>) -> &'static str {
    match source {
        Some("INSTANT_ACCESS") => "Instant Access purchase",
        Some("SUBSCRIPTION" | "DEVPAY") => "season pass",
        Some("PRIME_GAMING") | None => "Prime Gaming",
        Some(_) => "Amazon",
    }
}

/// Turns what the plugin reports into toasts (and console lines).
#[allow(clippy::too_many_arguments)]
fn narrate(
    mut logins: MessageReader<LoginEvent>,
    mut granted: MessageReader<EntitlementGranted>,
    mut revoked: MessageReader<EntitlementRevoked>,
    mut unlocked: MessageReader<AchievementUnlocked>,
    mut moments: MessageReader<MomentEvent>,
    mut subscriptions: MessageReader<SubscriptionEvent>,
    mut errors: MessageReader<RewardsError>,
    mut toasts: ResMut<Toasts>,
    mut device: ResMut<DeviceCode>,
    mut arrivals: ResMut<Arrivals>,
    mut key: ResMut<KeyEntry>,
    catalog: Res<Assets<ItemCatalog>>,
) {
    let catalog = catalog.iter().next().map(|(_, c)| c);
    for event in logins.read() {
        match event {
            LoginEvent::BrowserOpened { .. } => toasts.push(Tone::Info, "Sign in with Amazon in your browser..."),
            LoginEvent::DeviceCodeReady { user_code, verification_uri, .. } => {
                device.0 = Some((user_code.clone(), verification_uri.clone()));
            }
            LoginEvent::SignedIn(account) | LoginEvent::Resumed(account) => {
                device.0 = None;
                toasts.push(Tone::Good, format!("Linked to Amazon as {}", account.name));
            }
            LoginEvent::Failed(error) => {
                device.0 = None;
                toasts.push(Tone::Bad, format!("Sign-in failed: {error}"));
            }
            LoginEvent::SignedOut => {
                toasts.push(Tone::Info, "Signed out. Your items stay with your account: link again on any PC.")
            }
            LoginEvent::ReloginRequired(_) => {
                toasts.push(Tone::Bad, "Your Amazon session ended: link the account again.")
            }
            _ => {}
        }
    }
    for grant in granted.read() {
        for stack in &grant.items {
            arrivals.0.push((stack.item.clone(), 1.5));
        }
        toasts.push(
            Tone::Good,
            format!("+ {} from {}", item_names(&grant.items, catalog), source_name(grant.source.as_deref())),
        );
    }
    for revocation in revoked.read() {
        toasts.push(
            Tone::Bad,
            format!(
                "- {} taken back: the {} was refunded or its payment failed",
                item_names(&revocation.taken, catalog),
                source_name(revocation.source.as_deref())
            ),
        );
    }
    for unlock in unlocked.read() {
        toasts.push(Tone::Good, format!("Achievement unlocked: {}", unlock.title));
    }
    for event in moments.read() {
        match event {
            MomentEvent::Rewarded(reward) => {
                toasts.push(Tone::Good, format!("Reward earned: {} - claim it!", reward.title))
            }
            MomentEvent::NotRewarded { reason, .. } => {
                toasts.push(Tone::Info, format!("No reward this time ({reason})"))
            }
            MomentEvent::Delayed { .. } | MomentEvent::Challenges(_) => {}
        }
    }
    for event in subscriptions.read() {
        match event {
            SubscriptionEvent::Activated(status) => {
                key.0.clear();
                let until = status.paid_until.as_deref().unwrap_or("next month");
                toasts.push(Tone::Good, format!("Season pass active: perks on, renews {until}"));
            }
            SubscriptionEvent::ActivationFailed { reason, .. } => {
                toasts.push(Tone::Bad, format!("Activation refused: {reason}"))
            }
            SubscriptionEvent::Changed(status) if status.payment_problem() => toasts
                .push(Tone::Bad, "Season pass: a payment failed. Fix it on the billing page to get the perks back."),
            SubscriptionEvent::Changed(status) => toasts.push(Tone::Info, format!("Season pass: {}", status.status)),
            SubscriptionEvent::SignUpOpened { .. } => {
                toasts.push(Tone::Info, "Subscribe in your browser; the game activates the pass when you are back.")
            }
            SubscriptionEvent::SignUpReturned { .. } => toasts.push(Tone::Info, "Activating your season pass..."),
            SubscriptionEvent::SignUpLinkReady { url, .. } => {
                toasts.push(Tone::Info, format!("Subscribe on your phone or computer: {url}"))
            }
        }
    }
    for error in errors.read() {
        if !matches!(error, RewardsError::Pull(_) | RewardsError::Report(_)) {
            toasts.push(Tone::Bad, error.to_string());
        }
    }
}

fn age_toasts(time: Res<Time>, mut toasts: ResMut<Toasts>, mut arrivals: ResMut<Arrivals>) {
    for toast in toasts.0.iter_mut() {
        toast.age += time.delta();
    }
    toasts.0.retain(|t| t.age < Duration::from_secs(6));
    for (_, left) in arrivals.0.iter_mut() {
        *left -= time.delta_secs();
    }
    arrivals.0.retain(|(_, left)| *left > 0.0);
}
