//! What each panel holds: the title, field and store screens of the main panel, and the side panel's inventory,
//! achievements and reward cards. `ui` decides when to rebuild them; these functions only spawn.

use bevy::prelude::*;
use bevy_amazon_rewards::prelude::*;

use super::services::{COIN_SHOWER, EMAIL, INSTANT_ACCESS_PRODUCTS, PASSWORD, PRIME_OFFERS};
use super::story::{Arrivals, DemoAction, GemShop, KeyEntry, Screen};
use super::ui::{ACCENT, BAD, CARD, GOOD, MUTED, MainView, PANEL, TEXT, button, card, money, race_panel, text};

fn row(gap: f32) -> Node {
    Node { flex_direction: FlexDirection::Row, column_gap: px(gap), ..default() }
}

/// The title screen: the Amazon link, the sandbox's test customer, where to go.
pub(super) fn title(panel: &mut ChildSpawnerCommands, view: &MainView) {
    panel.spawn(text("Coin Bank", 44.0, TEXT));
    panel.spawn(text("Collect coins, bank them, and earn real rewards through Amazon.", 18.0, MUTED));
    panel.spawn((card(), BackgroundColor(PANEL))).with_children(|c| account_card(c, view));
    panel.spawn((card(), BackgroundColor(PANEL))).with_children(|c| {
        c.spawn(text("Sandbox test customer", 16.0, ACCENT));
        c.spawn(text(format!("email {EMAIL}    password {PASSWORD}"), 16.0, TEXT));
        c.spawn(text(
            format!("Amazon sandbox {}  |  studio backend {}", view.links.sandbox, view.links.backend),
            13.0,
            MUTED,
        ));
        c.spawn(button("Amazon Payments mailbox", DemoAction::OpenMailbox, false));
    });
    panel.spawn(row(10.0)).with_children(|row| {
        row.spawn(button("Play", DemoAction::Show(Screen::Field), true));
        row.spawn(button("Store", DemoAction::Show(Screen::Store), false));
        row.spawn(button("History", DemoAction::Show(Screen::History), false));
    });
}

/// Linked (and as whom), signing in (with the code to enter), or an offer to link.
fn account_card(c: &mut ChildSpawnerCommands, view: &MainView) {
    match (&view.name(), view.login.get()) {
        (Some(name), LoginState::LoggedIn) => {
            c.spawn(text(format!("Linked Amazon account: {name}"), 20.0, GOOD));
            c.spawn(text("Your items live with your account at the studio: any PC shows them.", 14.0, MUTED));
            c.spawn(row(10.0)).with_children(|row| {
                row.spawn(button("Log out", DemoAction::SignOut, false));
                if !view.links.second_pc {
                    row.spawn(button("Continue on another PC", DemoAction::ContinueOnAnotherPc, false));
                }
            });
        }
        (_, LoginState::SigningIn) => {
            c.spawn(text("Signing in... finish in your browser.", 20.0, TEXT));
            if let Some((code, uri)) = &view.device.0 {
                c.spawn(text(format!("On any device, open {uri}"), 16.0, MUTED));
                c.spawn(text(format!("and enter the code  {code}"), 26.0, ACCENT));
            }
            c.spawn(button("Cancel", DemoAction::CancelLink, false));
        }
        _ => {
            c.spawn(text("Link your Amazon account to receive Prime Gaming loot, purchases and rewards.", 16.0, TEXT));
            c.spawn(button("Link Amazon account", DemoAction::LinkAmazon, true));
            c.spawn(button("No browser here? Use a code", DemoAction::LinkWithCode, false));
        }
    }
}

/// The coin field's numbers and the race; the field itself is drawn with sprites.
pub(super) fn field(panel: &mut ChildSpawnerCommands, view: &MainView) {
    let field = &view.field;
    panel.spawn(text(
        format!(
            "Carrying {}  |  Deposits {}  |  Banked {}  |  Level {}",
            field.carried,
            field.deposits,
            field.banked,
            field.level()
        ),
        18.0,
        TEXT,
    ));
    panel.spawn(text("Arrows/WASD: move | touch coins to pick up | walk into the bank to deposit", 14.0, MUTED));
    race_panel(panel, &view.race);
    panel.spawn(row(10.0)).with_children(|row| {
        row.spawn(button("Title", DemoAction::Show(Screen::Title), false));
        row.spawn(button("Store", DemoAction::Show(Screen::Store), false));
    });
}

