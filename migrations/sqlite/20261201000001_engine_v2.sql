-- Delivery engine v2.
--
-- Jobs: a claim writes a lease token, and finishing touches only rows that
-- still carry it (fencing). 'waiting' is a delivery the vendor accepted as an
-- asynchronous job: it holds its (destination, subject) until the ticket is
-- confirmed or failed, like 'running' does until the call returns.
CREATE TABLE delivery_jobs_v2 (
    id TEXT PRIMARY KEY NOT NULL,
    destination TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    reason TEXT NOT NULL CHECK (reason IN ('change', 'retry', 'replay', 'backfill')),
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'waiting')),
    attempt INTEGER NOT NULL,
    not_before INTEGER NOT NULL,
    locked_until INTEGER,
    lease_token TEXT,
    first_enqueued_at INTEGER NOT NULL,
    -- A 'waiting' job: the vendor's ticket, and what it confirms (JSON:
    -- action, delivery id, identity, record id).
    ticket TEXT,
    ticket_item TEXT
);
INSERT INTO delivery_jobs_v2 (id, destination, subject_id, reason, status, attempt, not_before,
    locked_until, lease_token, first_enqueued_at, ticket, ticket_item)
SELECT id, destination, subject_id, reason, status, attempt, not_before, locked_until, NULL,
    first_enqueued_at, NULL, NULL FROM delivery_jobs;
DROP TABLE delivery_jobs;
ALTER TABLE delivery_jobs_v2 RENAME TO delivery_jobs;
-- At most one pending job per (destination, subject): changes coalesce.
CREATE UNIQUE INDEX delivery_jobs_pending ON delivery_jobs (destination, subject_id) WHERE status = 'pending';
-- A destination's due work, and the in-flight check of one pair.
CREATE INDEX delivery_jobs_claim ON delivery_jobs (destination, status, not_before);
CREATE INDEX delivery_jobs_pair ON delivery_jobs (destination, subject_id, status);
CREATE INDEX delivery_jobs_subject ON delivery_jobs (subject_id);

-- Attempts gain 'accepted' (an asynchronous vendor job was started) and
-- 'throttled' (the vendor asked us to wait; no attempt counted).
CREATE TABLE delivery_attempts_v2 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    destination TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('upsert', 'delete', 'suppress', 'unsubscribe', 'none')),
    outcome TEXT NOT NULL CHECK (outcome IN ('delivered', 'accepted', 'retry', 'throttled', 'paused',
        'dead', 'suppressed', 'skipped')),
    status_code INTEGER,
    latency_ms INTEGER NOT NULL,
    detail TEXT,
    created_at INTEGER NOT NULL
);
INSERT INTO delivery_attempts_v2 (id, job_id, destination, subject_id, attempt, action, outcome,
    status_code, latency_ms, detail, created_at)
SELECT id, job_id, destination, subject_id, attempt, action, outcome, status_code, latency_ms,
    detail, created_at FROM delivery_attempts;
DROP TABLE delivery_attempts;
ALTER TABLE delivery_attempts_v2 RENAME TO delivery_attempts;
CREATE INDEX delivery_attempts_subject ON delivery_attempts (subject_id, id);
CREATE INDEX delivery_attempts_destination ON delivery_attempts (destination, id);
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
    paused_at INTEGER,
    next_probe_at INTEGER,
    throttled_until INTEGER,
    throttle_reason TEXT,
    -- The shared rate limit (GCRA): when, in microseconds since the epoch,
    -- the next call may start.
    rate_tat INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL
);

-- Outcomes per destination and minute, for "delivered / failed in the last
-- hour" without scanning attempts.
CREATE TABLE destination_counts (
    destination TEXT NOT NULL,
    minute INTEGER NOT NULL,
    delivered INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    PRIMARY KEY (destination, minute)
);
