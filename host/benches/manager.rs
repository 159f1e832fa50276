//! Cached `auth()` against what Codex does (a tokio `Mutex<Option<..>>` locked and the
//! token cloned per call), on one thread and with two threads hammering.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use criterion::{Criterion, criterion_group, criterion_main};
use tokenhost::{AuthManager, RefreshReason, SourceError, Token, TokenSource};

struct Fixed;

#[async_trait]
impl TokenSource for Fixed {
    async fn resolve(&self) -> Result<Token, SourceError> {
        Ok(Token::new("x".repeat(1200), None).unwrap())
    }
    async fn refresh(&self, _: RefreshReason) -> Result<Token, SourceError> {
        self.resolve().await
    }
}

/// The baseline: Codex's `BearerTokenRefresher` shape.
struct Baseline {
    cached: tokio::sync::Mutex<Option<String>>,
}

impl Baseline {
    async fn auth(&self) -> String {
        self.cached.lock().await.clone().expect("warm")
    }
}

fn warm_manager() -> Arc<AuthManager> {
    let manager = AuthManager::builder()
        .provider("p", None, Arc::new(Fixed))
        .build();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(manager.auth("p")).unwrap();
    Arc::new(manager)
}

fn baseline() -> Arc<Baseline> {
    Arc::new(Baseline {
        cached: tokio::sync::Mutex::new(Some("x".repeat(1200))),
    })
}

/// Runs `f` `iters` times on each of two threads at once; returns the mean wall time
/// per call (the figure a caller waits).
fn two_threads(iters: u64, f: impl Fn() + Send + Sync + Copy + 'static) -> Duration {
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let start = Instant::now();
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                for _ in 0..iters {
                    f();
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    start.elapsed()
}

fn cached_auth(c: &mut Criterion) {
    let mut group = c.benchmark_group("cached_auth");
    let manager = warm_manager();
    let base = baseline();
    group.bench_function("manager/1_thread", |b| {
        b.iter(|| support::poll_ready(manager.auth("p")).unwrap())
    });
    group.bench_function("codex_mutex_baseline/1_thread", |b| {
        b.iter(|| support::poll_ready(base.auth()))
    });

    static MANAGER: std::sync::OnceLock<Arc<AuthManager>> = std::sync::OnceLock::new();
    static BASE: std::sync::OnceLock<Arc<Baseline>> = std::sync::OnceLock::new();
    MANAGER.get_or_init(|| manager.clone());
    BASE.get_or_init(|| base.clone());
    group.bench_function("manager/2_threads", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, || {
                let token = support::poll_ready(MANAGER.get().unwrap().auth("p")).unwrap();
                std::hint::black_box(token);
            })
        })
    });
    group.bench_function("codex_mutex_baseline/2_threads", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, || {
                std::hint::black_box(support::poll_ready(BASE.get().unwrap().auth()));
            })
        })
    });
    group.finish();
}

criterion_group!(benches, cached_auth);
criterion_main!(benches);
