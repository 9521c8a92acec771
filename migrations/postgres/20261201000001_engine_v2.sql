-- Delivery engine v2.
--
-- Jobs: a claim writes a lease token, and finishing touches only rows that
-- still carry it (fencing). 'waiting' is a delivery the vendor accepted as an
-- asynchronous job: it holds its (destination, subject) until the ticket is
-- confirmed or failed, like 'running' does until the call returns.
ALTER TABLE delivery_jobs DROP CONSTRAINT delivery_jobs_status_check;
ALTER TABLE delivery_jobs ADD CONSTRAINT delivery_jobs_status_check
    CHECK (status IN ('pending', 'running', 'waiting'));
ALTER TABLE delivery_jobs ADD COLUMN lease_token TEXT;
-- A 'waiting' job: the vendor's ticket, and what it confirms (JSON: action,
-- delivery id, identity, record id).
ALTER TABLE delivery_jobs ADD COLUMN ticket TEXT;
ALTER TABLE delivery_jobs ADD COLUMN ticket_item TEXT;
DROP INDEX delivery_jobs_due;
-- A destination's due work, and the in-flight check of one pair.
CREATE INDEX delivery_jobs_claim ON delivery_jobs (destination, status, not_before);
CREATE INDEX delivery_jobs_pair ON delivery_jobs (destination, subject_id, status);
CREATE INDEX delivery_jobs_subject ON delivery_jobs (subject_id);

-- Attempts gain 'accepted' (an asynchronous vendor job was started) and
-- 'throttled' (the vendor asked us to wait; no attempt counted).
ALTER TABLE delivery_attempts DROP CONSTRAINT delivery_attempts_outcome_check;
ALTER TABLE delivery_attempts ADD CONSTRAINT delivery_attempts_outcome_check
    CHECK (outcome IN ('delivered', 'accepted', 'retry', 'throttled', 'paused', 'dead',
        'suppressed', 'skipped'));
CREATE INDEX delivery_attempts_created ON delivery_attempts (created_at);

-- What a destination holds: the vendor's record id (deletes address it) and
-- the identity values last delivered (a delete must name the email the
-- vendor knows, which may have changed since). Scrubbed when an erasure
-- completes.
ALTER TABLE destination_subjects ADD COLUMN record_id TEXT;
ALTER TABLE destination_subjects ADD COLUMN identity TEXT;

-- Each destination's state, shared by every hub process.
CREATE TABLE destination_states (
    destination TEXT PRIMARY KEY NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'paused')),
    paused_by TEXT CHECK (paused_by IN ('vendor', 'admin')),
    pause_reason TEXT,
    paused_at BIGINT,
    next_probe_at BIGINT,
    throttled_until BIGINT,
    throttle_reason TEXT,
    -- The shared rate limit (GCRA): when, in microseconds since the epoch,
    -- the next call may start.
    rate_tat BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL
);

-- Outcomes per destination and minute, for "delivered / failed in the last
-- hour" without scanning attempts.
CREATE TABLE destination_counts (
    destination TEXT NOT NULL,
    minute BIGINT NOT NULL,
    delivered BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    PRIMARY KEY (destination, minute)
);
