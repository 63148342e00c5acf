//! Lever's error body: `{"code": "...", "message": "..."}` (lever-api.md §2, api_error_* fixtures).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

pub(crate) type ApiResult = Result<Response, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequestError", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UnauthorizedError", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "ForbiddenError", message)
    }

    /// As the documented example: `stages a80bbbe0-… was not found`.
    pub fn not_found(collection: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!("{collection} {id} was not found"),
        )
    }

    /// The body Lever would send with `status` when the request did not reach the work (faults).
    pub fn for_status(status: u16) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let (code, message) = match status.as_u16() {
            400 => ("BadRequestError", "Invalid request"),
            401 => ("UnauthorizedError", "Invalid or expired API key."),
            403 => ("ForbiddenError", "Forbidden"),
            404 => ("ResourceNotFound", "Not found"),
            422 => ("UnprocessableEntity", "Unprocessable entity"),
            429 => ("RateLimitError", "Too many requests."),
            500 => (
                "InternalServerError",
                "Oops! There was an error on Lever's end.",
            ),
            502 => ("BadGateway", "Bad gateway"),
            503 => (
                "ServiceUnavailable",
                "Lever is temporarily down for maintenance. Please retry your requests with exponential backoff.",
            ),
            504 => ("GatewayTimeout", "Gateway timeout"),
            _ => ("Error", "Error"),
        };
        Self::new(status, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"code": self.code, "message": self.message})),
        )
            .into_response()
    }
}
