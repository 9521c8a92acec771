-- What each destination last received for a subject. Withdrawal goes only to
-- destinations that hold data (state 'sent'), and erasure to every destination
-- that ever received the subject.
CREATE TABLE destination_subjects (
    destination TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('sent', 'withdrawn', 'deleted')),
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (destination, subject_id)
);
CREATE INDEX destination_subjects_subject ON destination_subjects (subject_id);
