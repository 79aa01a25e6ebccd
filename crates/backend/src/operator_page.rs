//! The operator's page (`GET /page` on the operator listener, behind the operator token): "why did my reward not
//! arrive?". Search a game account, an Amazon user id or an entitlement id (a Prime Gaming entitlement, an Instant
//! Access purchase token, an inventory change's key) and get that player's timeline — link state, grants,
//! reports, revocations, spends, Instant Access purchases and subscriptions, Moments rewards, DevPay
//! subscriptions, held entitlements, competition results — plus the campaign budgets, every held entitlement,
//! and grants and revocations per day drawn as SVG. A browser signs in once at `/login` with the operator token:
//! a cookie (HttpOnly, SameSite=Strict) derived from the token then opens the page; it is accepted for `GET`s
//! only, so no other site can make the browser change anything.

use amazon_rewards_protocol::dta1::AmzDate;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sqlx::AnyPool;

use crate::AppState;
use crate::error::BackendError;

/// The cookie the sign-in sets.
pub const COOKIE: &str = "operator_session";

/// The cookie's value for `token`: derived from it (never the token itself), hex.
pub fn cookie_value(token: &str) -> String {
    hex::encode(Sha256::digest(format!("operator-page-cookie:{token}").as_bytes()))
}

/// HTML-escapes `text`.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px;background:#f6f7f9;color:#1d232b}
table{border-collapse:collapse;background:#fff;margin:8px 0 20px}td,th{border:1px solid #d8dde3;padding:4px 8px;
text-align:left;font-size:14px}h1{font-size:22px}h2{font-size:17px;margin-top:24px}.warn{color:#b3261e}
form{margin:12px 0}input{padding:6px;width:420px}";

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head>\
         <body>{body}</body></html>",
        escape(title)
    ))
}

