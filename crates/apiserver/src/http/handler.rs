//! From an HTTP request to an API verb and back.

use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde_json::{Value, json};

use super::{Body, Shared, body, token_matches};
use crate::api::{
    Api, DeleteOptions, FieldValidation, ListOptions, PatchKind, ScaleChange, Target, WriteOptions,
};
use crate::discovery::{self, AGGREGATED_CONTENT_TYPE};
use crate::error::{ApiError, ApiResult};
use crate::openapi;
use crate::request::{self, BodyType, Query, ResourcePath, Route, Wants};
use crate::ssa::Served;
use crate::table;
use crate::watch::{self, WatchOptions};

/// Handles one request; every failure becomes a Status response.
pub async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let authorized = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| token_matches(token.trim(), &shared.token));
    if !authorized {
        return body::error(&ApiError::unauthorized());
    }
    match route(&shared, req).await {
        Ok(response) => response,
        Err(e) => body::error(&e),
    }
}

async fn route(shared: &Shared, req: Request<Incoming>) -> ApiResult<Response<Body>> {
    let api = &shared.api;
    let route = request::parse_route(req.uri().path())?;
    let wants = request::wants(req.headers().get("accept").and_then(|v| v.to_str().ok()));
    let ok = |value: Value| Ok(body::json(200, &value, "application/json", &[]));
    let found = |value: Option<Value>, what: &str| value.ok_or_else(|| ApiError::no_route(what));
    if req.method() != Method::GET && !matches!(route, Route::Resource(_)) {
        return Err(ApiError::method_not_allowed(format!(
            "{} is not allowed here",
            req.method()
        )));
    }
    match route {
        Route::Health => Ok(body::text(200, "ok")),
        Route::Version => ok(discovery::version()),
        Route::CoreVersions if wants == Wants::AggregatedDiscovery => Ok(body::json(
            200,
            &discovery::aggregated(&api.registry, true),
            AGGREGATED_CONTENT_TYPE,
            &[],
        )),
        Route::CoreVersions => ok(discovery::core_versions()),
        Route::Groups if wants == Wants::AggregatedDiscovery => Ok(body::json(
            200,
            &discovery::aggregated(&api.registry, false),
            AGGREGATED_CONTENT_TYPE,
            &[],
        )),
        Route::Groups => ok(discovery::group_list(&api.registry)),
        Route::Group(g) => ok(found(discovery::group(&api.registry, &g), &g)?),
        Route::GroupVersion(g, v) => ok(found(
            discovery::resource_list(&api.registry, &g, &v),
            &format!("{g}/{v}"),
        )?),
        Route::OpenApiV2 => Err(ApiError::no_route("/openapi/v2")),
        Route::OpenApiV3Root => ok(openapi::root(&api.registry)),
        Route::OpenApiV3(g, v) => ok(found(
            openapi::group_version(&api.registry, &g, &v),
            &format!("{g}/{v}"),
        )?),
        Route::Resource(path) => resource(shared, req, path, wants).await,
    }
}

fn write_options(query: &Query) -> ApiResult<WriteOptions> {
    Ok(WriteOptions {
        dry_run: query.dry_run,
        manager: query.field_manager.clone(),
        validation: FieldValidation::parse(query.field_validation.as_deref())?,
        force: query.force,
        queued: false,
    })
}

fn patch_kind(body_type: BodyType) -> ApiResult<PatchKind> {
    Ok(match body_type {
        BodyType::MergePatch => PatchKind::Merge,
        BodyType::JsonPatch => PatchKind::Json,
        BodyType::StrategicMergePatch => PatchKind::Strategic,
        BodyType::ApplyPatch => PatchKind::Apply,
        _ => {
            return Err(ApiError::unsupported_media_type(
                "PATCH needs a patch media type (merge, json, strategic-merge or apply)",
            ));
        }
    })
}

