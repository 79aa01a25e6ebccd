-- Read leases (PostgreSQL, unused on SQLite): a backend process may answer a player's unchanged sync from its
-- memory while it holds a lease on the player, and a writer revokes every lease before it commits.
-- leased_until is the latest lease's end on the player's version row (NULL: none since the last write), so a
-- write sees on the row it locks whether anyone must be told.
ALTER TABLE inventory_versions ADD COLUMN leased_until BIGINT;
CREATE TABLE inventory_leases (
    user_id    TEXT NOT NULL,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, holder)
);
-- Each process's proof that writers' notifications reach it: renewed through its listening connection each
-- time its own ping comes back there. A lease counts only while its holder is alive, so a process gone or cut
-- off delays writers by a few seconds, however long its leases.
CREATE TABLE lease_holders (
    holder      TEXT PRIMARY KEY,
    alive_until BIGINT NOT NULL
);
