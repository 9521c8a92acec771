-- What each destination last received for a subject. Withdrawal goes only to
-- destinations that hold data (state 'sent'), and erasure to every destination
-- that ever received the subject.
CREATE TABLE destination_subjects (
    destination TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('sent', 'withdrawn', 'deleted')),
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (destination, subject_id)
);
CREATE INDEX destination_subjects_subject ON destination_subjects (subject_id);

-- Erasure (GDPR art. 17): requested, then completed once every destination
-- that had the subject confirmed its delete (or the deadline passed).
ALTER TABLE subjects ADD COLUMN erase_requested_at BIGINT;
ALTER TABLE subjects ADD COLUMN erased_at BIGINT;
CREATE INDEX subjects_erase_pending ON subjects (erase_requested_at) WHERE erased_at IS NULL;

CREATE TABLE erasure_receipts (
    subject_id TEXT PRIMARY KEY NOT NULL,
    requested_at BIGINT NOT NULL,
    completed_at BIGINT NOT NULL,
    confirmed TEXT NOT NULL,
    unconfirmed TEXT NOT NULL
);
