//! Moments competitions on the studio backend, over real HTTP with the sandbox's Rewards API: trusted scores from
//! the studio's game server, untrusted client scores (bounded, paced, marked, refusals counted), standings with
//! the player's own place and ties to whoever reached a score first, a late score refused, closing once and
//! paying each prized place within the campaign's budget (or recording why not), two competitions ending at once
//! across three processes on PostgreSQL closed once each.

mod common;

use std::time::Duration;

use amazon_rewards_backend::competitions::CompetitionsConfig;
use amazon_rewards_protocol::competitions::{
    ClientScores, CompetitionDefinition, CompetitionState, Prize, Scoring, Standings,
};
use amazon_rewards_protocol::moments::CampaignState;
use common::rewards::Rewards;
use common::studio::*;
use common::*;
use serde_json::{Value, json};

const SERVER_TOKEN: &str = "coin-race-game-server-credential";

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A backend with competitions (closed every 100 ms), the game server's credential, and Moments paying
/// `race_winner` and `race_second` from `campaign`.
fn studio(fixture: &Fixture, rewards: &Rewards, campaign: &str, budget: i64, database: Option<String>) -> Studio {
    Studio::start_with(&fixture.url(), |config| {
        config.competitions = Some(CompetitionsConfig {
            server_token: Some(SERVER_TOKEN.into()),
            close_every: Duration::from_millis(100),
        });
        config.moments =
            Some(rewards.config(&[("race_winner", campaign, 100, budget), ("race_second", campaign, 100, budget)]));
        if let Some(database) = database {
            config.database_url = database;
        }
    })
}

fn race(id: &str, ends_in: i64, client_scores: Option<ClientScores>) -> CompetitionDefinition {
    CompetitionDefinition {
        id: id.into(),
        title: format!("Race {id}"),
        starts_at: now() - 1,
        ends_at: now() + ends_in,
        scoring: Scoring::Highest,
        winners: 3,
        prizes: vec![
            Prize { place: 1, moment: "race_winner".into() },
            Prize { place: 2, moment: "race_second".into() },
        ],
        client_scores,
    }
}

fn http(studio: &Studio, method: &str, url: String, bearer: &str, body: Option<Value>) -> (u16, Value) {
    studio.runtime.block_on(async {
        let http = reqwest::Client::new();
        let request = match body {
            Some(body) => http.post(url).json(&body),
            None if method == "GET" => http.get(url),
            None => http.post(url),
        };
        let answer = request.bearer_auth(bearer).send().await.unwrap();
        (answer.status().as_u16(), answer.json().await.unwrap_or_default())
    })
}

fn define(studio: &Studio, definition: &CompetitionDefinition) {
    let url = format!("{}/admin/competitions", studio.backend.operator_url().unwrap());
    let (status, answer) = http(studio, "POST", url, OPERATOR_TOKEN, Some(json!(definition)));
    assert_eq!(status, 201, "{answer}");
}

fn server_score(studio: &Studio, base: &str, id: &str, user: &str, key: &str, score: i64) -> (u16, Value) {
    let url = format!("{base}/server/competitions/{id}/scores");
    http(studio, "POST", url, SERVER_TOKEN, Some(json!({"user_id": user, "key": key, "score": score})))
}

fn client_score(studio: &Studio, id: &str, session: &str, key: &str, score: i64) -> (u16, Value) {
    let url = format!("{}/api/competitions/{id}/scores", studio.backend.url());
    http(studio, "POST", url, session, Some(json!({"key": key, "score": score})))
}

fn standings(studio: &Studio, id: &str, session: &str) -> Standings {
    let (status, answer) =
        http(studio, "GET", format!("{}/api/competitions/{id}", studio.backend.url()), session, None);
    assert_eq!(status, 200, "{answer}");
    serde_json::from_value(answer).unwrap()
}

