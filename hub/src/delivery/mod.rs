//! The delivery engine. Every enabled destination has its own [`driver`]:
//! it claims only that destination's due jobs (never a (destination,
//! subject) with a delivery in flight), plans each from the subject's
//! current state (`plan`), cuts batches to the connector's limits
//! (`batcher`), sends them within adaptive concurrency and the rate limit
//! shared by all hub processes (`limits`), turns the answers into outcomes
//! (`judge`, `retry`) and commits them as each batch returns (`recorder`).
//! Destination state (paused, throttled) lives in the store, so every
//! process sees it.

pub mod batcher;
mod driver;
pub mod engine;
pub mod judge;
pub mod limits;
pub mod plan;
mod recorder;
pub mod retry;

pub use engine::{Engine, Wakers};
pub use retry::RetryPolicy;
