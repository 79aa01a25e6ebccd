//! Login latency: from the browser hitting the plugin's loopback redirect to the `LoginEvent::SignedIn`
//! message, against the in-process sandbox. This covers the listener, the code exchange (PKCE), the profile
//! call, saving the tokens, and the frame that applies the result.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevy_amazon_rewards::prelude::*;
use common::*;
use criterion::{Criterion, criterion_group, criterion_main};

fn redirect_to_signed_in(c: &mut Criterion) {
    let fixture = Fixture::start();
    fixture.register_client();
    fixture.customer("bench@example.com");
    let mut group = c.benchmark_group("login");
    group.sample_size(20);
    group.bench_function("loopback_redirect_to_signed_in", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let data = tempfile::tempdir().unwrap();
                let (sender, urls) = mpsc::channel::<String>();
                let sender = Mutex::new(sender);
                let mut config = login_config(&fixture.url(), data.path());
                config.login.restore_session = false;
                config.login.open_browser = Arc::new(move |url: &str| {
                    sender.lock().unwrap().send(url.to_owned()).map_err(|e| e.to_string().into())
                });
                let mut app = headless_app(config);
                collect::<LoginEvent>(&mut app);
                app.update();
                app.world_mut().write_message(LoginRequest::WithBrowser);
                let authorize_url = loop {
                    app.update();
                    if let Ok(url) = urls.try_recv() {
                        break url;
                    }
                };
                // The browser's part up to the redirect, done over HTTP outside the measurement.
                let redirect = fixture.consent_over_http(&authorize_url, "bench@example.com", "pw");
                let started = Instant::now();
                let browser = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                    runtime.block_on(async { reqwest::get(redirect).await.map(|r| r.status()) })
                });
                loop {
                    app.update();
                    if collected::<LoginEvent>(&app).iter().any(|e| matches!(e, LoginEvent::SignedIn(_))) {
                        break;
                    }
                    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", collected::<LoginEvent>(&app));
                }
                total += started.elapsed();
                assert!(browser.join().unwrap().unwrap().is_success());
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, redirect_to_signed_in);
criterion_main!(benches);
