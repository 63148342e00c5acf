//! What handlers read from a request: the authenticated caller, query parameters and JSON bodies.

use super::KeyPerms;
use super::error::ApiError;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde_json::{Map, Value};

/// The key that passed the gate; the gate puts it in the request's extensions.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub perms: KeyPerms,
}

impl Caller {
    /// Every endpoint needs one permission; a key without it gets 403 naming it.
    pub fn require(&self, permission: &str) -> Result<(), ApiError> {
        if self.perms.allows(permission) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "This API key does not have the {permission} permission"
            )))
        }
    }

    pub fn confidential(&self) -> bool {
        self.perms.confidential
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("No API key provided."))
    }
}

/// Query parameters in order, repeated names kept (`stage_id=a&stage_id=b`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Params(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map(|Query(pairs)| Params(pairs))
            .map_err(|_| ApiError::bad_request("Malformed query string"))
    }
}

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(ApiError::bad_request(format!(
                "Invalid value for {name}: {other} (true or false expected)"
            ))),
        }
    }

    pub fn millis(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.get(name)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "Invalid value for {name}: {v} (a timestamp in ms expected)"
                    ))
                })
            })
            .transpose()
    }

    /// What an offset token is bound to: the path and every parameter except paging. Lever answers
    /// `Invalid offset token` when a cursor is reused with other filters (lever-api.md §4).
    pub fn scope(&self, path: &str) -> String {
        let mut pairs: Vec<_> = self
            .0
            .iter()
            .filter(|(k, _)| k != "limit" && k != "offset")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        pairs.sort();
        format!("{path}?{}", pairs.join("&"))
    }

    /// The user a write is attributed to. Lever refuses unknown or deactivated users.
    pub fn perform_as(&self, users: &[Value], required: bool) -> Result<Option<String>, ApiError> {
        let Some(id) = self.get("perform_as").filter(|v| !v.is_empty()) else {
            return if required {
                Err(ApiError::bad_request(
                    "Missing required parameter: perform_as",
                ))
            } else {
                Ok(None)
            };
        };
        match users.iter().find(|u| u["id"] == id) {
            None => Err(ApiError::bad_request(format!(
                "perform_as: user {id} was not found"
            ))),
            Some(u) if !u["deactivatedAt"].is_null() => Err(ApiError::bad_request(format!(
                "perform_as: user {id} is deactivated"
            ))),
            Some(_) => Ok(Some(id.to_string())),
        }
    }

    /// The filter asked for. Asking for confidential data (`confidential` or `all`) with a key
    /// created without confidential access is an access error, as Lever answers (lever-api.md).
    pub fn confidentiality(&self, caller: &Caller) -> Result<Confidentiality, ApiError> {
        let asked = match self.get("confidentiality") {
            None | Some("non-confidential") => Confidentiality::NonConfidential,
            Some("confidential") => Confidentiality::Confidential,
            Some("all") => Confidentiality::All,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "Invalid value for confidentiality: {other} (non-confidential, confidential or all)"
                )));
            }
        };
        if asked != Confidentiality::NonConfidential && !caller.confidential() {
            return Err(ApiError::forbidden(
                "This API key does not have access to confidential data",
            ));
        }
        Ok(asked)
    }
}

/// The `confidentiality` filter of list endpoints; Lever's default is non-confidential only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Confidentiality {
    NonConfidential,
    Confidential,
    All,
}

impl Confidentiality {
    /// Whether a list includes an item: confidential items only ever for keys with access.
    pub fn includes(self, item_confidential: bool, caller: &Caller) -> bool {
        if item_confidential && !caller.confidential() {
            return false;
        }
        match self {
            Confidentiality::NonConfidential => !item_confidential,
            Confidentiality::Confidential => item_confidential,
            Confidentiality::All => true,
        }
    }
}

/// A write's body as a JSON object; anything else is Lever's 400.
pub(crate) fn json_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("A JSON request body is required"));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request(
            "The request body must be a JSON object",
        )),
        Err(e) => Err(ApiError::bad_request(format!("Malformed JSON body: {e}"))),
    }
}

/// An array of strings in `body[name]`, required.
pub(crate) fn string_list(body: &Map<String, Value>, name: &str) -> Result<Vec<String>, ApiError> {
    let invalid = || ApiError::bad_request(format!("{name} must be an array of strings"));
    body.get(name)
        .and_then(Value::as_array)
        .ok_or_else(invalid)?
        .iter()
        .map(|v| v.as_str().map(str::to_string).ok_or_else(invalid))
        .collect()
}

/// An optional string field; present with another type is a 400.
pub(crate) fn opt_string(
    body: &Map<String, Value>,
    name: &str,
) -> Result<Option<String>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::bad_request(format!("{name} must be a string"))),
    }
}

/// An optional integer (ms timestamps, minutes); present with another type is a 400.
pub(crate) fn opt_i64(body: &Map<String, Value>, name: &str) -> Result<Option<i64>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| ApiError::bad_request(format!("{name} must be an integer"))),
    }
}
