//! A scripted player for the pages the real player sees in the system browser: Login with Amazon, the
//! studio's new-account page, Prime Gaming claims, the Instant Access store, the season-pass sign-up and the
//! Moments reward page. The headless run and the screenshot run use it in place of a browser; the seeding
//! uses it to give the test customer a studio account.

use std::sync::{Arc, Mutex};

use super::services::{EMAIL, GAME_ACCOUNT, PASSWORD, SEASON_PASS};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn client() -> Result<reqwest::Client, Error> {
    Ok(reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?)
}

fn location(response: &reqwest::Response) -> Result<String, Error> {
    let location = response.headers().get("location").ok_or_else(|| format!("no redirect from {}", response.url()))?;
    Ok(location.to_str()?.to_owned())
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    text.split(start).nth(1)?.split(end).next()
}

/// Signs in on the sandbox's Login with Amazon page and allows access; returns where Amazon redirects.
async fn sign_in_and_allow(http: &reqwest::Client, sandbox: &str, authorize_url: &str) -> Result<String, Error> {
    let query = authorize_url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let mut form: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    form.push(("email".into(), EMAIL.into()));
    form.push(("password".into(), PASSWORD.into()));
    let consent = http.post(format!("{sandbox}/ap/signin")).form(&form).send().await?.text().await?;
    let ticket = between(&consent, r#"name="ticket" value=""#, "\"").ok_or("no consent page")?.to_owned();
    form.retain(|(name, _)| name != "email" && name != "password");
    form.push(("ticket".into(), ticket));
    form.push(("decision".into(), "allow".into()));
    let allowed = http.post(format!("{sandbox}/ap/consent")).form(&form).send().await?;
    location(&allowed)
}

/// The studio's new-account page: a player name, then Login with Amazon for the studio's own client.
pub async fn create_studio_account(sandbox: &str, backend: &str, username: &str) -> Result<(), Error> {
    let http = client()?;
    let return_url = format!("{sandbox}/instant-access/store");
    let started = http
        .post(format!("{backend}/accounts/new"))
        .form(&[("username", username), ("return_url", &return_url)])
        .send()
        .await?;
    let authorize = location(&started)?;
    // The sign-up is bound to the browser that started it by a cookie; a browser sends it back by itself.
    let cookie = started.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let cookie = cookie.split(';').next().unwrap_or_default().to_owned();
    let callback = sign_in_and_allow(&http, sandbox, &authorize).await?;
    let done = http.get(callback).header("cookie", cookie).send().await?;
    if !done.status().is_redirection() {
        return Err(format!("the new-account page answered {}", done.status()).into());
    }
    Ok(())
}

/// What the scripted player did last, for the script to check.
#[derive(Debug, Clone, Default)]
pub struct Outcomes {
    /// Pages the game opened, in order.
    pub opened: Vec<String>,
    /// The last Instant Access order page.
    pub order_page: Option<String>,
    /// Pages acted on successfully.
    pub done: Vec<String>,
    /// Problems, in words.
    pub errors: Vec<String>,
}

/// Shared with the script.
pub type SharedOutcomes = Arc<Mutex<Outcomes>>;

/// A [`BrowserOpener`](bevy_amazon_rewards::auth::BrowserOpener) that acts on each page like a player would.
pub fn scripted_browser(sandbox: String, outcomes: SharedOutcomes) -> bevy_amazon_rewards::auth::BrowserOpener {
    Arc::new(move |url: &str| {
        let (sandbox, url, outcomes) = (sandbox.clone(), url.to_owned(), outcomes.clone());
        outcomes.lock().unwrap().opened.push(url.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            match runtime.block_on(act(&sandbox, &url, &outcomes)) {
                Ok(()) => outcomes.lock().unwrap().done.push(url),
                Err(error) => outcomes.lock().unwrap().errors.push(format!("{url}: {error}")),
            }
        });
        Ok(())
    })
}

async fn act(sandbox: &str, url: &str, outcomes: &SharedOutcomes) -> Result<(), Error> {
    let http = client()?;
    let path = url.strip_prefix(sandbox).unwrap_or(url);
    let credentials = [("email", EMAIL), ("password", PASSWORD)];
    if path.starts_with("/ap/oa") {
        let back_to_game = sign_in_and_allow(&http, sandbox, url).await?;
        http.get(back_to_game).send().await?.error_for_status()?;
    } else if url.contains(amazon_rewards_protocol::studio::LINK_AUTHORIZE_PATH) {
        // Linking through the studio backend: it sends the browser to Login with Amazon and, once allowed, on
        // to the game's loopback listener.
        let at_amazon = location(&http.get(url).send().await?)?;
        let to_backend = sign_in_and_allow(&http, sandbox, &at_amazon).await?;
        let back_to_game = location(&http.get(to_backend).send().await?)?;
        http.get(back_to_game).send().await?.error_for_status()?;
    } else if path.starts_with("/prime-gaming/claim/") {
        let page = http.post(url).form(&credentials).send().await?.error_for_status()?.text().await?;
        if !page.contains(r#"id="claimed""#) {
            return Err("the claim did not go through".into());
        }
    } else if path.starts_with("/instant-access/store") {
        let (product, _, _) = super::services::INSTANT_ACCESS_PRODUCTS[0];
        let form = [("product_id", product), ("username", GAME_ACCOUNT), ("email", EMAIL), ("password", PASSWORD)];
        let bought = http.post(format!("{sandbox}/instant-access/buy")).form(&form).send().await?;
        let order = format!("{sandbox}{}", location(&bought)?);
        outcomes.lock().unwrap().order_page = Some(order);
    } else if path.starts_with(&format!("/devpay/signup/{SEASON_PASS}")) {
        // The sign-up link carries the game's return address and state; the forms carry them on.
        let (page, query) = url.split_once('?').unwrap_or((url, ""));
        let mut form: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        form.extend(credentials.map(|(k, v)| (k.to_owned(), v.to_owned())));
        http.post(page).form(&form).send().await?.error_for_status()?;
        let confirmed =
            http.post(format!("{page}/confirm")).form(&form).send().await?.error_for_status()?.text().await?;
        let key = between(&confirmed, r#"<b id="activation-key">"#, "<").ok_or("no activation key shown")?;
        if key.is_empty() {
            return Err("an empty activation key".into());
        }
        // What the confirmation page's refresh does in a browser: back to the game's loopback listener.
        let back_to_game = between(&confirmed, r#"id="continue-to-vendor" href=""#, "\"")
            .ok_or("no way back to the game")?
            .replace("&amp;", "&");
        http.get(back_to_game).send().await?.error_for_status()?;
    } else if path.starts_with("/moments/r/") {
        let form = [
            ("name", "Player One"),
            ("address", "1 Coin St"),
            ("city", "Seattle"),
            ("postal_code", "98101"),
            ("country", "US"),
        ];
        let page = http.post(url).form(&form).send().await?.error_for_status()?.text().await?;
        if !page.contains(r#"id="redeemed""#) {
            return Err("the reward was not claimed".into());
        }
    } else {
        // The billing page and anything else: the player just looks.
        http.get(url).send().await?.error_for_status()?;
    }
    Ok(())
}

/// Asks for a refund on an Instant Access order page, as a player (or customer service) would.
pub async fn refund(order_page: &str) -> Result<(), Error> {
    let http = client()?;
    http.post(order_page).form(&[("action", "refund")]).send().await?;
    Ok(())
}
