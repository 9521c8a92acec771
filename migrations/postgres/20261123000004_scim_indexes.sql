-- Every email of a SCIM user, lowercased, so `emails.value eq` filters are
-- an index lookup instead of a scan of the profiles.
CREATE TABLE subject_emails (
    subject_id TEXT NOT NULL,
    email TEXT NOT NULL,
    PRIMARY KEY (subject_id, email)
);
CREATE INDEX subject_emails_email ON subject_emails (email);

-- `meta.lastModified` filters.
CREATE INDEX subjects_updated_at ON subjects (updated_at);
