//! Reading request bodies (with a size limit) and writing response bodies.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Response, StatusCode};
use serde_json::Value;
use tokio::sync::mpsc;

use super::Body;
use crate::error::{ApiError, ApiResult};
use crate::protobuf;
use crate::request::BodyType;

/// How much of an oversized body is read (and dropped) before the 413 is
/// sent, as a multiple of the limit.
const DRAIN_FACTOR: usize = 8;

/// Reads a whole body, refusing more than `limit` bytes. The rest of an
/// oversized body is read and dropped (up to a bound) before answering, so a
/// client still sending gets the 413 rather than a reset connection.
pub async fn read(mut body: Incoming, limit: usize) -> ApiResult<Bytes> {
    let mut buffer = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ApiError::bad_request("could not read the request body"))?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        if buffer.len() + data.len() > limit {
            drain(&mut body, limit.saturating_mul(DRAIN_FACTOR)).await;
            return Err(ApiError::too_large(limit));
        }
        buffer.extend_from_slice(data);
    }
    Ok(buffer.freeze())
}

/// Reads and drops up to `max` more bytes of a body.
async fn drain(body: &mut Incoming, max: usize) {
    let mut seen = 0usize;
    while seen < max {
        match body.frame().await {
            Some(Ok(frame)) => seen += frame.data_ref().map_or(0, |d| d.len()),
            _ => return,
        }
    }
}

/// Decodes a body into JSON by its media type.
pub fn decode(bytes: &[u8], body_type: BodyType) -> ApiResult<Value> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    match body_type {
        BodyType::Protobuf => protobuf::decode(bytes),
        BodyType::Yaml | BodyType::ApplyPatch => decode_yaml(bytes),
        _ => serde_json::from_slice(bytes)
            .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}"))),
    }
}

fn decode_yaml(bytes: &[u8]) -> ApiResult<Value> {
    if let Ok(v) = serde_json::from_slice(bytes) {
        return Ok(v);
    }
    let docs = gitplane_object::parse_values(
        bytes,
        "request body",
        gitplane_object::Syntax::Yaml,
        &Default::default(),
    )
    .map_err(|e| ApiError::bad_request(format!("the request body is not valid YAML: {e}")))?;
    match docs.into_iter().next() {
        Some((v, _)) => Ok(v),
        None => Ok(Value::Object(Default::default())),
    }
}

/// A JSON response.
pub fn json(
    status: u16,
    value: &impl serde::Serialize,
    content_type: &str,
    warnings: &[String],
) -> Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
        .header("Content-Type", content_type);
    for w in warnings {
        builder = builder.header("Warning", format!("299 - {:?}", w));
    }
    builder
        .body(
            Full::new(Bytes::from(bytes))
                .map_err(|never| match never {})
                .boxed(),
        )
        .unwrap_or_else(|_| Response::new(empty()))
}

/// A plain-text response.
pub fn text(status: u16, text: &'static str) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
        .header("Content-Type", "text/plain; charset=utf-8")
        .body(
            Full::new(Bytes::from_static(text.as_bytes()))
                .map_err(|never| match never {})
                .boxed(),
        )
        .unwrap_or_else(|_| Response::new(empty()))
}

/// A streamed response of the lines a channel yields (a watch).
pub fn stream(rx: mpsc::Receiver<Bytes>) -> Response<Body> {
    let frames = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/json")
        .body(StreamBody::new(frames).boxed())
        .unwrap_or_else(|_| Response::new(empty()))
}

fn empty() -> Body {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed()
}

/// An error as a Status response.
pub fn error(e: &ApiError) -> Response<Body> {
    json(e.code, &e.to_status(), "application/json", &[])
}
