//! The OpenAPI descriptions (`GET /openapi.json`) of the studio backend and the sandbox, generated from the
//! handlers: every route a game or Amazon calls is in them and nothing else is; and, run by
//! `scripts/extras.sh` with Schemathesis installed, a schema-driven fuzzing run against both over real HTTP
//! with valid credentials (studio sessions, DTA1 signatures, LWA tokens, the Moments API key): no 5xx, no
//! answer outside its description, and the requests tried per operation reported.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use amazon_rewards_protocol::competitions::{CompetitionDefinition, Prize, Scoring};
use amazon_rewards_protocol::devpay::license;
use amazon_rewards_protocol::moments::CampaignState;
use common::rewards::Rewards;
use common::studio::*;
use common::*;
use serde_json::Value;

const SERVER_TOKEN: &str = "schemathesis-game-server-token";
/// A competition the descriptions name as the example `{id}`, so generated calls reach its rules.
const COMPETITION: &str = "coin-race";

fn describe(url: &str) -> Value {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async { reqwest::get(format!("{url}/openapi.json")).await.unwrap().json().await.unwrap() })
}

/// `METHOD path` of every operation, and the security schemes each names.
fn operations(doc: &Value) -> Described {
    let mut out = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let schemes = operation["security"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|requirement| requirement.as_object().unwrap().keys().cloned())
                .collect();
            out.insert(format!("{} {path}", method.to_uppercase()), schemes);
        }
    }
    out
}

/// A backend with every service: the inventory (or, with `feed`, the entitlements feed), Moments, DevPay and
/// competitions with a game server's token.
fn full_studio(fixture: &Fixture, rewards: &Rewards, campaign: &str, feed: bool) -> Studio {
    let sandbox = fixture.url();
    Studio::start_with(&sandbox, |config| {
        if !feed {
            let catalog = Path::new(&assets_dir()).join("rewards.catalog.json");
            let catalog = amazon_rewards_backend::inventory::catalog::ServerCatalog::load(&catalog).unwrap();
            config.inventory = Some(amazon_rewards_backend::inventory::InventoryConfig::new(catalog));
        }
        config.moments = Some(rewards.config(&[("five-deposits", campaign, 100, 100_000)]));
        config.devpay = Some(sandbox_devpay(&sandbox));
        config.competitions = Some(amazon_rewards_backend::competitions::CompetitionsConfig {
            server_token: Some(SERVER_TOKEN.into()),
            close_every: Duration::from_secs(60),
        });
    })
}

/// Operations → security schemes, each route with the one scheme given (or none).
type Described = BTreeMap<String, BTreeSet<String>>;

fn with_scheme<'a>(routes: impl IntoIterator<Item = &'a str>, scheme: Option<&str>) -> Described {
    routes.into_iter().map(|route| (route.to_owned(), scheme.into_iter().map(str::to_owned).collect())).collect()
}

/// What a backend owning the inventory, with every service on, must describe.
fn expected_backend() -> Described {
    let mut expected = with_scheme(
        [
            "GET /api/inventory",
            "POST /api/inventory/spend",
            "POST /api/inventory/sync",
            "GET /api/inventory/history",
            "GET /api/instant-access/subscriptions",
            "POST /api/moments",
            "GET /api/moments/challenges",
            "GET /api/moments/rewards",
            "POST /api/devpay/activate",
            "GET /api/devpay/subscriptions",
            "POST /api/devpay/signup",
            "GET /api/competitions",
            "GET /api/competitions/{id}",
            "POST /api/competitions/{id}/scores",
            "GET /link/user/profile",
            "POST /link/unlink",
        ],
        Some("session"),
    );
    expected.extend(with_scheme(["POST /instant-access/linking", "POST /instant-access/fulfillment"], Some("dta1")));
    expected.extend(with_scheme(["POST /server/competitions/{id}/scores"], Some("game_server")));
    expected.extend(with_scheme(
        [
            "POST /link/auth/o2/token",
            "POST /link/auth/o2/create/codepair",
            "POST /link/revoke",
            "GET /healthz",
            "GET /readyz",
        ],
        None,
    ));
    // The pages a player's browser reaches (sent there by the game or by Amazon), described too.
    let pages = [
        "GET /link/authorize",
        "GET /link/callback",
        "GET /accounts/new",
        "POST /accounts/new",
        "GET /accounts/callback",
        "GET /devpay/return",
    ];
    expected.extend(with_scheme(pages, None));
    expected
}

