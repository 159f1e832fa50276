//! A real proxy on loopback TCP in front of a real loopback API, on every OS (under Wine
//! on the Linux CI machine too): the request goes upstream with the source's token, a
//! revoked token is replaced and the request replayed, a wrong local key is refused
//! with 401 before anything reaches upstream, and stopping removes the key file. The
//! end-to-end tests (`tests/proxy`) drive the `tokenhost proxy` binary on Linux.

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::{BoundProxy, Listen, ProxyOptions};
use crate::AuthManager;
use crate::config::ApiSpec;
use crate::source::counting::Counting;

/// What the loopback API saw, and the tokens it refuses.
#[derive(Default)]
struct Api {
    /// `Authorization` and path of every request, in order.
    seen: Mutex<Vec<(String, String)>>,
    revoked: Mutex<HashSet<String>>,
}

impl Api {
    fn seen(&self) -> Vec<(String, String)> {
        self.seen.lock().unwrap().clone()
    }

    /// 200 with `ok <path>` for a bearer token it has not revoked, else 401.
    fn answer(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        let auth = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let path = request.uri().path().to_string();
        self.seen.lock().unwrap().push((auth.clone(), path.clone()));
        let token = auth.strip_prefix("Bearer ").unwrap_or_default();
        let (status, body) = match self.revoked.lock().unwrap().contains(token) {
            true => (StatusCode::UNAUTHORIZED, "revoked".to_string()),
            false => (StatusCode::OK, format!("ok {path}")),
        };
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response
    }
}

/// Serves `api` on a free loopback port (HTTP/1.1) for as long as the runtime runs.
async fn serve_api(api: Arc<Api>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let api = api.clone();
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let response = api.answer(&request);
                async move { Ok::<_, Infallible>(response) }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    addr
}

/// A client that never goes through an HTTP proxy from the environment.
fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn get(url: &str, key: &str) -> (StatusCode, String) {
    let response = client()
        .get(url)
        .bearer_auth(key)
        .send()
        .await
        .expect("the proxy answers");
    let status = response.status();
    (status, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_proxy_adds_the_token_recovers_from_401_and_refuses_a_wrong_key() {
    let api = Arc::new(Api::default());
    let upstream = serve_api(api.clone()).await;
    let source = Arc::new(Counting::new("tok-"));
    let manager = AuthManager::builder()
        .provider("corp", None, source.clone())
        .build();
    let spec = ApiSpec {
        base_url: Some(format!("http://{upstream}/v1")),
        ..ApiSpec::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("corp.key");
    let options = ProxyOptions {
        key_file: Some(key_file.clone()),
        ..ProxyOptions::default()
    };
    let proxy = BoundProxy::bind(
        Arc::new(manager),
        "corp",
        &spec,
        &Listen::default(),
        options,
    )
    .await
    .unwrap();
    let base = proxy.url().to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    assert!(!base.ends_with(":0"), "{base}");
    let key = proxy.key().unwrap().expose().to_string();
    assert_eq!(proxy.key_file(), Some(key_file.as_path()));
    assert_eq!(std::fs::read_to_string(&key_file).unwrap().trim(), key);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(proxy.serve_until(async move {
        let _ = stopped.await;
    }));

    // One request: upstream gets the source's token, and the path under base_url.
    let (status, body) = get(&format!("{base}/models"), &key).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok /v1/models"));
    let bearer = |n: u32| format!("Bearer tok-{n}");
    assert_eq!(api.seen(), [(bearer(1), "/v1/models".into())]);

    // Upstream revokes it: the proxy reports it, gets the next one and replays once.
    api.revoked.lock().unwrap().insert("tok-1".into());
    let (status, body) = get(&format!("{base}/chat"), &key).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok /v1/chat"));
    assert_eq!(
        api.seen()[1..],
        [
            (bearer(1), "/v1/chat".into()),
            (bearer(2), "/v1/chat".into())
        ]
    );
    assert_eq!(source.calls(), 2);

    // A wrong key and no key: 401 from the proxy itself; upstream sees nothing.
    for wrong in ["thpk_wrong", ""] {
        let (status, body) = get(&format!("{base}/models"), wrong).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert!(body.contains("invalid_local_key"), "{body}");
        assert!(!body.contains(&key), "{body}");
    }
    assert_eq!(api.seen().len(), 3, "nothing more reached upstream");
    assert_eq!(source.calls(), 2, "and no token was asked for");

    // Stopping ends the server and removes the key file.
    stop.send(()).unwrap();
    served.await.unwrap();
    assert!(!key_file.exists(), "the key file is removed");
}
