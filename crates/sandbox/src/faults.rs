//! Fault injection on the public API (sandbox-defined): lets tests and developers see how a client copes
//! with a misbehaving Amazon: error statuses, `Retry-After`, malformed, truncated, mistyped or oversized
//! bodies, and slow or hung responses. Faults are queued per path and each is used up by one request.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amazon_rewards_protocol::sandbox_admin::{FaultKind, InjectFault};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Queued faults, per request path.
#[derive(Clone, Default)]
pub struct Faults {
    queued: Arc<Mutex<HashMap<String, VecDeque<FaultKind>>>>,
}

/// Most copies of a fault queued at once (per path and in one call).
pub const MAX_TIMES: u32 = 1000;
/// Largest oversized body a fault may ask for.
pub const MAX_OVERSIZED_BYTES: usize = 64 * 1024 * 1024;
/// Longest delay a fault may ask for.
pub const MAX_DELAY_MILLIS: u64 = 120_000;

impl Faults {
    /// Queues `fault.times` copies of the fault for its path, or says why not: every parameter is bounded,
    /// so an admin call cannot make the sandbox allocate or wait without limit.
    pub fn inject(&self, fault: InjectFault) -> Result<(), String> {
        match fault.fault {
            FaultKind::Oversized { bytes } if bytes > MAX_OVERSIZED_BYTES => {
                return Err(format!("Oversized.bytes is at most {MAX_OVERSIZED_BYTES}"));
            }
            FaultKind::Delay { millis } if millis > MAX_DELAY_MILLIS => {
                return Err(format!("Delay.millis is at most {MAX_DELAY_MILLIS}"));
            }
            _ => {}
        }
        let mut queued = self.queued.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let queue = queued.entry(fault.path).or_default();
        if fault.times > MAX_TIMES || queue.len() + fault.times as usize > MAX_TIMES as usize {
            return Err(format!("at most {MAX_TIMES} faults wait per path"));
        }
        for _ in 0..fault.times {
            queue.push_back(fault.fault.clone());
        }
        Ok(())
    }

    /// Drops every queued fault.
    pub fn clear(&self) {
        self.queued.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clear();
    }

    fn take(&self, path: &str) -> Option<FaultKind> {
        let mut queued = self.queued.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let queue = queued.get_mut(path)?;
        let fault = queue.pop_front();
        if queue.is_empty() {
            queued.remove(path);
        }
        fault
    }
}

fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Middleware applying the next queued fault for the request's path, if any.
pub async fn apply_faults(State(faults): State<Faults>, request: Request, next: Next) -> Response {
    let Some(fault) = faults.take(request.uri().path()) else {
        return next.run(request).await;
    };
    match fault {
        FaultKind::Status { status, retry_after } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response =
                json_response(status, format!(r#"{{"error":"injected","error_description":"injected {status}"}}"#));
            if let Some(seconds) = retry_after {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            response
        }
        FaultKind::MalformedJson => json_response(StatusCode::OK, r#"{"Entitlements": [ {"EntitlementId": oops"#),
        FaultKind::TruncatedJson => {
            json_response(StatusCode::OK, r#"{"Entitlements":[{"EntitlementId":"e1","VendorProductId":"go"#)
        }
        FaultKind::WrongContentType => {
            let mut response = next.run(request).await;
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
            response
        }
        FaultKind::Oversized { bytes } => {
            let mut body = String::with_capacity(bytes + 32);
            body.push_str(r#"{"Entitlements":[],"Padding":""#);
            body.extend(std::iter::repeat_n('x', bytes.saturating_sub(body.len() + 2)));
            body.push_str("\"}");
            json_response(StatusCode::OK, body)
        }
        FaultKind::Json { status, body } => {
            json_response(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), body.to_string())
        }
        FaultKind::Delay { millis } => {
            tokio::time::sleep(Duration::from_millis(millis)).await;
            next.run(request).await
        }
    }
    .into_response()
}
