//! Amazon Payments' mailbox (sandbox-defined; a local mail catcher): the e-mails the DevPay seed promises
//! customers, so a studio can see what its players receive. A sign-up confirmation with the sign-up charge
//! and the monthly price, each monthly bill, the advance notice of a price change, the confirmation of a
//! cancellation, and a payment problem, each with recipient, subject, date, and a plain-text and an HTML body
//! in Amazon Payments' voice: the product's name, never the name of the service behind it. Every e-mail is
//! keyed by the event it tells of, so a repeated step (a form submitted twice, a retried call) sends nothing
//! twice. Customers read theirs on `/mailbox` (signed in like the billing page); tests use the admin API.

use amazon_rewards_protocol::sandbox_admin::Mail;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Json, Router};
use serde::Deserialize;
use sqlx::SqlitePool;

use crate::AppState;
use crate::error::{SandboxError, SandboxResult};
use crate::pages::{escape, page};

/// An e-mail about to be sent.
pub(crate) struct Letter {
    kind: &'static str,
    subject: String,
    lines: Vec<String>,
}

fn money(cents: i64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

/// `2026-12-01` as `December 2026`.
pub(crate) fn month_name(first_day: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let mut parts = first_day.split('-');
    let year = parts.next().unwrap_or_default();
    let month = parts.next().and_then(|m| m.parse::<usize>().ok()).filter(|m| (1..=12).contains(m));
    month.map_or_else(|| first_day.to_owned(), |m| format!("{} {year}", MONTHS[m - 1]))
}

impl Letter {
    /// The sign-up confirmation: what was charged now and what each month costs.
    pub(crate) fn signup(product: &str, signup_cents: i64, monthly_cents: i64, month: &str, key: &str) -> Self {
        let mut lines = vec![format!("Thank you for subscribing to {product}.")];
        if signup_cents > 0 {
            lines.push(format!("We charged your payment method a one-time sign-up charge of {}.", money(signup_cents)));
        }
        lines.push(format!("We also charged {} for {month}. From then on, {product} costs {} per month, charged at the start of each month.", money(monthly_cents), money(monthly_cents)));
        lines.push(format!("Your activation key: {key}"));
        lines
            .push("You can see your usage and bills, and cancel at any time, on your Application Billing page.".into());
        Self { kind: "signup", subject: format!("Your subscription to {product}"), lines }
    }

    /// A monthly bill.
    pub(crate) fn bill(product: &str, amount_cents: i64, month: &str) -> Self {
        Self {
            kind: "bill",
            subject: format!("Your {product} bill for {month}"),
            lines: vec![
                format!("We charged {} to your payment method for {product}, for {month}.", money(amount_cents)),
                "Your bills are on your Application Billing page.".into(),
            ],
        }
    }

    /// Advance notice of a price change.
    pub(crate) fn price_change(product: &str, old_cents: i64, new_cents: i64, from_month: &str) -> Self {
        Self {
            kind: "price_change",
            subject: format!("The price of {product} changes in {from_month}"),
            lines: vec![
                format!("The monthly price of {product} changes from {} to {}, starting with {from_month}.", money(old_cents), money(new_cents)),
                "Until then you pay the current price. If you do not want to continue, you can cancel on your Application Billing page before then.".into(),
            ],
        }
    }

    /// Confirmation of a cancellation, ending at the end of the paid month.
    pub(crate) fn cancellation(product: &str, last_month: &str, ends_on: &str) -> Self {
        Self {
            kind: "cancellation",
            subject: format!("Your subscription to {product} is cancelled"),
            lines: vec![
                format!("As you asked, your subscription to {product} is cancelled."),
                format!(
                    "You can keep using it through the end of {last_month}; it ends on {ends_on}, and you will not be charged again."
                ),
            ],
        }
    }

    /// A charge that failed.
    pub(crate) fn payment_problem(product: &str, amount_cents: i64, month: &str) -> Self {
        Self {
            kind: "payment_problem",
            subject: format!("We could not charge you for {product}"),
            lines: vec![
                format!("We could not charge {} to your payment method for {product}, for {month}.", money(amount_cents)),
                "Your subscription is suspended until the payment goes through. Update your payment method on your Application Billing page.".into(),
            ],
        }
    }

    fn text(&self) -> String {
        format!("{}\n\nAmazon Payments\n", self.lines.join("\n\n"))
    }

    fn html(&self) -> String {
        let paragraphs: String = self.lines.iter().map(|line| format!("<p>{}</p>", escape(line))).collect();
        format!("{paragraphs}<p>Amazon Payments</p>")
    }
}

/// Sends `letter` to `customer` for `event`, once: a second send for the same event does nothing.
pub(crate) async fn send<'e>(
    executor: impl sqlx::SqliteExecutor<'e>,
    customer: &str,
    event: &str,
    letter: Letter,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO mailbox (event_key, customer_id, recipient, kind, subject, text_body, html_body, sent_at)
         SELECT ?, user_id, email, ?, ?, ?, ?, ? FROM customers WHERE user_id = ?
         ON CONFLICT (event_key) DO NOTHING",
    )
    .bind(event)
    .bind(letter.kind)
    .bind(&letter.subject)
    .bind(letter.text())
    .bind(letter.html())
    .bind(crate::now_secs())
    .bind(customer)
    .execute(executor)
    .await?;
    Ok(())
}

