-- One row the readiness probe rewrites: /readyz proves the store can commit.
CREATE TABLE store_probe (
    id INTEGER PRIMARY KEY,
    probed_at BIGINT NOT NULL
);
