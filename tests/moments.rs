//! Moments end to end: achievements in the game → the plugin's durable outbox → the studio backend (which
//! alone holds the Moments API key) → the sandbox's Rewards API → a reward URL claimed in a real browser →
//! the redemption report. Plus the backend's checks: a replayed moment, budget exhaustion, a suspended
//! campaign, rate limits, a forged API key.

mod common;

use std::time::Duration;

use amazon_rewards_protocol::moments::{CampaignState, MOMENT_PATH, MomentAnswer};
use bevy::prelude::*;
use bevy_amazon_rewards::prelude::*;
use common::rewards::Rewards;
use common::studio::Studio;
use common::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// Reports a moment straight to the backend, as the plugin does.
fn report_moment(studio: &Studio, token: &str, moment: &str) -> (u16, Value) {
    studio.runtime.block_on(async {
        let response = reqwest::Client::new()
            .post(format!("{}{MOMENT_PATH}", studio.backend.url()))
            .header("x-amz-access-token", token)
            .json(&json!({"moment": moment, "achievement": "test"}))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        let mut body: Value = response.json().await.unwrap_or(Value::Null);
        if let Some(retry_after) = retry_after {
            body["retry_after"] = retry_after.into();
        }
        (status, body)
    })
}

/// Like the game's outbox: a moment answered "later" (503, e.g. Amazon's per-key rate limit) is sent again.
fn report_moment_until_answered(studio: &Studio, token: &str, moment: &str) -> Value {
    for _ in 0..20 {
        let (status, body) = report_moment(studio, token, moment);
        if status != 503 {
            return body;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("{moment} was never answered");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn five_deposits_offline_become_exactly_one_reward_claimed_in_a_real_browser() {
    assert!(
        webdriver::available(),
        "install Debian's chromium and chromium-driver (`bash scripts/test.sh` installs them)"
    );
    let fixture = Fixture::start();
    fixture.register_client();
    let customer = fixture.customer("moments@example.com");
    let rewards = Rewards::new(&fixture);
    let campaign = rewards.campaign(250, 10_000, CampaignState::Live);
    // Offline, the session's value is never seen by anyone: the backend is not up.
    let offline_token = "rs_at.offline";
    let data = tempfile::tempdir().unwrap();
    // The backend is not up yet: the game is offline as far as Moments go.
    let port = free_port();
    let mut config = test_config(&fixture.url(), data.path());
    config.moments.moments_url = Some(format!("http://127.0.0.1:{port}"));
    config.moments.achievements_path = Some("rewards.achievements.json".into());
    let (opened_sender, opened) = std::sync::mpsc::channel::<String>();
    let opened_sender = std::sync::Mutex::new(opened_sender);
    config.login.open_browser = std::sync::Arc::new(move |url: &str| {
        opened_sender.lock().unwrap().send(url.to_owned()).map_err(|e| e.to_string().into())
    });

    {
        let mut app = headless_app(config.clone());
        collect::<AchievementUnlocked>(&mut app);
        collect::<MomentEvent>(&mut app);
        login(&mut app, &customer.user_id, offline_token);
        run_until(&mut app, WAIT, "achievements loaded", |app| {
            app.world().resource::<Achievements>().iter().count() == 3
        });
        for deposit in 1..=5 {
            app.world_mut().write_message(AchievementProgress::add("five_deposits", 1));
            app.update();
            if deposit < 5 {
                assert!(collected::<AchievementUnlocked>(&app).is_empty(), "not before the fifth deposit");
            }
        }
        run_until(&mut app, WAIT, "the achievement unlocks", |app| !collected::<AchievementUnlocked>(app).is_empty());
        let unlocked = &collected::<AchievementUnlocked>(&app)[0];
        assert_eq!((unlocked.title.as_str(), unlocked.moment.as_deref()), ("Make 5 deposits", Some("five-deposits")));
        run_until(&mut app, WAIT, "a failed delivery attempt", |app| {
            collected::<MomentEvent>(app).iter().any(|e| matches!(e, MomentEvent::Delayed { .. }))
        });
        let status = app.world().resource::<MomentsStatus>();
        assert_eq!(status.pending, 1);
        assert!(status.last_error.is_some(), "the status says why the moment waits");
        let saved = std::fs::read_to_string(data.path().join("achievements.json")).unwrap();
        assert!(saved.contains("five-deposits"), "the moment is queued on disk: {saved}");
        // The game quits while offline.
    }

    // The backend comes up; the game starts again and delivers what it had queued.
    let studio = Studio::start_with(&fixture.url(), |backend| {
        backend.listen = format!("127.0.0.1:{port}").parse().unwrap();
        backend.moments = Some(rewards.config(&[("five-deposits", &campaign, 250, 10_000)]));
    });
    let token = studio.session(&fixture, "moments@example.com");
    let mut app = headless_app(config);
    collect::<AchievementUnlocked>(&mut app);
    collect::<MomentEvent>(&mut app);
    login(&mut app, &customer.user_id, &token);
    run_until(&mut app, WAIT, "the reward arrives", |app| {
        collected::<MomentEvent>(app).iter().any(|e| matches!(e, MomentEvent::Rewarded(_)))
    });
    let reward = collected::<MomentEvent>(&app)
        .iter()
        .find_map(|e| match e {
            MomentEvent::Rewarded(reward) => Some(reward.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!((reward.title.as_str(), reward.moment.as_str()), ("500 bonus gems", "five-deposits"));
    assert_eq!(app.world().resource::<MomentsStatus>().pending, 0);
    assert!(app.world().resource::<Achievements>().get("five_deposits").unwrap().unlocked, "progress survived");

    // More deposits, or an explicit unlock, change nothing: the achievement and its moment happen once.
    app.world_mut().write_message(AchievementProgress::add("five_deposits", 3));
    app.world_mut().write_message(UnlockAchievement { achievement: "five_deposits".into() });
    run_for(&mut app, Duration::from_millis(300));
    assert!(collected::<AchievementUnlocked>(&app).is_empty());
    assert_eq!(collected::<MomentEvent>(&app).iter().filter(|e| matches!(e, MomentEvent::Rewarded(_))).count(), 1);
    let report = rewards.report(&campaign);
    assert_eq!((report.issued, report.campaign.spent_cents), (1, 250), "exactly one reward, charged once");
    let rows = studio.column(
        "SELECT COUNT(*) FROM moment_rewards WHERE amazon_user_id = $1 AND status = 'rewarded'",
        &customer.user_id,
    );
    assert_eq!(rows, Some(1));

    // The player claims it: the game opens the reward page, and the player claims it in the browser. Each
    // claim is answered to observers too, matched by reward id; a claim of a reward never earned says so.
    let answers = std::sync::Arc::new(std::sync::Mutex::new(Vec::<ClaimAnswered>::new()));
    let sink = answers.clone();
    app.world_mut().add_observer(move |answer: On<ClaimAnswered>| sink.lock().unwrap().push((*answer).clone()));
    app.world_mut().write_message(ClaimReward { reward_id: reward.reward_id.clone() });
    app.world_mut().write_message(ClaimReward { reward_id: "never-earned".into() });
    run_until(&mut app, WAIT, "the claim opens", |app| {
        app.world().resource::<MomentsStatus>().rewards.iter().any(|r| r.claim_opened)
    });
    let answered = |id: &str, outcome| ClaimAnswered { reward_id: id.into(), outcome };
    assert_eq!(
        *answers.lock().unwrap(),
        [answered(&reward.reward_id, ClaimOutcome::Opened), answered("never-earned", ClaimOutcome::UnknownReward)]
    );
    let url = opened.recv_timeout(WAIT).expect("the reward page opened");
    assert_eq!(url, reward.reward_url);
    let browser = webdriver::Browser::launch();
    browser.goto(&url);
    browser.wait_for_text("500 bonus gems", WAIT);
    browser.click("#claim");
    let claimed = browser.wait_for_text(r#"id="redeemed""#, WAIT);
    assert!(claimed.contains(r#"id="reward-code""#), "a digital reward shows its code");
    let report = rewards.report(&campaign);
    assert_eq!((report.issued, report.redeemed), (1, 1), "the report shows it redeemed");

    // The backend learns of the redemption from Amazon.
    let rewards_seen: Value = studio.runtime.block_on(async {
        reqwest::Client::new()
            .get(format!("{}/api/moments/rewards", studio.backend.url()))
            .header("x-amz-access-token", &token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(rewards_seen[0]["redeemed"], true, "{rewards_seen}");
}

#[test]
fn the_backend_answers_a_replayed_moment_with_the_same_reward_and_refuses_unknown_ones() {
    let fixture = Fixture::start();
    fixture.register_client();
    fixture.customer("replay@example.com");
    let rewards = Rewards::new(&fixture);
    let campaign = rewards.campaign(100, 10_000, CampaignState::Live);
    let studio = Studio::start_with(&fixture.url(), |backend| {
        backend.moments = Some(rewards.config(&[("five-deposits", &campaign, 100, 10_000)]));
    });
    let token = studio.session(&fixture, "replay@example.com");
    let (status, first) = report_moment(&studio, &token, "five-deposits");
    assert_eq!(status, 200, "{first}");
    let (_, again) = report_moment(&studio, &token, "five-deposits");
    assert_eq!(first, again, "a replay is answered with the same reward");
    let first: MomentAnswer = serde_json::from_value(first).unwrap();
    assert!(matches!(first, MomentAnswer::Rewarded { .. }));
    assert_eq!(rewards.report(&campaign).issued, 1, "and nothing handed out twice");

    let (status, unknown) = report_moment(&studio, &token, "not-a-moment");
    assert_eq!((status, unknown["error"].as_str()), (404, Some("unknown_moment")));
    let (status, _) = report_moment(&studio, "Atza|forged", "five-deposits");
    assert_eq!(status, 400, "a forged player token is refused");
}

#[test]
fn budgets_and_suspended_campaigns_give_clear_answers_and_charge_nothing() {
    let fixture = Fixture::start();
    fixture.register_client();
    for n in 1..=3 {
        fixture.customer(&format!("p{n}@example.com"));
    }
    let rewards = Rewards::new(&fixture);
    // The studio's own budget (2 × 100) runs out before Amazon's.
    let studio_limited = rewards.campaign(100, 10_000, CampaignState::Live);
    // Amazon's budget (1 × 300) runs out.
    let amazon_limited = rewards.campaign(300, 300, CampaignState::Live);
    let suspended = rewards.campaign(100, 10_000, CampaignState::Live);
    rewards.suspend(&suspended);
    let studio = Studio::start_with(&fixture.url(), |backend| {
        backend.moments = Some(rewards.config(&[
            ("studio-budget", &studio_limited, 100, 200),
            ("amazon-budget", &amazon_limited, 300, 10_000),
            ("suspended", &suspended, 100, 10_000),
        ]));
    });
    let tokens: Vec<String> = (1..=3).map(|n| studio.session(&fixture, &format!("p{n}@example.com"))).collect();

    let outcomes: Vec<Value> =
        tokens.iter().map(|t| report_moment_until_answered(&studio, t, "studio-budget")).collect();
    assert_eq!(outcomes[0]["outcome"], "rewarded");
    assert_eq!(outcomes[1]["outcome"], "rewarded");
    assert_eq!(
        (outcomes[2]["outcome"].as_str(), outcomes[2]["reason"].as_str()),
        (Some("not_rewarded"), Some("budget_exhausted"))
    );
    assert_eq!(rewards.report(&studio_limited).issued, 2, "the studio stopped at its budget without calling Amazon");

    let outcomes: Vec<Value> =
        tokens.iter().take(2).map(|t| report_moment_until_answered(&studio, t, "amazon-budget")).collect();
    assert_eq!(outcomes[0]["outcome"], "rewarded");
    assert_eq!(outcomes[1]["reason"], "budget_exhausted", "{}", outcomes[1]);
    assert_eq!(rewards.report(&amazon_limited).campaign.spent_cents, 300);

    let answer = report_moment_until_answered(&studio, &tokens[0], "suspended");
    assert_eq!(answer["reason"].as_str(), Some("campaign_not_active"), "{answer}");
    assert_eq!(rewards.report(&suspended).issued, 0);
}

#[test]
fn rate_limits_and_a_forged_api_key_delay_moments_without_losing_them() {
    let fixture = Fixture::start();
    fixture.register_client();
    let busy = fixture.customer("busy@example.com");
    let rewards = Rewards::new(&fixture);
    let campaign = rewards.campaign(1, 10_000, CampaignState::Live);
    let moments: Vec<(String, String)> = (0..4).map(|n| (format!("m{n}"), campaign.clone())).collect();
    let specs: Vec<(&str, &str, i64, i64)> = moments.iter().map(|(m, c)| (m.as_str(), c.as_str(), 1, 10_000)).collect();
    let studio = Studio::start_with(&fixture.url(), |backend| {
        let mut config = rewards.config(&specs);
        config.per_player_per_minute = 2;
        backend.moments = Some(config);
    });
    let token = studio.session(&fixture, "busy@example.com");
    assert_eq!(report_moment(&studio, &token, "m0").0, 200);
    assert_eq!(report_moment(&studio, &token, "m1").0, 200, "one campaign, one reward per customer: the same again");
    let (status, limited) = report_moment(&studio, &token, "m2");
    assert_eq!(status, 429, "{limited}");
    assert!(limited["retry_after"].as_str().unwrap().parse::<u64>().unwrap() > 0);

    // A backend holding a forged key: Amazon refuses it, the game is told to retry later, nothing recorded.
    let forged = Studio::start_with(&fixture.url(), |backend| {
        backend.moments = Some(rewards.config_with_key("amzn-moments-forged", &specs));
    });
    let forged_token = forged.session(&fixture, "busy@example.com");
    let (status, answer) = report_moment(&forged, &forged_token, "m3");
    assert_eq!(status, 503, "{answer}");
    assert!(answer["retry_after"].is_string());
    let pending = forged
        .column("SELECT COUNT(*) FROM moment_rewards WHERE amazon_user_id = $1 AND status = 'pending'", &busy.user_id);
    assert_eq!(pending, Some(1), "the moment waits, pending, for the game's retry");
    assert_eq!(rewards.report(&campaign).issued, 1, "the forged key got nothing from Amazon");
}

#[test]
fn challenges_announce_available_campaigns_the_player_has_not_earned_yet() {
    let fixture = Fixture::start();
    fixture.register_client();
    let customer = fixture.customer("challenger@example.com");
    fixture.customer("newcomer@example.com");
    let rewards = Rewards::new(&fixture);
    let deposits = rewards.campaign(100, 10_000, CampaignState::Live);
    let level = rewards.campaign(100, 10_000, CampaignState::Live);
    let awaiting_approval = rewards.campaign(100, 10_000, CampaignState::PendingApproval);
    let studio = Studio::start_with(&fixture.url(), |backend| {
        backend.moments = Some(rewards.config(&[
            ("five-deposits", &deposits, 100, 10_000),
            ("level-3", &level, 100, 10_000),
            ("not-yet-approved", &awaiting_approval, 100, 10_000),
        ]));
    });
    let token = studio.session(&fixture, "challenger@example.com");
    let data = tempfile::tempdir().unwrap();
    let mut config = test_config(&studio.backend.url(), data.path());
    config.moments.achievements_path = Some("rewards.achievements.json".into());
    let mut app = headless_app(config);
    collect::<MomentEvent>(&mut app);
    let announced = |app: &App| -> Vec<Vec<Challenge>> {
        collected::<MomentEvent>(app)
            .iter()
            .filter_map(|e| match e {
                MomentEvent::Challenges(challenges) => Some(challenges.clone()),
                _ => None,
            })
            .collect()
    };
    let moments = |challenges: &[Challenge]| challenges.iter().map(|c| c.moment.clone()).collect::<Vec<_>>();

    // Announced after sign-in without asking: the live campaigns, not the one still awaiting approval.
    login(&mut app, &customer.user_id, &token);
    run_until(&mut app, WAIT, "challenges announced", |app| !announced(app).is_empty());
    let first = announced(&app)[0].clone();
    assert_eq!(moments(&first), ["five-deposits", "level-3"]);
    assert_eq!(
        (first[0].title.as_str(), first[0].description.as_str()),
        ("500 bonus gems", "For making 5 deposits at the bank.")
    );
    assert_eq!(app.world().resource::<MomentsStatus>().challenges, first);

    // Once the player has earned one, it is no longer announced to them; other players still see it.
    let earned: MomentAnswer =
        serde_json::from_value(report_moment_until_answered(&studio, &token, "five-deposits")).unwrap();
    assert!(matches!(earned, MomentAnswer::Rewarded { .. }), "{earned:?}");
    app.world_mut().write_message(RefreshChallenges);
    run_until(&mut app, WAIT, "challenges announced again", |app| announced(app).len() == 2);
    assert_eq!(moments(&announced(&app)[1]), ["level-3"]);
    assert_eq!(moments(&app.world().resource::<MomentsStatus>().challenges), ["level-3"]);
    let newcomer = studio.session(&fixture, "newcomer@example.com");
    let theirs: Vec<Challenge> = studio.runtime.block_on(async {
        reqwest::Client::new()
            .get(format!("{}/api/moments/challenges", studio.backend.url()))
            .header("x-amz-access-token", newcomer)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(moments(&theirs), ["five-deposits", "level-3"]);
}

/// The hardening review's finding 7: the budget check read what was spent, then called Amazon, then wrote;
/// concurrent reports all passed the check and overspent. Now the cost is reserved atomically first: two players
/// at once on two backend processes (four calls, within Amazon's 5 calls/s), a budget for one reward, Amazon
/// slow to hand it out: exactly one rewarded.
#[test]
fn concurrent_reports_on_two_processes_never_overspend_the_budget() {
    let fixture = Fixture::start();
    fixture.register_client();
    let emails: Vec<String> = (1..=2).map(|n| format!("racer{n}@example.com")).collect();
    for email in &emails {
        fixture.customer(email);
    }
    let rewards = Rewards::new(&fixture);
    let campaign = rewards.campaign(100, 100_000, CampaignState::Live);
    let studio = Studio::start_with(&fixture.url(), |backend| {
        let mut config = rewards.config(&[("race", &campaign, 100, 100)]);
        config.global_per_second = 1000;
        backend.moments = Some(config);
    });
    let sibling = studio.sibling();
    let urls = [studio.backend.url(), sibling.url()];
    let tokens: Vec<String> = emails.iter().map(|e| studio.session(&fixture, e)).collect();
    // getReward (the billable call) answers slowly: reports overlap between the budget check and the record.
    let slow = amazon_rewards_protocol::sandbox_admin::FaultKind::Delay { millis: 400 };
    fixture.fault(amazon_rewards_protocol::moments::GET_REWARD_PATH, 2, slow);
    let start = std::sync::Barrier::new(tokens.len());
    let outcomes: Vec<Value> = std::thread::scope(|scope| {
        let calls: Vec<_> = tokens
            .iter()
            .enumerate()
            .map(|(i, token)| {
                let (studio, url, start) = (&studio, urls[i % 2].clone(), &start);
                scope.spawn(move || {
                    start.wait();
                    for _ in 0..40 {
                        let answer = studio.runtime.block_on(async {
                            let response = reqwest::Client::new()
                                .post(format!("{url}{MOMENT_PATH}"))
                                .header("x-amz-access-token", token)
                                .json(&json!({"moment": "race", "achievement": "test"}))
                                .send()
                                .await
                                .unwrap();
                            (response.status().as_u16(), response.json::<Value>().await.unwrap_or_default())
                        });
                        if answer.0 == 200 {
                            return answer.1;
                        }
                        std::thread::sleep(Duration::from_millis(250));
                    }
                    panic!("never answered");
                })
            })
            .collect();
        calls.into_iter().map(|call| call.join().unwrap()).collect()
    });
    let rewarded = outcomes.iter().filter(|o| o["outcome"] == "rewarded").count();
    let exhausted = outcomes.iter().filter(|o| o["reason"] == "budget_exhausted").count();
    assert_eq!((rewarded, exhausted), (1, 1), "{outcomes:?}");
    assert_eq!(rewards.report(&campaign).issued, 1, "Amazon handed out exactly one");
    let reserved = studio.column("SELECT reserved_cents FROM moment_budgets WHERE campaign_id = $1", &campaign);
    assert_eq!(reserved, Some(100), "what was set aside is exactly what was spent");
    studio.runtime.block_on(sibling.shutdown());
}