async fn resource(
    shared: &Shared,
    req: Request<Incoming>,
    path: ResourcePath,
    wants: Wants,
) -> ApiResult<Response<Body>> {
    let api = &shared.api;
    let target = api.target(
        &path.group,
        &path.version,
        &path.plural,
        path.namespace.as_deref(),
    )?;
    let query = request::parse_query(req.uri().query())?;
    let method = req.method().clone();
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let name = path.name.clone();
    let sub = path.subresource.as_deref();
    tracing::debug!(
        target: "gitplane_apiserver::requests",
        "{method} {}/{}/{}{}{} {}",
        target.resource.group,
        target.resource.plural,
        name.as_deref().unwrap_or(""),
        sub.map(|s| format!("/{s}")).unwrap_or_default(),
        if req.uri().query().is_some_and(|q| q.contains("dryRun")) { " (dry run)" } else { "" },
        content_type.as_deref().unwrap_or(""),
    );
    if let Some(sub) = sub
        && !matches!(sub, "status" | "scale" | "finalize")
    {
        return Err(ApiError::no_route(&format!("subresource {sub}")));
    }
    if sub == Some("scale") && target.resource.scale.is_none()
        || sub == Some("status")
            && !target.resource.status_subresource
            && target.resource.plural != "namespaces"
    {
        return Err(ApiError::no_route(&format!(
            "{}/{}",
            target.resource.plural,
            sub.unwrap_or("")
        )));
    }
    let read_body = || async {
        let bytes = body::read(req.into_body(), shared.max_body_bytes).await?;
        let body_type = request::body_type(content_type.as_deref())?;
        Ok::<_, ApiError>((body::decode(&bytes, body_type)?, body_type))
    };
    match (method, name) {
        (Method::GET, None) if query.watch => start_watch(api, &target, &query, wants),
        (Method::GET, None) => list(api, &target, &query, wants),
        (Method::GET, Some(name)) => {
            let object = api.get(&target, &name)?;
            if sub == Some("scale") {
                return Ok(body::json(
                    200,
                    &api.scale_of(&target, &object)?,
                    "application/json",
                    &[],
                ));
            }
            let object = target.present(&object);
            if wants == Wants::Table {
                return Ok(body::json(
                    200,
                    &table::table(
                        &target.resource,
                        &[Arc::new(object.into_owned())],
                        None,
                        None,
                    ),
                    "application/json",
                    &[],
                ));
            }
            Ok(body::json(200, &Served(&object), "application/json", &[]))
        }
        (Method::POST, None) => {
            let (value, _) = read_body().await?;
            let written = api.create(&target, value, &write_options(&query)?).await?;
            Ok(body::json(
                201,
                &Served(&target.present(&written.object)),
                "application/json",
                &written.warnings,
            ))
        }
        (Method::PUT, Some(name)) => {
            let (value, _) = read_body().await?;
            let options = write_options(&query)?;
            match sub {
                Some("scale") => Ok(body::json(
                    200,
                    &api.update_scale(&target, &name, ScaleChange::Replace(value), &options)
                        .await?,
                    "application/json",
                    &[],
                )),
                Some("finalize") => {
                    let finalizers = value
                        .pointer("/spec/finalizers")
                        .cloned()
                        .unwrap_or(json!([]));
                    let written = api
                        .patch(
                            &target,
                            &name,
                            PatchKind::Merge,
                            json!({"spec": {"finalizers": finalizers}}),
                            None,
                            &options,
                        )
                        .await?;
                    Ok(body::json(
                        200,
                        &Served(&target.present(&written.object)),
                        "application/json",
                        &[],
                    ))
                }
                _ => {
                    let written = api.update(&target, &name, value, sub, &options).await?;
                    Ok(body::json(
                        200,
                        &Served(&target.present(&written.object)),
                        "application/json",
                        &written.warnings,
                    ))
                }
            }
        }
        (Method::PATCH, Some(name)) => {
            let (value, body_type) = read_body().await?;
            let kind = patch_kind(body_type)?;
            let options = write_options(&query)?;
            if sub == Some("scale") {
                return Ok(body::json(
                    200,
                    &api.update_scale(&target, &name, ScaleChange::Patch(kind, value), &options)
                        .await?,
                    "application/json",
                    &[],
                ));
            }
            let written = api
                .patch(&target, &name, kind, value, sub, &options)
                .await?;
            let status = if written.created { 201 } else { 200 };
            Ok(body::json(
                status,
                &Served(&target.present(&written.object)),
                "application/json",
                &written.warnings,
            ))
        }
        (Method::DELETE, Some(name)) => {
            let dry_run = query.dry_run;
            let policy = query.propagation_policy.clone();
            let (value, _) = read_body().await?;
            let options = DeleteOptions::from_body(&value, policy.as_deref(), dry_run)?;
            let object = api.delete(&target, &name, &options).await?;
            Ok(body::json(
                200,
                &Served(&target.present(&object)),
                "application/json",
                &[],
            ))
        }
        (Method::DELETE, None) => {
            let dry_run = query.dry_run;
            let policy = query.propagation_policy.clone();
            let list_options = list_options(&query);
            let (value, _) = read_body().await?;
            let options = DeleteOptions::from_body(&value, policy.as_deref(), dry_run)?;
            let deleted = api
                .delete_collection(&target, &list_options, &options)
                .await?;
            Ok(body::json(
                200,
                &list_body(&target, &deleted, api.store.revision(), None, None),
                "application/json",
                &[],
            ))
        }
        (method, _) => Err(ApiError::method_not_allowed(format!(
            "{method} is not supported on {}",
            target.resource.plural
        ))),
    }
}

