-- V10: traders' broker connections (docs/brokers.md, "Trader broker connections").
-- A trader's order goes to a real broker only under the trader's own account. The access token
-- is stored only under envelope encryption: AES-256-GCM with a data key that KMS (or local
-- mode's key) wraps, bound to (user_id, broker_id); no column ever holds a token in clear.

CREATE TABLE broker_connections (
    user_id VARCHAR(50) NOT NULL,
    broker_id VARCHAR(50) NOT NULL REFERENCES brokers (broker_id),
    status VARCHAR(8) NOT NULL CHECK (status IN ('LIVE', 'EXPIRED', 'REVOKED')),
    account_hint VARCHAR(32),
    token_ciphertext BYTEA,
    wrapped_key BYTEA,
    key_id VARCHAR(256),
    linked_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, broker_id),
    -- A revoked connection keeps nothing that could be used; a live one has all of it.
    CONSTRAINT ck_broker_connections_sealed CHECK (
        (status = 'REVOKED' AND token_ciphertext IS NULL AND wrapped_key IS NULL)
        OR (status <> 'REVOKED' AND token_ciphertext IS NOT NULL AND wrapped_key IS NOT NULL
            AND key_id IS NOT NULL)
    )
);

-- OAuth states of link flows in progress: only a digest is kept, used once, then deleted.
CREATE TABLE broker_link_states (
    state_digest CHAR(64) PRIMARY KEY,
    user_id VARCHAR(50) NOT NULL,
    broker_id VARCHAR(50) NOT NULL REFERENCES brokers (broker_id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX idx_broker_link_states_expiry ON broker_link_states (expires_at);