type MailRow = (i64, String, String, String, i64, String, String);

async fn mails(pool: &SqlitePool, customer: &str) -> Result<Vec<Mail>, sqlx::Error> {
    let rows: Vec<MailRow> = sqlx::query_as(
        "SELECT seq, recipient, kind, subject, sent_at, text_body, html_body FROM mailbox
         WHERE customer_id = ? ORDER BY seq DESC",
    )
    .bind(customer)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(seq, recipient, kind, subject, sent_at, text_body, html_body)| Mail {
            seq,
            recipient,
            kind,
            subject,
            sent_at,
            text_body,
            html_body,
        })
        .collect())
}

/// The customer's page.
pub fn router() -> Router<AppState> {
    Router::new().route("/mailbox", get(sign_in).post(mailbox))
}

/// `GET /admin/mailbox?customer_id=…`: a customer's e-mails, newest first.
pub fn admin_router() -> Router<AppState> {
    Router::new().route("/mailbox", get(admin_list)).route("/mailbox/{seq}", get(admin_one))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    customer_id: String,
}

async fn admin_list(State(state): State<AppState>, Query(query): Query<ListQuery>) -> SandboxResult<Json<Vec<Mail>>> {
    Ok(Json(mails(&state.pool, &query.customer_id).await?))
}

async fn admin_one(State(state): State<AppState>, Path(seq): Path<i64>) -> SandboxResult<Json<Mail>> {
    let customer: Option<String> = sqlx::query_scalar("SELECT customer_id FROM mailbox WHERE seq = ?")
        .bind(seq)
        .fetch_optional(&state.pool)
        .await?;
    let customer = customer.ok_or_else(|| SandboxError::NotFound(format!("mail {seq}")))?;
    let mail = mails(&state.pool, &customer).await?.into_iter().find(|m| m.seq == seq);
    mail.map(Json).ok_or_else(|| SandboxError::NotFound(format!("mail {seq}")))
}

async fn sign_in() -> Html<String> {
    page("Your messages from Amazon Payments", &crate::devpay::sign_in_form("/mailbox", None, &[]))
}

#[derive(Debug, Deserialize)]
struct MailboxForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    open: Option<i64>,
}

async fn mailbox(
    State(state): State<AppState>,
    form: Result<Form<MailboxForm>, FormRejection>,
) -> SandboxResult<Response> {
    let Ok(Form(form)) = form else {
        return Err(SandboxError::BadRequest("malformed form".into()));
    };
    let title = "Your messages from Amazon Payments";
    let Some(customer) = crate::lwa::check_password(&state.pool, &form.email, &form.password).await? else {
        let body = crate::devpay::sign_in_form("/mailbox", Some("Your email or password is incorrect."), &[]);
        return Ok((StatusCode::UNAUTHORIZED, page(title, &body)).into_response());
    };
    let all = mails(&state.pool, &customer).await?;
    let credentials = [("email", form.email.as_str()), ("password", form.password.as_str())];
    if let Some(seq) = form.open {
        let Some(mail) = all.iter().find(|m| m.seq == seq) else {
            return Err(SandboxError::NotFound(format!("mail {seq}")));
        };
        let body = format!(
            r#"<p>From: Amazon Payments<br>To: {to}<br>Subject: <b id="subject">{subject}</b></p><div id="mail">{html}</div>
<form method="post" action="/mailbox">{hidden}<button id="back" type="submit">All messages</button></form>"#,
            to = escape(&mail.recipient),
            subject = escape(&mail.subject),
            // Built from escaped text when it was sent.
            html = mail.html_body,
            hidden = crate::pages::hidden_fields(&credentials),
        );
        return Ok(page(title, &body).into_response());
    }
    let rows: String = all
        .iter()
        .map(|mail| {
            format!(
                r#"<li><form method="post" action="/mailbox">{hidden}<button class="secondary" id="open-{seq}" name="open" value="{seq}" type="submit">{subject}</button></form></li>"#,
                hidden = crate::pages::hidden_fields(&credentials),
                seq = mail.seq,
                subject = escape(&mail.subject),
            )
        })
        .collect();
    let list =
        if all.is_empty() { "<p>No messages.</p>".to_owned() } else { format!(r#"<ul id="messages">{rows}</ul>"#) };
    Ok(page(title, &format!("<p>To: {}</p>{list}", escape(&form.email))).into_response())
}
