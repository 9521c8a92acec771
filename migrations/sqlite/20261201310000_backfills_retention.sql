-- Backfills: one row per destination, the cursor of its latest run. Each
-- batch's jobs and the cursor move commit in one transaction, so a run that
-- was killed continues after its last committed batch. A lease (on the
-- database's clock) keeps two runners off one destination.
CREATE TABLE backfills (
    destination TEXT PRIMARY KEY NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('running', 'done')),
    -- The last subject id queued ('' before the first batch).
    last_subject_id TEXT NOT NULL,
    -- Live subjects when the run started, and how many were queued since.
    total BIGINT NOT NULL,
    queued BIGINT NOT NULL,
    lease_token TEXT,
    locked_until BIGINT,
    started_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT
);

-- Retention prunes by age, oldest first, in bounded batches.
CREATE INDEX changes_received ON changes (received_at);
CREATE INDEX inbound_messages_received ON inbound_messages (received_at);
CREATE INDEX dead_letters_replayed ON dead_letters (replayed_at) WHERE replayed_at IS NOT NULL;