/// The store: Prime Gaming, Instant Access, the gem shop and the season pass.
pub(super) fn store(panel: &mut ChildSpawnerCommands, view: &MainView) {
    let heading = Node { align_items: AlignItems::Center, ..row(16.0) };
    panel.spawn(heading).with_children(|row| {
        row.spawn(text("Store", 32.0, TEXT));
        if view.status.pulling {
            row.spawn(text("checking for rewards...", 16.0, ACCENT));
        }
    });
    if *view.login.get() != LoginState::LoggedIn {
        panel.spawn(text("Link your Amazon account on the title screen to claim and buy.", 16.0, BAD));
    }
    panel.spawn(row(12.0)).with_children(|row| offers(row, &view.shop));
    panel.spawn((BackgroundColor(PANEL), card())).with_children(|c| season_pass(c, view.pass().as_ref(), &view.key));
    panel.spawn(row(10.0)).with_children(|row| {
        row.spawn(button("Back", DemoAction::Show(Screen::Title), false));
        row.spawn(button("History", DemoAction::Show(Screen::History), false));
    });
}

/// One card per way to get items: free with Prime, bought on Amazon, spent at the studio.
fn offers(row: &mut ChildSpawnerCommands, shop: &GemShop) {
    row.spawn((BackgroundColor(PANEL), Node { width: px(300), ..card() })).with_children(|c| {
        c.spawn(text("Prime Gaming", 18.0, ACCENT));
        c.spawn(text("Free with Prime: claim on Amazon, it arrives here.", 13.0, MUTED));
        for (sku, title) in PRIME_OFFERS {
            c.spawn(text(title, 15.0, TEXT));
            c.spawn(button("Claim on Amazon", DemoAction::ClaimPrimeOffer(sku), false));
        }
    });
    row.spawn((BackgroundColor(PANEL), Node { width: px(280), ..card() })).with_children(|c| {
        c.spawn(text("Instant Access", 18.0, ACCENT));
        c.spawn(text("Bought on Amazon, delivered to your account.", 13.0, MUTED));
        for (_, title, cents) in INSTANT_ACCESS_PRODUCTS {
            c.spawn(text(format!("{title} - {}", money(cents)), 15.0, TEXT));
            c.spawn(button("Buy on Amazon", DemoAction::BuyInstantAccess, false));
        }
    });
    row.spawn((BackgroundColor(PANEL), Node { width: px(260), ..card() })).with_children(|c| {
        c.spawn(text("Gem shop", 18.0, ACCENT));
        c.spawn(text("Spent at the studio: the backend checks you hold the gems.", 13.0, MUTED));
        let (title, gems, _) = COIN_SHOWER;
        c.spawn(text(format!("{title} - {gems} gems"), 15.0, TEXT));
        let label = if shop.waiting.is_empty() { "Buy with gems" } else { "Buying..." };
        c.spawn(button(label, DemoAction::BuyCoinShower, false));
    });
}

/// The season pass: how it stands, and what the player can do about it.
fn season_pass(c: &mut ChildSpawnerCommands, pass: Option<&SubscriptionStatus>, key: &KeyEntry) {
    c.spawn(text("Season pass", 18.0, ACCENT));
    match pass {
        Some(p) => {
            let until = p.paid_until.as_deref().unwrap_or("the end of the month");
            let state = match (p.cancel_at_period_end, p.status.as_str()) {
                (true, _) => format!("cancelled: ends {until}"),
                (false, "active") => format!("renews {until}"),
                (false, "suspended") => "payment problem: perks are off until a payment goes through".to_owned(),
                (false, other) => other.to_owned(),
            };
            c.spawn(text(
                format!(
                    "{} | {}/month | {state}",
                    if p.active { "Active" } else { "Inactive" },
                    money(p.monthly_fee_cents)
                ),
                16.0,
                if p.active { GOOD } else { BAD },
            ));
            if p.next_monthly_fee_cents != p.monthly_fee_cents {
                c.spawn(text(format!("From next month: {}/month", money(p.next_monthly_fee_cents)), 14.0, MUTED));
            }
        }
        None => {
            c.spawn(text(
                "$4.99/month: a badge, and every coin counts twice. Subscribe here or on a phone.",
                15.0,
                TEXT,
            ));
        }
    }
    let actions = Node { align_items: AlignItems::Center, ..row(10.0) };
    c.spawn(actions).with_children(|row| season_pass_actions(row, pass, key));
}

