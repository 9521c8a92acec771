-- SCIM 2.0: a User is a subject a SCIM client provisioned (scim_user_name set,
-- the lowercased userName, unique among live subjects); Groups and their members.
ALTER TABLE subjects ADD COLUMN scim_user_name TEXT;
CREATE UNIQUE INDEX subjects_scim_user_name ON subjects (scim_user_name) WHERE deleted_at IS NULL;

CREATE TABLE scim_groups (
    id TEXT PRIMARY KEY NOT NULL,
    source TEXT NOT NULL,
    external_id TEXT,
    display_name TEXT NOT NULL,
    -- lowercased displayName: unique, and what filters compare.
    display_name_key TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX scim_groups_display_name ON scim_groups (display_name_key);
CREATE INDEX scim_groups_external_id ON scim_groups (external_id);

CREATE TABLE scim_group_members (
    group_id TEXT NOT NULL REFERENCES scim_groups (id) ON DELETE CASCADE,
    subject_id TEXT NOT NULL REFERENCES subjects (id),
    display TEXT,
    PRIMARY KEY (group_id, subject_id)
);
CREATE INDEX scim_group_members_subject ON scim_group_members (subject_id);
