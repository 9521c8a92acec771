-- Group members whose value names no SCIM User (yet): RFC 7644 asks no
-- referential integrity of `members`, and IdPs add members whose own
-- provisioning failed or is still queued. They are kept and returned as
-- sent, and affect no subject; a group write that finds the User by then
-- moves the member to scim_group_members.
CREATE TABLE scim_group_unresolved_members (
    group_id TEXT NOT NULL REFERENCES scim_groups (id) ON DELETE CASCADE,
    member_id TEXT NOT NULL,
    PRIMARY KEY (group_id, member_id)
);
