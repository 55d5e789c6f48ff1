//! The small HTTP server `gitplane up` runs on `--ui`: the push webhook,
//! `/healthz`, `/metrics` and a JSON list of applications. (The web portal
//! will grow here.)

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use gitplane_controller::Controller;
use gitplane_controller::webhook::{MAX_BODY_BYTES, WebhookError, parse_push};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

/// Serves until the task is aborted; returns the bound address at once.
pub async fn start(
    listen: SocketAddr,
    controller: Arc<Controller>,
    webhook_secret: Option<String>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let address = listener.local_addr()?;
    let secret = Arc::new(webhook_secret);
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (controller, secret) = (controller.clone(), secret.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    handle(request, controller.clone(), secret.clone())
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    Ok((address, task))
}

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, value);
    }
    response
}

fn json_reply(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    reply(status, "application/json", value.to_string())
}

async fn handle(
    request: Request<Incoming>,
    controller: Arc<Controller>,
    secret: Arc<Option<String>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_string();
    Ok(match (request.method(), path.as_str()) {
        (&Method::GET, "/healthz") => reply(StatusCode::OK, "text/plain", "ok\n"),
        (&Method::GET, "/metrics") => reply(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            controller.metrics_text(),
        ),
        (&Method::GET, "/api/v1/applications") => json_reply(
            StatusCode::OK,
            &serde_json::json!({"items": controller.summaries()}),
        ),
        (&Method::POST, "/api/webhook") => webhook(request, controller, &secret).await,
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    })
}

async fn webhook(
    request: Request<Incoming>,
    controller: Arc<Controller>,
    secret: &Option<String>,
) -> Response<Full<Bytes>> {
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let body = match Limited::new(request.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(_) => return webhook_error(&WebhookError::TooLarge),
    };
    match parse_push(&headers, &body, secret.as_deref()) {
        Ok(Some(push)) => {
            let queued = tokio::task::spawn_blocking(move || {
                push.urls
                    .iter()
                    .map(|u| controller.refresh_repo(u))
                    .sum::<usize>()
            })
            .await
            .unwrap_or(0);
            json_reply(StatusCode::OK, &serde_json::json!({"queued": queued}))
        }
        Ok(None) => json_reply(StatusCode::OK, &serde_json::json!({"queued": 0})),
        Err(e) => webhook_error(&e),
    }
}

fn webhook_error(error: &WebhookError) -> Response<Full<Bytes>> {
    let status = match error {
        WebhookError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        WebhookError::Unauthorized => StatusCode::UNAUTHORIZED,
        WebhookError::BadPayload(_) => StatusCode::BAD_REQUEST,
    };
    json_reply(status, &serde_json::json!({"error": error.to_string()}))
}