fn season_pass_actions(row: &mut ChildSpawnerCommands, pass: Option<&SubscriptionStatus>, key: &KeyEntry) {
    if pass.is_some_and(|p| p.payment_problem()) {
        row.spawn(button("Fix payment", DemoAction::OpenBilling, true));
        return;
    }
    // One running subscription at a time: the sign-up and key entry only when there is none.
    if pass.is_some_and(|p| p.active) {
        row.spawn(button("Billing page", DemoAction::OpenBilling, true));
        return;
    }
    row.spawn(button("Subscribe", DemoAction::SignUpSeasonPass, false));
    row.spawn(button("On a phone", DemoAction::SignUpSeasonPassElsewhere, false));
    row.spawn((
        Node {
            padding: UiRect::axes(px(10), px(6)),
            margin: UiRect::top(px(8)),
            min_width: px(220),
            border: UiRect::all(px(1)),
            ..default()
        },
        BorderColor::all(MUTED),
        children![text(
            if key.0.is_empty() { "or type the key...".to_owned() } else { key.0.clone() },
            15.0,
            if key.0.is_empty() { MUTED } else { TEXT }
        )],
    ));
    row.spawn(button("Activate", DemoAction::ActivateKey, true));
    row.spawn(button("Billing page", DemoAction::OpenBilling, false));
}

/// The player's items with their icons; what just arrived is highlighted.
pub(super) fn inventory(
    panel: &mut ChildSpawnerCommands,
    items: &[(String, u64)],
    catalog: Option<&ItemCatalog>,
    arrivals: &Arrivals,
    assets: &AssetServer,
) {
    panel.spawn(text("Inventory", 20.0, ACCENT));
    if items.is_empty() {
        panel.spawn(text("Nothing yet. Link Amazon and visit the store.", 14.0, MUTED));
    }
    for (item, n) in items {
        let definition = catalog.and_then(|c| c.items.get(item));
        let label = definition.map(|d| d.name.clone()).unwrap_or_else(|| item.clone());
        let new = arrivals.0.iter().any(|(i, _)| i == item);
        let line = Node {
            align_items: AlignItems::Center,
            padding: UiRect::all(px(4)),
            border_radius: BorderRadius::all(px(6)),
            ..row(10.0)
        };
        panel.spawn((line, BackgroundColor(if new { GOOD.with_alpha(0.35) } else { Color::NONE }))).with_children(
            |r| {
                if let Some(icon) = definition.and_then(|d| d.icon.clone()) {
                    r.spawn((ImageNode::new(assets.load(icon)), Node { width: px(32), height: px(32), ..default() }));
                }
                // A flag (a perk) is on or off; anything else is counted.
                let amount = if definition.is_some_and(|d| d.flag) { "  (on)".to_owned() } else { format!("  x {n}") };
                r.spawn(text(format!("{label}{amount}"), 16.0, TEXT));
            },
        );
    }
}

/// Each achievement's progress: (title, count, threshold, unlocked).
pub(super) fn achievements(panel: &mut ChildSpawnerCommands, progress: &[(String, u32, u32, bool)]) {
    panel.spawn((text("Achievements", 20.0, ACCENT), Node { margin: UiRect::top(px(16)), ..default() }));
    for (title, count, threshold, unlocked) in progress {
        let line = if *unlocked { format!("[done] {title}") } else { format!("{title}  {count}/{threshold}") };
        panel.spawn(text(line, 15.0, if *unlocked { GOOD } else { TEXT }));
    }
}

/// The Moments rewards earned, each with its claim button.
pub(super) fn rewards(panel: &mut ChildSpawnerCommands, moments: &MomentsStatus) {
    if !moments.rewards.is_empty() {
        panel.spawn((text("Rewards", 20.0, ACCENT), Node { margin: UiRect::top(px(16)), ..default() }));
    }
    for earned in &moments.rewards {
        panel.spawn((BackgroundColor(CARD), card())).with_children(|c| {
            c.spawn(text(earned.reward.title.clone(), 16.0, TEXT));
            c.spawn(text(earned.reward.description.clone(), 13.0, MUTED));
            let label = if earned.claim_opened { "Open reward page again" } else { "Claim your reward" };
            c.spawn(button(label, DemoAction::ClaimReward(earned.reward.reward_id.clone()), !earned.claim_opened));
        });
    }
}
