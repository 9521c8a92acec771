//! The delivery engine: workers claim due jobs in batches, plan each from the
//! subject's current state, hand the sends to connectors, and record every
//! attempt with its next step (done, retry later, dead letter) in one commit.

pub mod plan;
pub mod rate_limit;
pub mod retry;
pub mod worker;

pub use retry::RetryPolicy;
pub use worker::Engine;
