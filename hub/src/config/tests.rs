//! Settings: defaults, layering, validation.

use super::*;

#[test]
fn defaults_are_valid_and_zero_config() {
    let c = RawConfig::default().validate().unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.database_url, "sqlite://./data/hub.db");
    assert_eq!(c.delivery.max_attempts, 15);
}

#[test]
fn all_errors_are_reported() {
    let mut raw = RawConfig {
        listen: "nope".into(),
        database_url: "mysql://x".into(),
        ..Default::default()
    };
    raw.sources.insert(
        "ciam".into(),
        SourceSettings {
            secret: Some("plain".into()),
            secrets: vec![],
        },
    );
    let Err(ConfigError::Invalid(errors)) = raw.validate() else {
        panic!("expected errors")
    };
    assert_eq!(errors.len(), 3, "{errors:?}");
}

// figment's Jail closures return its (large) error type by design.
#[test]
#[allow(clippy::result_large_err)]
fn file_then_env_layering_with_rotated_secrets() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "hub.toml",
            r#"
            listen = "127.0.0.1:9999"
            [sources.ciam]
            secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]
            [delivery]
            max_attempts = 3
            "#,
        )?;
        jail.set_env("HUB_DELIVERY__MAX_ATTEMPTS", "7");
        jail.set_env("HUB_DATABASE_URL", "postgres://hub@db/hub");
        jail.set_env("HUB_LOG", "debug");
        jail.set_env("HUB_TEST_DATABASE_URL", "postgres://elsewhere/test");
        let c = RawConfig::load(Some(std::path::Path::new("hub.toml")))
            .map_err(|e| e.to_string())?
            .validate()
            .map_err(|e| e.to_string())?;
        assert_eq!(c.listen.port(), 9999, "from the file");
        assert_eq!(c.delivery.max_attempts, 7, "env wins over the file");
        assert_eq!(c.database_url, "postgres://hub@db/hub");
        assert_eq!(
            c.sources["ciam"].secrets.len(),
            2,
            "both secrets while rotating"
        );
        Ok(())
    });
}

#[test]
#[allow(clippy::result_large_err)]
fn unknown_keys_are_refused() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "hub.toml",
            "[delivery]
max_atempts = 3
",
        )?;
        let err = RawConfig::load(Some(std::path::Path::new("hub.toml"))).unwrap_err();
        assert!(err.to_string().contains("max_atempts"), "{err}");
        Ok(())
    });
}

#[test]
fn sizes_parse_with_units() {
    assert_eq!(ByteSize::parse("256KiB").unwrap(), ByteSize(262144));
    assert_eq!(ByteSize::parse("1MiB").unwrap(), ByteSize(1048576));
    assert_eq!(ByteSize::parse("10").unwrap(), ByteSize(10));
    assert!(ByteSize::parse("10 parsecs").is_err());
}

#[test]
fn split_roles_need_postgresql() {
    for role in [Role::Api, Role::Worker] {
        let Err(ConfigError::Invalid(errors)) = RawConfig {
            role,
            ..Default::default()
        }
        .validate() else {
            panic!("{role:?} on SQLite must be refused")
        };
        assert!(errors[0].contains("needs PostgreSQL"), "{errors:?}");
        let on_pg = RawConfig {
            role,
            database_url: "postgres://hub@db/hub".into(),
            ..Default::default()
        }
        .validate()
        .unwrap();
        assert_eq!(on_pg.role, role);
    }
    assert_eq!(RawConfig::default().validate().unwrap().role, Role::All);
}

#[test]
#[allow(clippy::result_large_err)]
fn role_and_store_settings_come_from_env() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("HUB_ROLE", "worker");
        jail.set_env("HUB_DATABASE_URL", "postgres://hub@db/hub");
        jail.set_env("HUB_STORE__TIMEOUT", "2s");
        let c = RawConfig::load(None).unwrap().validate().unwrap();
        assert_eq!(c.role, Role::Worker);
        assert_eq!(c.store.timeout, Duration::from_secs(2));
        Ok(())
    });
}
