-- V8: broker administration. A broker's routing status is set by an operator through the admin
-- API (ACTIVE, MAINTENANCE, SUSPENDED, with a reason); a status other than ACTIVE overrides every
-- profile's own status, so the broker is excluded with that reason. Every administrative change
-- (register, update, status) is a row of broker_audit, never an update of one.

ALTER TABLE brokers
    ADD COLUMN routing_status VARCHAR(20) NOT NULL DEFAULT 'ACTIVE'
        CHECK (routing_status IN ('ACTIVE', 'MAINTENANCE', 'SUSPENDED')),
    ADD COLUMN status_reason TEXT,
    ADD COLUMN status_changed_at TIMESTAMPTZ;

CREATE TABLE broker_audit (
    id BIGSERIAL PRIMARY KEY,
    broker_id VARCHAR(50) NOT NULL REFERENCES brokers (broker_id),
    action VARCHAR(20) NOT NULL CHECK (action IN ('REGISTER', 'UPDATE', 'STATUS')),
    old_status VARCHAR(20),
    new_status VARCHAR(20),
    reason TEXT,
    changes JSONB NOT NULL DEFAULT '{}'::jsonb,
    actor VARCHAR(100) NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX idx_broker_audit_latest ON broker_audit (id DESC);
CREATE INDEX idx_broker_audit_broker ON broker_audit (broker_id, id DESC);

-- Order history pages by (created_at, order_id) per trader, newest first.
CREATE INDEX idx_orders_user_history ON orders (user_id, created_at DESC, order_id DESC);
