//! The local stand-in for API Gateway's HTTP APIs: each API of `infra/template.yaml` listens on its own
//! port and sends `METHOD /path` to the function the template routes it to, under `cargo lambda watch`
//! (`<watch>/lambda-url/<function>/path`). Routes come from the functions file `infra/template_env.py`
//! writes, so a route the template lacks answers 404 here as it would in AWS. No IAM authorisation
//! locally: the admin API is open on loopback.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub method: String,
    /// Path segments; `{name}` matches any one segment.
    pub segments: Vec<String>,
    pub function: String,
}

impl Route {
    fn matches(&self, method: &str, path: &str) -> bool {
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        (self.method == "ANY" || self.method == method)
            && segs.len() == self.segments.len()
            && self
                .segments
                .iter()
                .zip(&segs)
                .all(|(want, got)| (want.starts_with('{') && want.ends_with('}')) || want == got)
    }
}

/// The routes of `api` in a functions file (`{"functions": {name: {"routes": [{api, method, path}]}}}`).
pub fn routes(functions: &Value, api: &str) -> Vec<Route> {
    let mut out = Vec::new();
    for (name, f) in functions["functions"].as_object().into_iter().flatten() {
        for r in f["routes"].as_array().into_iter().flatten() {
            if r["api"] == api {
                out.push(Route {
                    method: r["method"].as_str().unwrap_or("ANY").to_string(),
                    segments: r["path"]
                        .as_str()
                        .unwrap_or("/")
                        .split('/')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect(),
                    function: name.clone(),
                });
            }
        }
    }
    out
}

struct Gateway {
    routes: Vec<Route>,
    watch: String,
    http: reqwest::Client,
}

/// Serves one API on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, routes: Vec<Route>, watch: &str) {
    let state = Arc::new(Gateway {
        routes,
        watch: watch.trim_end_matches('/').to_string(),
        http: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(300))
            // A function's redirect goes back to the caller, as API Gateway passes it on.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client"),
    });
    let app = axum::Router::new().fallback(forward).with_state(state);
    axum::serve(listener, app).await.expect("gateway serves");
}

async fn forward(
    State(gw): State<Arc<Gateway>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let Some(route) = gw.routes.iter().find(|r| r.matches(method.as_str(), path)) else {
        // API Gateway's own answer for a route it does not have.
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"message": "Not Found"})),
        )
            .into_response();
    };
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let url = format!("{}/lambda-url/{}{path}{query}", gw.watch, route.function);
    let mut req = gw.http.request(method, &url).body(body);
    for name in [
        "content-type",
        "user-agent",
        "accept",
        "cookie",
        "origin",
        "sec-fetch-site",
    ] {
        if let Some(v) = headers.get(name) {
            req = req.header(name, v);
        }
    }
    match req.send().await {
        Ok(res) => {
            let status = res.status();
            let passed: Vec<_> = res
                .headers()
                .iter()
                .filter(|(n, _)| {
                    !matches!(
                        n.as_str(),
                        "content-length" | "transfer-encoding" | "connection" | "date"
                    )
                })
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect();
            let body = res.bytes().await.unwrap_or_default();
            let mut out = (status, body).into_response();
            // The function's headers only (axum's own content type for bytes goes).
            out.headers_mut().remove("content-type");
            for (n, v) in passed {
                out.headers_mut().append(n, v);
            }
            out
        }
        // API Gateway answers 503 when the integration does not.
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"message": "Service Unavailable"})),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_path_parameters_and_methods() {
        let functions = json!({"functions": {
            "webhook-candidate-hired": {"routes": [{"api": "HttpApi", "method": "POST", "path": "/webhooks/{tenantId}/candidateHired"}]},
            "admin-status": {"routes": [{"api": "AdminApi", "method": "GET", "path": "/admin/tenants/{id}/status"}]}
        }});
        let hooks = routes(&functions, "HttpApi");
        assert_eq!(hooks.len(), 1);
        assert!(hooks[0].matches("POST", "/webhooks/acme/candidateHired"));
        assert!(!hooks[0].matches("GET", "/webhooks/acme/candidateHired"));
        assert!(!hooks[0].matches("POST", "/webhooks/acme/candidateDeleted"));
        assert!(!hooks[0].matches("POST", "/webhooks/candidateHired"));
        assert!(routes(&functions, "AdminApi")[0].matches("GET", "/admin/tenants/acme/status"));
    }
}