/// `GET /login`: the sign-in form.
pub async fn login_form() -> Html<String> {
    page(
        "Operator sign-in",
        "<h1>Operator sign-in</h1><form method=\"post\" action=\"/login\"><input type=\"password\" name=\"token\" \
         id=\"token\" placeholder=\"operator token\"> <button id=\"sign-in\">Sign in</button></form>",
    )
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

/// `POST /login`: a right token sets the cookie and opens the page; a wrong one shows the form again.
pub async fn login(State(expected): State<std::sync::Arc<Option<[u8; 32]>>>, Form(form): Form<LoginForm>) -> Response {
    let right = expected.as_ref().as_ref().is_some_and(|expected| crate::operator::same_digest(expected, &form.token));
    if !right {
        return (axum::http::StatusCode::UNAUTHORIZED, page("Operator sign-in", "<p class=\"warn\">Wrong token.</p>"))
            .into_response();
    }
    let cookie = format!("{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/", cookie_value(&form.token));
    ([(header::SET_COOKIE, cookie)], Redirect::to("/page")).into_response()
}

/// `?q=…`.
#[derive(Deserialize, Default)]
pub struct Search {
    q: Option<String>,
}

/// `GET /page[?q=…]`.
pub async fn operator_page(
    State(state): State<AppState>,
    Query(search): Query<Search>,
) -> Result<Html<String>, BackendError> {
    let query = search.q.unwrap_or_default().trim().to_owned();
    let mut body = format!(
        "<h1>Where is my reward?</h1><form method=\"get\" action=\"/page\"><input name=\"q\" id=\"q\" value=\"{}\" \
         placeholder=\"game account, Amazon user id or entitlement id\"> <button id=\"search\">Search</button></form>",
        escape(&query)
    );
    if !query.is_empty() {
        match find_account(&state.pool, &query).await? {
            Some(user_id) => body.push_str(&timeline_html(&state.pool, &user_id).await?),
            None => body.push_str(&format!("<p class=\"warn\">No player matches {}.</p>", escape(&query))),
        }
    }
    body.push_str("<h2>Grants and revocations per day (last 30 days)</h2>");
    body.push_str(&chart_svg(&per_day(&state.pool).await?));
    body.push_str(&budgets_html(&state.pool).await?);
    body.push_str(&held_html(&state.pool).await?);
    Ok(page("Operator", &body))
}

/// The game account `query` names: the account itself, its Amazon user id, or one of its entitlements.
pub async fn find_account(pool: &AnyPool, query: &str) -> Result<Option<String>, sqlx::Error> {
    let lookups = [
        "SELECT user_id FROM accounts WHERE user_id = $1 OR amazon_user_id = $1 OR username = $1",
        "SELECT user_id FROM prime_grants WHERE entitlement_id = $1 OR entitlement_id = 'pg:' || $1",
        "SELECT user_id FROM ia_purchases WHERE purchase_token = $1",
        "SELECT user_id FROM ia_subscriptions WHERE subscription_id = $1",
        "SELECT user_id FROM held_entitlements WHERE entitlement_id = $1",
        "SELECT user_id FROM inventory_changes WHERE change_key = $1 OR change_key = 'ia:' || $1",
    ];
    for sql in lookups {
        let found: Option<String> = sqlx::query_scalar(sql).bind(query).fetch_optional(pool).await?;
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// One line of a timeline: when (unix seconds), what, and the details.
pub type Event = (i64, String, String);

/// Everything that happened to `user_id`'s rewards, oldest first.
pub async fn timeline(pool: &AnyPool, user_id: &str) -> Result<Vec<Event>, sqlx::Error> {
    let mut events: Vec<Event> = Vec::new();
    let Some(amazon) = account_events(pool, user_id, &mut events).await? else { return Ok(events) };
    change_events(pool, user_id, &mut events).await?;
    prime_events(pool, user_id, &mut events).await?;
    instant_access_events(pool, user_id, &mut events).await?;
    if let Some(amazon) = amazon {
        moment_events(pool, &amazon, &mut events).await?;
    }
    standing_events(pool, user_id, &mut events).await?;
    events.sort_by_key(|(at, _, _)| *at);
    Ok(events)
}

/// The account and its Amazon link; `None` without such an account, else its Amazon user id (if linked).
async fn account_events(
    pool: &AnyPool,
    user_id: &str,
    events: &mut Vec<Event>,
) -> Result<Option<Option<String>>, sqlx::Error> {
    let account: Option<(String, Option<String>, i64, Option<i64>)> =
        sqlx::query_as("SELECT username, amazon_user_id, created_at, link_broken_at FROM accounts WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(pool)
            .await?;
    let Some((username, amazon, created, broken)) = account else { return Ok(None) };
    events.push((
        created,
        "account".into(),
        format!("game account {username} created, Amazon {}", amazon.clone().unwrap_or("not linked".into())),
    ));
    if let Some(at) = broken {
        events.push((
            at,
            "link".into(),
            "Amazon link broken (LWA refused the refresh token): the player must link again".into(),
        ));
    }
    let linked: Option<i64> = sqlx::query_scalar("SELECT updated_at FROM lwa_tokens WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(pool)
        .await?;
    if let Some(at) = linked {
        events.push((at, "link".into(), "Amazon tokens held (Prime Gaming relay possible)".into()));
    }
    Ok(Some(amazon))
}

/// The inventory's history: grants, spends, revocations with what could not be taken back.
async fn change_events(pool: &AnyPool, user_id: &str, events: &mut Vec<Event>) -> Result<(), sqlx::Error> {
    type Change = (i64, i64, String, String, String, Option<String>, String, Option<String>);
    let changes: Vec<Change> = sqlx::query_as(
        "SELECT created_at, version, kind, source, change_key, sku, items, debt FROM inventory_changes
         WHERE user_id = $1 ORDER BY version LIMIT 1000",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    for (at, version, kind, source, key, sku, items, debt) in changes {
        let debt = debt.map(|d| format!(", could not take back (spent): {d}")).unwrap_or_default();
        let sku = sku.map(|s| format!(" {s}")).unwrap_or_default();
        events.push((at, kind, format!("v{version} {source}{sku} ({key}): {items}{debt}")));
    }
    Ok(())
}

/// Prime Gaming grants and whether each was reported.
async fn prime_events(pool: &AnyPool, user_id: &str, events: &mut Vec<Event>) -> Result<(), sqlx::Error> {
    let grants: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT entitlement_id, instruction, granted_at, reported_at FROM prime_grants WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    for (id, instruction, at, reported) in grants {
        let report = match reported {
            Some(_) => "reported to Prime Gaming".to_owned(),
            None => "NOT reported yet (the worker retries)".to_owned(),
        };
        events.push((at, "prime gaming".into(), format!("{id}: {instruction} applied, {report}")));
    }
    Ok(())
}

/// `ia_purchases`: token, product, created, revoked, reason, revoked at.
type PurchaseRow = (String, String, i64, i64, Option<String>, Option<i64>);
/// `ia_subscriptions`: id, product, activated, reason, period, deactivated at.
type SubscriptionRow = (String, String, i64, Option<String>, Option<String>, Option<i64>);
/// `moment_rewards`: created, moment, status, reason, reward URL.
type MomentRow = (i64, String, String, Option<String>, Option<String>);

/// Amazon's Instant Access calls: purchases, revocations, subscriptions.
async fn instant_access_events(pool: &AnyPool, user_id: &str, events: &mut Vec<Event>) -> Result<(), sqlx::Error> {
    let purchases: Vec<PurchaseRow> = sqlx::query_as(
        "SELECT purchase_token, product_id, created_at, revoked, revoke_reason, revoked_at FROM ia_purchases WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    for (token, product, at, revoked, reason, revoked_at) in purchases {
        events.push((at, "instant access".into(), format!("Purchase {product} ({token}) answered OK")));
        if revoked != 0 {
            let reason = reason.unwrap_or_default();
            events.push((
                revoked_at.unwrap_or(at),
                "instant access".into(),
                format!("Revoke {product} ({token}): {reason}"),
            ));
        }
    }
    let subscriptions: Vec<SubscriptionRow> = sqlx::query_as(
        "SELECT subscription_id, product_id, activated_at, deactivate_reason, period, deactivated_at
         FROM ia_subscriptions WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    for (id, product, at, reason, period, ended) in subscriptions {
        events.push((at, "instant access".into(), format!("SubscriptionActivate {product} ({id})")));
        if let Some(ended) = ended {
            let (reason, period) = (reason.unwrap_or_default(), period.unwrap_or_default());
            events.push((
                ended,
                "instant access".into(),
                format!("SubscriptionDeactivate {product} ({id}): {reason} in {period}"),
            ));
        }
    }
    Ok(())
}

/// Moments rewards of the Amazon customer.
async fn moment_events(pool: &AnyPool, amazon: &str, events: &mut Vec<Event>) -> Result<(), sqlx::Error> {
    let rewards: Vec<MomentRow> = sqlx::query_as(
        "SELECT created_at, moment, status, reason, reward_url FROM moment_rewards WHERE amazon_user_id = $1",
    )
    .bind(amazon)
    .fetch_all(pool)
    .await?;
    for (at, moment, status, reason, url) in rewards {
        let detail = reason.or(url).unwrap_or_default();
        events.push((at, "moments".into(), format!("{moment}: {status} {detail}")));
    }
    Ok(())
}

/// How things stand now: DevPay subscriptions, held entitlements, competition results.
async fn standing_events(pool: &AnyPool, user_id: &str, events: &mut Vec<Event>) -> Result<(), sqlx::Error> {
    let devpay: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT persistent_id, product_code, status, paid_until FROM devpay_subscriptions WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    for (id, product, status, paid_until) in devpay {
        let until = paid_until.unwrap_or_default();
        events.push((i64::MAX, "devpay".into(), format!("{product} ({id}): {status}, paid until {until}")));
    }
    let held: Vec<(i64, String, String, String)> =
        sqlx::query_as("SELECT held_at, entitlement_id, source, sku FROM held_entitlements WHERE user_id = $1")
            .bind(user_id)
            .fetch_all(pool)
            .await?;
    for (at, id, source, sku) in held {
        events.push((at, "held".into(), format!("{source} {id}: SKU {sku} is not in the catalog — held, not granted")));
    }
    let results: Vec<(String, i64, i64, String, Option<String>)> = sqlx::query_as(
        "SELECT competition_id, place, score, status, reason FROM competition_results WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    for (competition, place, score, status, reason) in results {
        let reason = reason.unwrap_or_default();
        events.push((
            i64::MAX,
            "competition".into(),
            format!("{competition}: place {place} ({score}) {status} {reason}"),
        ));
    }
    Ok(())
}

async fn timeline_html(pool: &AnyPool, user_id: &str) -> Result<String, sqlx::Error> {
    let mut html = format!(
        "<h2>Timeline of {}</h2><table id=\"timeline\"><tr><th>when</th><th>what</th><th>details</th></tr>",
        escape(user_id)
    );
    for (at, what, details) in timeline(pool, user_id).await? {
        let when = if at == i64::MAX { "now".to_owned() } else { AmzDate { unix: at }.readable() };
        html.push_str(&format!("<tr><td>{when}</td><td>{}</td><td>{}</td></tr>", escape(&what), escape(&details)));
    }
    html.push_str("</table>");
    Ok(html)
}

/// Grants and revocations per day (day number since the epoch), the last 30 days.
pub async fn per_day(pool: &AnyPool) -> Result<Vec<(i64, i64, i64)>, sqlx::Error> {
    let since = crate::now_secs() - 30 * 86_400;
    let rows: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT created_at / 86400, kind, COUNT(*) FROM inventory_changes WHERE created_at >= $1 AND kind IN ('grant', 'revoke')
         GROUP BY created_at / 86400, kind ORDER BY 1",
    )
    .bind(since)
    .fetch_all(pool)
    .await?;
    let mut days: Vec<(i64, i64, i64)> = Vec::new();
    for (day, kind, count) in rows {
        if days.last().is_none_or(|(d, _, _)| *d != day) {
            days.push((day, 0, 0));
        }
        let last = days.last_mut().expect("pushed");
        if kind == "grant" { last.1 += count } else { last.2 += count }
    }
    Ok(days)
}

/// Bars per day: grants above the line, revocations below.
pub fn chart_svg(days: &[(i64, i64, i64)]) -> String {
    let (width, height, bar) = (640, 220, 18);
    let top = days.iter().map(|(_, g, r)| (*g).max(*r)).max().unwrap_or(0).max(1);
    let half = (height / 2 - 20) as f64;
    let mut svg = format!(
        "<svg id=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" role=\"img\" \
         aria-label=\"grants and revocations per day\"><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\
         <line x1=\"0\" y1=\"{mid}\" x2=\"{width}\" y2=\"{mid}\" stroke=\"#888\"/>",
        mid = height / 2
    );
    for (index, (day, grants, revokes)) in days.iter().enumerate() {
        let x = 20 + index as i64 * (bar + 4);
        let up = (*grants as f64 / top as f64 * half).round() as i64;
        let down = (*revokes as f64 / top as f64 * half).round() as i64;
        svg.push_str(&format!(
            "<rect class=\"grants\" x=\"{x}\" y=\"{}\" width=\"{bar}\" height=\"{up}\" fill=\"#2e7d32\"><title>day {day}: {grants} granted</title></rect>\
             <rect class=\"revocations\" x=\"{x}\" y=\"{}\" width=\"{bar}\" height=\"{down}\" fill=\"#c62828\"><title>day {day}: {revokes} revoked</title></rect>\
             <text x=\"{x}\" y=\"{}\" font-size=\"10\">{grants}/{revokes}</text>",
            height / 2 - up,
            height / 2,
            height - 4
        ));
    }
    svg.push_str(&format!(
        "<text x=\"{x}\" y=\"14\" font-size=\"12\" fill=\"#2e7d32\">grants ▲</text>\
         <text x=\"{x}\" y=\"{y}\" font-size=\"12\" fill=\"#c62828\">revocations ▼</text></svg>",
        x = width - 100,
        y = height - 8
    ));
    svg
}

async fn budgets_html(pool: &AnyPool) -> Result<String, sqlx::Error> {
    let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT campaign_id, COALESCE(SUM(CASE WHEN status = 'rewarded' THEN cost_cents ELSE 0 END), 0),
                COALESCE(SUM(CASE WHEN status = 'rewarded' THEN 1 ELSE 0 END), 0),
                COALESCE(SUM(CASE WHEN status = 'not_rewarded' THEN 1 ELSE 0 END), 0)
         FROM moment_rewards GROUP BY campaign_id ORDER BY campaign_id",
    )
    .fetch_all(pool)
    .await?;
    let mut html = String::from(
        "<h2>Campaign budgets</h2><table id=\"budgets\"><tr><th>campaign</th><th>spent</th><th>rewards</th><th>declined</th></tr>",
    );
    for (campaign, cents, rewarded, declined) in rows {
        html.push_str(&format!(
            "<tr><td>{}</td><td>${}.{:02}</td><td>{rewarded}</td><td>{declined}</td></tr>",
            escape(&campaign),
            cents / 100,
            cents % 100
        ));
    }
    html.push_str("</table>");
    Ok(html)
}

async fn held_html(pool: &AnyPool) -> Result<String, sqlx::Error> {
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT entitlement_id, user_id, source, sku FROM held_entitlements ORDER BY held_at DESC LIMIT 200",
    )
    .fetch_all(pool)
    .await?;
    let mut html = String::from(
        "<h2>Held entitlements (SKU not in the catalog)</h2><table id=\"held\"><tr><th>entitlement</th><th>player</th><th>source</th><th>SKU</th></tr>",
    );
    for (id, user, source, sku) in rows {
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&id),
            escape(&user),
            escape(&source),
            escape(&sku)
        ));
    }
    html.push_str("</table>");
    Ok(html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_draws_a_bar_pair_per_day_and_text_is_escaped() {
        let svg = chart_svg(&[(20_000, 4, 1), (20_001, 2, 0)]);
        assert_eq!(svg.matches("class=\"grants\"").count(), 2);
        assert_eq!(svg.matches("class=\"revocations\"").count(), 2);
        assert!(svg.contains("day 20000: 4 granted") && svg.contains("height=\"90\""), "{svg}");
        assert_eq!(escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_ne!(cookie_value("t"), "t");
        assert_eq!(AmzDate { unix: 1_796_196_132 }.readable(), "2026-12-02 07:22:12");
    }
}
