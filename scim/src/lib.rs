//! SCIM 2.0 grammar shared by the mapping engine and the SCIM endpoint:
//! attribute paths (`name.givenName`, `urn:...:User:costCenter`), value paths
//! (`emails[type eq "work"].value`) and filters (RFC 7644 3.4.2.2), with an
//! evaluator over SCIM resources held as `serde_json::Value`.
//!
//! ```
//! let user = serde_json::json!({
//!     "active": true,
//!     "emails": [{"value": "b@example.com", "primary": true}],
//! });
//! let when = scim::parse_filter("active eq true and emails[primary eq true].value pr")?;
//! assert!(when.matches(&user));
//! let from = scim::parse_value_path("emails[primary eq true].value")?;
//! assert_eq!(from.select(&user), [&serde_json::json!("b@example.com")]);
//! # Ok::<(), scim::ParseError>(())
//! ```

mod cursor;
mod datetime;
mod error;
mod eval;
pub mod filter;
mod literal;
mod names;
mod parser;
pub mod path;

#[cfg(test)]
mod tests;

pub use error::ParseError;
pub use filter::{CompareOp, Filter, parse_filter};
pub use parser::{MAX_DEPTH, MAX_NESTING};
pub use path::{AttrPath, ValuePath, parse_attr_path, parse_value_path};
