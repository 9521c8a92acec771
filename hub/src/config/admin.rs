//! `[admin]`: the admin API's bearer tokens. Only each token's SHA-256 is
//! configured; every token has a name (for logs and the console) and a
//! scope. `admin.token_sha256`, the single token of earlier versions, stays
//! valid as a write-scoped token named `default`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// SHA-256 (hex) of a write-scoped token named `default`.
    #[serde(default)]
    pub token_sha256: Option<String>,
    /// `[admin.tokens.NAME]`: one per admin or tool (`hub token new --admin NAME`).
    #[serde(default)]
    pub tokens: BTreeMap<String, AdminTokenSettings>,
}

impl std::fmt::Debug for AdminSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminSettings")
            .field("token_sha256", &self.token_sha256.as_ref().map(|_| "***"))
            .field("tokens", &self.tokens.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminTokenSettings {
    /// SHA-256 (hex) of the bearer token.
    pub token_sha256: String,
    /// `read` or `write`.
    pub scope: String,
}

impl std::fmt::Debug for AdminTokenSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminTokenSettings")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// What an admin token may do: `read` sees everything, `write` may also
/// change things (replay, discard, pause, resume, backfill, erase).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Read,
    Write,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        [Scope::Read, Scope::Write]
            .into_iter()
            .find(|s| s.as_str() == text)
    }

    /// Whether a token of this scope may do what `needed` asks.
    pub fn allows(self, needed: Scope) -> bool {
        self >= needed
    }
}

/// One validated admin token.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken {
    pub name: String,
    pub sha256: [u8; 32],
    pub scope: Scope,
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminToken")
            .field("name", &self.name)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// The name `admin.token_sha256` goes by.
pub const DEFAULT_TOKEN_NAME: &str = "default";

fn parse_hash(text: &str) -> Option<[u8; 32]> {
    hex::decode(text.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
}

impl AdminSettings {
    /// Every token, checked; problems are pushed onto `errors`.
    pub(super) fn validate(&self, errors: &mut Vec<String>) -> Vec<AdminToken> {
        let mut tokens = Vec::new();
        if let Some(h) = &self.token_sha256 {
            match parse_hash(h) {
                Some(sha256) => tokens.push(AdminToken {
                    name: DEFAULT_TOKEN_NAME.into(),
                    sha256,
                    scope: Scope::Write,
                }),
                None => errors.push("admin.token_sha256: expected 64 hex digits".into()),
            }
        }
        for (name, t) in &self.tokens {
            if !crate::event::valid_purpose_name(name) {
                errors.push(format!(
                    "admin.tokens.{name}: a token name must match [a-z0-9_]{{1,64}}"
                ));
            }
            if name == DEFAULT_TOKEN_NAME && self.token_sha256.is_some() {
                errors.push(format!(
                    "admin.tokens.{name}: the name is taken by admin.token_sha256"
                ));
            }
            let sha256 = parse_hash(&t.token_sha256);
            if sha256.is_none() {
                errors.push(format!(
                    "admin.tokens.{name}.token_sha256: expected 64 hex digits"
                ));
            }
            let scope = Scope::parse(t.scope.trim());
            if scope.is_none() {
                errors.push(format!(
                    "admin.tokens.{name}.scope: expected \"read\" or \"write\""
                ));
            }
            if let (Some(sha256), Some(scope)) = (sha256, scope) {
                if tokens.iter().any(|o: &AdminToken| o.sha256 == sha256) {
                    errors.push(format!(
                        "admin.tokens.{name}.token_sha256: another admin token has the same hash"
                    ));
                }
                tokens.push(AdminToken {
                    name: name.clone(),
                    sha256,
                    scope,
                });
            }
        }
        tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn settings(scope: &str) -> AdminSettings {
        let mut s = AdminSettings::default();
        s.tokens.insert(
            "ops".into(),
            AdminTokenSettings {
                token_sha256: HASH.into(),
                scope: scope.into(),
            },
        );
        s
    }

    #[test]
    fn scope_is_parsed_into_the_enum() {
        let mut errors = Vec::new();
        let tokens = settings("read").validate(&mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(tokens[0].scope, Scope::Read);
        assert_eq!(tokens[0].name, "ops");
    }

    #[test]
    fn refuses_an_unknown_scope_naming_the_key() {
        let mut errors = Vec::new();
        let tokens = settings("admin").validate(&mut errors);
        assert!(tokens.is_empty());
        assert_eq!(
            errors,
            vec!["admin.tokens.ops.scope: expected \"read\" or \"write\"".to_string()]
        );
    }

    #[test]
    fn the_single_token_is_a_write_token_named_default() {
        let s = AdminSettings {
            token_sha256: Some(HASH.into()),
            ..Default::default()
        };
        let mut errors = Vec::new();
        let tokens = s.validate(&mut errors);
        assert!(errors.is_empty());
        assert_eq!(tokens.len(), 1);
        assert_eq!(tokens[0].name, DEFAULT_TOKEN_NAME);
        assert_eq!(tokens[0].scope, Scope::Write);
    }

    #[test]
    fn refuses_two_tokens_with_one_hash() {
        let mut s = settings("read");
        s.token_sha256 = Some(HASH.into());
        let mut errors = Vec::new();
        s.validate(&mut errors);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("same hash"), "{errors:?}");
    }

    #[test]
    fn write_allows_read_but_not_the_other_way() {
        assert!(Scope::Write.allows(Scope::Read));
        assert!(Scope::Write.allows(Scope::Write));
        assert!(Scope::Read.allows(Scope::Read));
        assert!(!Scope::Read.allows(Scope::Write));
    }
}
