-- Subjects: one customer each, current profile as SCIM-shaped JSON.
CREATE TABLE subjects (
    id TEXT PRIMARY KEY NOT NULL,
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    user_name TEXT,
    primary_email TEXT,
    profile TEXT NOT NULL,
    version BIGINT NOT NULL,
    last_occurred_at BIGINT NOT NULL,
    deleted_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX subjects_source_external_id ON subjects (source, external_id);
CREATE INDEX subjects_user_name ON subjects (lower(user_name));
CREATE INDEX subjects_primary_email ON subjects (primary_email);

-- Current consent per subject, purpose and brand ('' = every brand).
CREATE TABLE consents (
    subject_id TEXT NOT NULL REFERENCES subjects (id),
    purpose TEXT NOT NULL,
    brand TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL CHECK (state IN ('granted', 'denied')),
    source TEXT NOT NULL,
    version BIGINT NOT NULL,
    occurred_at BIGINT NOT NULL,
    PRIMARY KEY (subject_id, purpose, brand)
);

-- Every consent change, appended, never rewritten.
CREATE TABLE consent_ledger (
    id BIGSERIAL PRIMARY KEY,
    subject_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    brand TEXT NOT NULL DEFAULT '',
    previous_state TEXT CHECK (previous_state IN ('granted', 'denied')),
    new_state TEXT NOT NULL CHECK (new_state IN ('granted', 'denied')),
    source TEXT NOT NULL,
    evidence TEXT,
    occurred_at BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL
);
CREATE INDEX consent_ledger_subject ON consent_ledger (subject_id, id);

-- Inbound message ids already accepted (webhook-id per source).
CREATE TABLE inbound_messages (
    source TEXT NOT NULL,
    message_id TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (source, message_id)
);

-- What changed, from where, when; attribute names only, no values.
CREATE TABLE changes (
    id BIGSERIAL PRIMARY KEY,
    subject_id TEXT NOT NULL,
    source TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('profile_upserted', 'profile_deleted', 'consent_updated')),
    message_id TEXT,
    attributes TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX changes_subject ON changes (subject_id, id);

-- The outbox and queue: one row names (destination, subject), never a payload.
CREATE TABLE delivery_jobs (
    id TEXT PRIMARY KEY NOT NULL,
    destination TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    reason TEXT NOT NULL CHECK (reason IN ('change', 'retry', 'replay', 'backfill')),
    status TEXT NOT NULL CHECK (status IN ('pending', 'running')),
    attempt BIGINT NOT NULL,
    not_before BIGINT NOT NULL,
    locked_until BIGINT,
    first_enqueued_at BIGINT NOT NULL
);
-- At most one pending job per (destination, subject): changes coalesce.
CREATE UNIQUE INDEX delivery_jobs_pending ON delivery_jobs (destination, subject_id) WHERE status = 'pending';
CREATE INDEX delivery_jobs_due ON delivery_jobs (not_before);

CREATE TABLE delivery_attempts (
    id BIGSERIAL PRIMARY KEY,
    job_id TEXT NOT NULL,
    destination TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('upsert', 'delete', 'suppress', 'unsubscribe', 'none')),
    outcome TEXT NOT NULL CHECK (outcome IN ('delivered', 'retry', 'paused', 'dead', 'suppressed', 'skipped')),
    status_code BIGINT,
    latency_ms BIGINT NOT NULL,
    detail TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX delivery_attempts_subject ON delivery_attempts (subject_id, id);
CREATE INDEX delivery_attempts_destination ON delivery_attempts (destination, id);

CREATE TABLE dead_letters (
    id TEXT PRIMARY KEY NOT NULL,
    destination TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    status_code BIGINT,
    detail TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    replayed_at BIGINT
);
CREATE INDEX dead_letters_destination ON dead_letters (destination, created_at);