/// Waits until `id` is closed and no prize is still being paid.
fn closed(studio: &Studio, id: &str, session: &str) -> Standings {
    let started = std::time::Instant::now();
    loop {
        let standings = standings(studio, id, session);
        if standings.state == CompetitionState::Closed && standings.results.iter().all(|r| r.status != "pending") {
            return standings;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "not closed: {standings:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn operator_view(studio: &Studio, id: &str) -> Value {
    let url = format!("{}/admin/competitions/{id}", studio.backend.operator_url().unwrap());
    http(studio, "GET", url, OPERATOR_TOKEN, None).1
}

/// Four linked players: their sessions and game accounts.
fn players(studio: &Studio, fixture: &Fixture, prefix: &str) -> Vec<(String, String)> {
    (0..4)
        .map(|n| {
            let email = format!("{prefix}-{n}@example.com");
            let customer = fixture.customer(&email);
            let session = studio.session(fixture, &email);
            let account = studio.texts("SELECT user_id FROM accounts WHERE amazon_user_id = $1", &customer.user_id);
            (session, account[0].clone())
        })
        .collect()
}

#[test]
fn trusted_scores_rank_ties_to_the_first_close_once_and_pay_each_prized_place() {
    let fixture = Fixture::start();
    let rewards = Rewards::new(&fixture);
    let campaign = rewards.campaign(100, 10_000, CampaignState::Live);
    let studio = studio(&fixture, &rewards, &campaign, 10_000, None);
    let players = players(&studio, &fixture, "trusted");
    define(&studio, &race("cup", 3, None));
    let base = studio.backend.url();
    // B reaches 70 before C does: B keeps first place.
    for (n, score) in [(0, 50), (1, 70), (2, 70), (3, 10)] {
        let (status, answer) = server_score(&studio, &base, "cup", &players[n].1, &format!("s-{n}"), score);
        assert_eq!((status, answer["best"].as_i64()), (200, Some(score)), "{answer}");
    }
    let (_, again) = server_score(&studio, &base, "cup", &players[0].1, "s-0", 50);
    assert_eq!(again, json!({"best": 50, "improved": true}), "a repeated key answers the first answer");
    let (_, lower) = server_score(&studio, &base, "cup", &players[0].1, "s-0b", 20);
    assert_eq!(lower, json!({"best": 50, "improved": false}));
    assert_eq!(server_score(&studio, &base, "cup", &players[0].1, "x", 1).0, 200);
    let (status, answer) = http(&studio, "POST", format!("{base}/server/competitions/cup/scores"), "wrong-token", None);
    assert_eq!((status, answer["error"].as_str()), (401, Some("invalid_server_token")));
    // This competition takes no client scores.
    let (status, answer) = client_score(&studio, "cup", &players[0].0, "c-1", 99);
    assert_eq!((status, answer["error"].as_str()), (403, Some("client_scores_not_allowed")), "{answer}");

    let running = standings(&studio, "cup", &players[2].0);
    let top: Vec<_> = running.top.iter().map(|s| (s.place, s.score, s.trusted)).collect();
    assert_eq!(top, [(1, 70, true), (2, 70, true), (3, 50, true), (4, 10, true)]);
    assert_eq!(running.you.as_ref().map(|y| y.place), Some(2), "C is second: B reached 70 first");
    assert!(!running.untrusted && running.state == CompetitionState::Running);

    let done = closed(&studio, "cup", &players[1].0);
    let results: Vec<_> = done.results.iter().map(|r| (r.place, r.score, r.status.as_str())).collect();
    assert_eq!(results, [(1, 70, "rewarded"), (2, 70, "rewarded"), (3, 50, "no_prize")]);
    let prize = done.your_prize.expect("the winner's prize, to claim");
    assert!(prize.reward_url.starts_with(&fixture.url()), "{prize:?}");
    assert_eq!(rewards.report(&campaign).issued, 2, "one reward per prized place");
    // After the end, scores are refused.
    let (status, answer) = server_score(&studio, &base, "cup", &players[3].1, "late", 1000);
    assert_eq!((status, answer["error"].as_str()), (409, Some("competition_ended")), "{answer}");
    let view = operator_view(&studio, "cup");
    assert_eq!(view["refusals"], json!({"client_scores_not_allowed": 1, "competition_ended": 1}), "{view}");
    assert_eq!(view["untrusted"], false);
}

#[test]
fn client_scores_are_bounded_paced_marked_untrusted_and_a_spent_budget_is_recorded() {
    let fixture = Fixture::start();
    let rewards = Rewards::new(&fixture);
    let campaign = rewards.campaign(100, 10_000, CampaignState::Live);
    // The studio's budget pays one prize only.
    let studio = studio(&fixture, &rewards, &campaign, 100, None);
    let players = players(&studio, &fixture, "client");
    define(&studio, &race("open", 3, Some(ClientScores { max_score: 100, min_interval_secs: 60 })));
    assert_eq!(client_score(&studio, "open", &players[0].0, "a-1", 40).0, 200);
    let (status, answer) = client_score(&studio, "open", &players[0].0, "a-2", 60);
    assert_eq!((status, answer["error"].as_str()), (409, Some("too_soon")), "{answer}");
    let (status, answer) = client_score(&studio, "open", &players[1].0, "b-1", 101);
    assert_eq!((status, answer["error"].as_str()), (422, Some("score_out_of_range")), "{answer}");
    assert_eq!(client_score(&studio, "open", &players[1].0, "b-2", 90).0, 200);
    let running = standings(&studio, "open", &players[0].0);
    assert!(running.untrusted, "a competition open to client scores says so");
    assert!(running.top.iter().all(|s| !s.trusted));
    assert_eq!(running.you.map(|y| (y.place, y.score)), Some((2, 40)));

    let done = closed(&studio, "open", &players[1].0);
    let results: Vec<_> = done.results.iter().map(|r| (r.place, r.status.as_str(), r.reason.as_deref())).collect();
    assert_eq!(results, [(1, "rewarded", None), (2, "not_rewarded", Some("budget_exhausted"))]);
    let view = operator_view(&studio, "open");
    assert_eq!(view["refusals"], json!({"score_out_of_range": 1, "too_soon": 1}), "{view}");
    assert_eq!((view["untrusted"].as_bool(), view["places"][0]["trusted"].as_bool()), (Some(true), Some(false)));
}

#[test]
fn two_competitions_ending_at_once_across_three_processes_on_postgresql_close_once_each() {
    sqlx::any::install_default_drivers();
    let server = test_postgres::TestPostgres::start();
    let fixture = Fixture::start();
    let rewards = Rewards::new(&fixture);
    let campaign = rewards.campaign(100, 100_000, CampaignState::Live);
    let studio = studio(&fixture, &rewards, &campaign, 100_000, Some(server.fresh_database()));
    let (second, third) = (studio.sibling(), studio.sibling());
    let players = players(&studio, &fixture, "pg");
    let ends = now() + 3;
    for id in ["north", "south"] {
        define(&studio, &CompetitionDefinition { ends_at: ends, ..race(id, 3, None) });
    }
    for (n, (_, account)) in players.iter().enumerate() {
        for (id, base) in [("north", second.url()), ("south", third.url())] {
            let score = (n as i64 + 1) * if id == "north" { 10 } else { -10 } + 100;
            assert_eq!(server_score(&studio, &base, id, account, &format!("{id}-{n}"), score).0, 200);
        }
    }
    for id in ["north", "south"] {
        let done = closed(&studio, id, &players[0].0);
        let places: Vec<_> = done.results.iter().map(|r| (r.place, r.status.as_str())).collect();
        assert_eq!(places, [(1, "rewarded"), (2, "rewarded"), (3, "no_prize")], "{id}");
    }
    let results = studio.texts("SELECT competition_id FROM competition_results WHERE competition_id <> $1", "");
    assert_eq!(results.len(), 6, "three places each, recorded once: {results:?}");
    let prizes =
        studio.texts("SELECT moment FROM moment_rewards WHERE moment LIKE 'competition/%' AND status = $1", "rewarded");
    assert_eq!(prizes.len(), 4, "{prizes:?}");
    assert_eq!(rewards.report(&campaign).issued, 4, "each prize handed out once, whichever process paid it");
}

#[test]
fn the_game_submits_untrusted_scores_follows_the_standings_and_claims_its_prize() {
    use bevy::prelude::*;
    use bevy_amazon_rewards::prelude::*;
    use std::sync::{Arc, Mutex};

    let fixture = Fixture::start();
    let rewards = Rewards::new(&fixture);
    let campaign = rewards.campaign(100, 10_000, CampaignState::Live);
    let studio = studio(&fixture, &rewards, &campaign, 10_000, None);
    let players = players(&studio, &fixture, "game");
    define(&studio, &race("coin-race", 3, Some(ClientScores { max_score: 1000, min_interval_secs: 0 })));
    // Another player scores less, through the game server.
    assert_eq!(server_score(&studio, &studio.backend.url(), "coin-race", &players[1].1, "s", 30).0, 200);

    let data = tempfile::tempdir().unwrap();
    let mut config = test_config(&studio.backend.url(), data.path());
    config.login.studio_backend = Some(studio.backend.url());
    config.entitlements.source = InventorySource::StudioBackend;
    config.moments.achievements_path = Some("rewards.achievements.json".into());
    config.moments.competitions = true;
    let opened = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = opened.clone();
    config.login.open_browser = Arc::new(move |url: &str| {
        seen.lock().unwrap().push(url.to_owned());
        Ok(())
    });
    let mut app = headless_app(config);
    collect::<MomentEvent>(&mut app);
    #[derive(Resource, Default)]
    struct Answers(Vec<ScoreAnswered>);
    app.init_resource::<Answers>();
    app.add_observer(|answer: On<ScoreAnswered>, mut answers: ResMut<Answers>| answers.0.push((*answer).clone()));
    spawn_recipient(&mut app);
    login(&mut app, "game-0", &players[0].0);

    app.world_mut().write_message(SubmitScore::new("coin-race", 45));
    run_until(&mut app, Duration::from_secs(10), "the score answered", |app: &mut App| {
        !app.world().resource::<Answers>().0.is_empty()
    });
    let answer = app.world().resource::<Answers>().0[0].outcome.clone();
    assert_eq!(answer, ScoreOutcome::Accepted { best: 45, improved: true });
    run_until(&mut app, Duration::from_secs(10), "standings with our place", |app: &mut App| {
        let standings = app.world().resource::<CompetitionStandings>();
        standings.get("coin-race").and_then(|race| race.you.as_ref()).is_some_and(|you| you.place == 1)
    });
    assert!(app.world().resource::<CompetitionStandings>().get("coin-race").unwrap().untrusted);

    // The race ends; the backend closes it and pays first place; the game polls, and the prize is claimable.
    run_until(&mut app, Duration::from_secs(20), "the prize", |app: &mut App| {
        collected::<MomentEvent>(app).iter().any(|e| matches!(e, MomentEvent::Rewarded(_)))
    });
    let rewarded: Vec<_> = collected::<MomentEvent>(&app)
        .iter()
        .filter_map(|e| if let MomentEvent::Rewarded(reward) = e { Some(reward.clone()) } else { None })
        .collect();
    assert_eq!(rewarded.len(), 1, "one prize, announced once: {rewarded:?}");
    let reward = rewarded[0].clone();
    assert!(reward.moment.starts_with("competition/coin-race/"), "{reward:?}");
    app.world_mut().write_message(ClaimReward { reward_id: reward.reward_id.clone() });
    run_until(&mut app, Duration::from_secs(5), "the claim page opened", |_| !opened.lock().unwrap().is_empty());
    assert_eq!(opened.lock().unwrap()[0], reward.reward_url);
    // A late score is refused, typed.
    app.world_mut().write_message(SubmitScore::new("coin-race", 999));
    run_until(&mut app, Duration::from_secs(10), "the late score answered", |app: &mut App| {
        app.world().resource::<Answers>().0.len() == 2
    });
    assert_eq!(app.world().resource::<Answers>().0[1].outcome, ScoreOutcome::Refused("competition_ended".into()));
}
