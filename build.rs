//! Tells the test targets whether a PostgreSQL test database is configured.
//!
//! With `HUB_TEST_DATABASE_URL` set, `cfg(hub_pg)` is on and the PostgreSQL
//! variants of the tests run; without it they are compiled as `#[ignore]`d,
//! so `cargo test` counts them as ignored, never as passed.

fn main() {
    println!("cargo:rustc-check-cfg=cfg(hub_pg)");
    println!("cargo:rerun-if-env-changed=HUB_TEST_DATABASE_URL");
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("HUB_TEST_DATABASE_URL").is_some_and(|v| !v.is_empty()) {
        println!("cargo:rustc-cfg=hub_pg");
    }
}