fn list_options(query: &Query) -> ListOptions {
    ListOptions {
        label_selector: query.label_selector.clone(),
        field_selector: query.field_selector.clone(),
        limit: query.limit,
        continue_token: query.continue_token.clone(),
    }
}

/// A list response, serialized straight from the stored objects (no copies).
struct ListBody<'a> {
    target: &'a Target,
    items: &'a [Arc<Value>],
    metadata: Value,
}

impl serde::Serialize for ListBody<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(4))?;
        map.serialize_entry("kind", &self.target.resource.list_kind)?;
        map.serialize_entry(
            "apiVersion",
            &self.target.resource.api_version(&self.target.version),
        )?;
        map.serialize_entry("metadata", &self.metadata)?;
        map.serialize_entry("items", &Items(self.target, self.items))?;
        map.end()
    }
}

struct Items<'a>(&'a Target, &'a [Arc<Value>]);

impl serde::Serialize for Items<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let Items(target, items) = self;
        let mut seq = s.serialize_seq(Some(items.len()))?;
        for item in *items {
            seq.serialize_element(&Served(&target.present(item)))?;
        }
        seq.end()
    }
}

fn list_body<'a>(
    target: &'a Target,
    items: &'a [Arc<Value>],
    revision: u64,
    continue_token: Option<&str>,
    remaining: Option<usize>,
) -> ListBody<'a> {
    let mut metadata = json!({"resourceVersion": revision.to_string()});
    if let Some(token) = continue_token {
        metadata["continue"] = json!(token);
    }
    if let Some(remaining) = remaining {
        metadata["remainingItemCount"] = json!(remaining);
    }
    ListBody {
        target,
        items,
        metadata,
    }
}

fn list(api: &Api, target: &Target, query: &Query, wants: Wants) -> ApiResult<Response<Body>> {
    let page = api.list(target, &list_options(query))?;
    if wants == Wants::Table {
        let table = table::table(
            &target.resource,
            &page.items,
            Some(page.revision),
            page.continue_token.as_deref(),
        );
        return Ok(body::json(200, &table, "application/json", &[]));
    }
    Ok(body::json(
        200,
        &list_body(
            target,
            &page.items,
            page.revision,
            page.continue_token.as_deref(),
            page.remaining,
        ),
        "application/json",
        &[],
    ))
}

fn start_watch(
    api: &Api,
    target: &Target,
    query: &Query,
    wants: Wants,
) -> ApiResult<Response<Body>> {
    let options = WatchOptions {
        resource_version: query.resource_version.clone(),
        label_selector: query.label_selector.clone(),
        field_selector: query.field_selector.clone(),
        bookmarks: query.allow_bookmarks,
        initial_events: query.send_initial_events,
        timeout: query.timeout_seconds.map(Duration::from_secs),
        table: wants == Wants::Table,
    };
    let rx = watch::start(api, target, options)?;
    Ok(body::stream(rx))
}