/// What the sandbox must describe: the routes a game or a studio backend calls as it would call Amazon.
fn expected_sandbox() -> Described {
    use amazon_rewards_protocol::moments::{GET_REWARD_INFO_PATH, GET_REWARD_PATH, REWARD_STATUS_PATH};
    let mut expected = with_scheme(["GET /api/entitlements", "POST /api/fulfill"], Some("amazon_access_token"));
    expected.extend(with_scheme(["GET /user/profile"], Some("lwa_token")));
    let moments = [
        format!("POST {GET_REWARD_INFO_PATH}"),
        format!("POST {GET_REWARD_PATH}"),
        format!("GET {REWARD_STATUS_PATH}/{{reward_id}}"),
    ];
    expected.extend(with_scheme(moments.iter().map(String::as_str), Some("moments_api_key")));
    let license_actions = [
        license::ACTIVATE_HOSTED_PRODUCT,
        license::ACTIVATE_DESKTOP_PRODUCT,
        license::VERIFY_BY_PID,
        license::VERIFY_BY_TOKENS,
        license::GET_ACTIVE_SUBSCRIPTIONS_BY_PID,
        license::REFRESH_USER_TOKEN,
    ];
    let license_routes: Vec<String> =
        license_actions.iter().map(|action| format!("POST {}", license::path(action))).collect();
    expected.extend(with_scheme(license_routes.iter().map(String::as_str), None));
    let lwa_and_health = [
        "POST /auth/o2/token",
        "POST /auth/o2/create/codepair",
        "GET /auth/o2/tokeninfo",
        "GET /healthz",
        "GET /readyz",
    ];
    expected.extend(with_scheme(lwa_and_health, None));
    expected
}

#[test]
fn the_descriptions_list_every_route_a_game_or_amazon_calls_and_nothing_else() {
    let fixture = Fixture::start();
    let rewards = Rewards::new(&fixture);
    let campaign = rewards.campaign(100, 100_000, CampaignState::Live);
    let owner = full_studio(&fixture, &rewards, &campaign, false);
    let feed = full_studio(&fixture, &rewards, &campaign, true);

    let expected = expected_backend();
    assert_eq!(operations(&describe(&owner.backend.url())), expected, "the backend owning the inventory");
    // Serving the feed instead of the inventory, the description follows.
    let mut expected_feed = expected.clone();
    expected_feed.retain(|route, _| !route.contains("/api/inventory"));
    expected_feed.extend(with_scheme(["GET /api/entitlements", "POST /api/fulfill"], Some("session")));
    assert_eq!(operations(&describe(&feed.backend.url())), expected_feed, "the backend serving the feed");

    assert_eq!(operations(&describe(&fixture.url())), expected_sandbox(), "the sandbox");
}

/// What a Schemathesis run reached: answers per operation and status.
type Counts = BTreeMap<String, BTreeMap<String, u64>>;

