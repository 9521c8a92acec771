//! `ScimError`: every way a SCIM request fails, with the HTTP status and
//! `scimType` of RFC 7644 3.12. Rendering lives in `http/scim/error.rs`.

use crate::store::StoreError;

/// RFC 7644 table 9.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    InvalidFilter,
    TooMany,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
    InvalidVers,
    Sensitive,
    TooLarge,
}

impl ScimType {
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::Sensitive => "sensitive",
            ScimType::TooLarge => "tooLarge",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScimError {
    /// 400 with a `scimType`.
    #[error("{detail}")]
    BadRequest { scim_type: ScimType, detail: String },
    #[error("a valid bearer token is required")]
    Unauthorized,
    #[error("{0}")]
    NotFound(String),
    /// 409 `uniqueness`.
    #[error("{0}")]
    Conflict(String),
    /// 412: `If-Match` names another version.
    #[error("the resource changed: its version does not match If-Match")]
    PreconditionFailed,
    /// 413 `tooLarge`: the body is over the size limit (`maxPayloadSize`).
    #[error("{0}")]
    TooLarge(String),
    /// 413 `tooMany`: a Bulk request over `maxOperations`.
    #[error("{0}")]
    TooMany(String),
    /// 415: a body in a media type other than SCIM's or plain JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    NotImplemented(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// Logged once, answered 503 so the IdP retries later (400 when the
    /// database refuses the data itself, see `StoreError::is_refusal`).
    #[error("the store is unavailable or refused the change")]
    Store(#[from] StoreError),
}

impl ScimError {
    pub fn bad(scim_type: ScimType, detail: impl Into<String>) -> Self {
        ScimError::BadRequest {
            scim_type,
            detail: detail.into(),
        }
    }

    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidValue, detail)
    }

    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidPath, detail)
    }

    pub fn status(&self) -> u16 {
        match self {
            ScimError::BadRequest { .. } => 400,
            ScimError::Unauthorized => 401,
            ScimError::NotFound(_) => 404,
            ScimError::MethodNotAllowed(_) => 405,
            ScimError::Conflict(_) => 409,
            ScimError::PreconditionFailed => 412,
            ScimError::TooLarge(_) | ScimError::TooMany(_) => 413,
            ScimError::UnsupportedMediaType(_) => 415,
            ScimError::NotImplemented(_) => 501,
            // Data the database refuses for good: an IdP must not retry it.
            ScimError::Store(e) if e.is_refusal() => 400,
            ScimError::Store(_) => 503,
        }
    }

    pub fn scim_type(&self) -> Option<ScimType> {
        match self {
            ScimError::BadRequest { scim_type, .. } => Some(*scim_type),
            ScimError::Conflict(_) => Some(ScimType::Uniqueness),
            ScimError::TooLarge(_) => Some(ScimType::TooLarge),
            ScimError::TooMany(_) => Some(ScimType::TooMany),
            ScimError::Store(e) if e.is_refusal() => Some(ScimType::InvalidValue),
            _ => None,
        }
    }

    /// The SCIM Error resource (`status` is a string, RFC 7644 3.12).
    pub fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({
            "schemas": [super::ERROR_URN],
            "status": self.status().to_string(),
            "detail": self.to_string(),
        });
        if let Some(t) = self.scim_type() {
            body["scimType"] = t.as_str().into();
        }
        body
    }
}