/// Runs Schemathesis against `url`'s description with the credentials in `env`; its answers per operation.
fn schemathesis(name: &str, url: &str, env: &[(&str, String)]) -> Counts {
    let binary = std::env::var("SCHEMATHESIS").unwrap_or_else(|_| "schemathesis".into());
    let hooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let out: PathBuf = std::env::temp_dir().join(format!("schemathesis-{name}-{}.json", std::process::id()));
    let examples = std::env::var("SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "40".into());
    let seed = std::env::var("SCHEMATHESIS_SEED").unwrap_or_else(|_| "20261202".into());
    let status = Command::new(&binary)
        .args(["run", &format!("{url}/openapi.json")])
        .args(["--checks", "not_a_server_error,status_code_conformance,content_type_conformance"])
        .args(["--checks", "response_schema_conformance,response_headers_conformance"])
        .args(["--phases", "examples,coverage,fuzzing", "--max-examples", &examples, "--seed", &seed])
        .args(["--workers", "2", "--request-timeout", "10", "--no-color", "--warnings", "off"])
        .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
        .env("PYTHONPATH", &hooks)
        .env("ST_COUNTS", &out)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .status()
        .unwrap_or_else(|e| panic!("cannot run {binary} (scripts/extras.sh installs it): {e}"));
    let counts: Counts = serde_json::from_str(&std::fs::read_to_string(&out).unwrap_or_default()).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    report(name, &counts);
    assert!(status.success(), "Schemathesis found failures against {name} (above)");
    counts
}

fn report(name: &str, counts: &Counts) {
    let total: u64 = counts.values().flat_map(|statuses| statuses.values()).sum();
    println!("\nSchemathesis against the {name}: {total} requests");
    for (operation, statuses) in counts {
        let sum: u64 = statuses.values().sum();
        let by_status: Vec<String> = statuses.iter().map(|(status, n)| format!("{status}×{n}")).collect();
        println!("  {operation:<55} {sum:>5}  {}", by_status.join(" "));
    }
}

/// Every described operation was tried, and was answered past its credential check (not only 401/403); the
/// signed Instant Access calls were accepted at least once (the DTA1 hook signs what the backend verifies).
fn assert_reached(name: &str, doc: &Value, counts: &Counts, must_succeed: &[&str]) {
    for operation in operations(doc).keys() {
        let statuses = counts.get(operation).unwrap_or_else(|| panic!("{name}: {operation} was never called"));
        assert!(
            statuses.keys().any(|status| status != "401" && status != "403"),
            "{name}: {operation} only got {statuses:?}"
        );
    }
    for operation in must_succeed {
        let statuses = &counts[*operation];
        assert!(
            statuses.keys().any(|status| status.starts_with('2')),
            "{name}: {operation} never succeeded: {statuses:?}"
        );
    }
}

#[test]
#[ignore = "needs Schemathesis: run by scripts/extras.sh"]
fn schemathesis_finds_no_server_error_and_no_answer_outside_the_descriptions() {
    let fixture = Fixture::start();
    fixture.register_client();
    fixture.catalog_offers();
    let customer = fixture.customer("fuzz@example.com");
    fixture.customer("unlink@example.com");
    fixture.grant(&customer.user_id, GOLD, 2);
    let lwa_token = fixture.token(&customer.user_id, 3600);
    let rewards = Rewards::new(&fixture);
    let campaign = rewards.campaign(100, 100_000, CampaignState::Live);

    let sandbox_doc = describe(&fixture.url());
    let env = [
        ("ST_LWA_TOKEN", lwa_token),
        ("ST_MOMENTS_KEY", rewards.api_key.clone()),
        ("ST_CLIENT_ID", CLIENT_ID.to_owned()),
    ];
    let counts = schemathesis("sandbox", &fixture.url(), &env);
    assert_reached("sandbox", &sandbox_doc, &counts, &["GET /api/entitlements", "GET /auth/o2/tokeninfo"]);

    for (name, feed) in [("backend owning the inventory", false), ("backend serving the feed", true)] {
        let studio = full_studio(&fixture, &rewards, &campaign, feed);
        let session = studio.session(&fixture, "fuzz@example.com");
        let unlink_session = studio.session(&fixture, "unlink@example.com");
        define_competition(&studio);
        let url = studio.backend.url();
        let env = [
            ("ST_SESSION", session),
            ("ST_UNLINK_SESSION", unlink_session),
            ("ST_SERVER_TOKEN", SERVER_TOKEN.to_owned()),
            ("ST_DTA1_KEY", "AMAZONKEY".to_owned()),
            ("ST_DTA1_SECRET", "AMAZONSECRET".to_owned()),
            ("ST_CLIENT_ID", CLIENT_ID.to_owned()),
        ];
        let doc = describe(&url);
        let counts = schemathesis(name, &url, &env);
        let signed = ["POST /instant-access/linking", "POST /instant-access/fulfillment"];
        assert_reached(name, &doc, &counts, &signed);
    }
}

/// The example competition, open to client and server scores for a day.
fn define_competition(studio: &Studio) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let definition = CompetitionDefinition {
        id: COMPETITION.into(),
        title: "Coin race".into(),
        starts_at: now - 60,
        ends_at: now + 86_400,
        scoring: Scoring::Highest,
        winners: 3,
        prizes: vec![Prize { place: 1, moment: "five-deposits".into() }],
        client_scores: Some(amazon_rewards_protocol::competitions::ClientScores {
            max_score: 1_000_000,
            min_interval_secs: 0,
        }),
    };
    let url = format!("{}/admin/competitions", studio.backend.operator_url().unwrap());
    let (status, answer) = studio.runtime.block_on(async {
        let answer = reqwest::Client::new().post(url).bearer_auth(OPERATOR_TOKEN).json(&definition).send().await;
        let answer = answer.unwrap();
        (answer.status(), answer.text().await.unwrap_or_default())
    });
    assert!(status.is_success(), "{status} {answer}");
}
