-- V1: the base the original specification assumes ("order management database schema (V1)").
-- Brokers carry their own configuration; orders are unique per (user_id, client_order_id).

CREATE TABLE brokers (
    broker_id VARCHAR(50) PRIMARY KEY,
    display_name VARCHAR(100) NOT NULL,
    adapter VARCHAR(20) NOT NULL,
    adapter_config JSONB NOT NULL DEFAULT '{}'::jsonb,
    webhook_auth VARCHAR(20) NOT NULL
        CHECK (webhook_auth IN ('KITE_CHECKSUM', 'HMAC', 'PATH_TOKEN')),
    webhook_secret_ref VARCHAR(200) NOT NULL,
    fee_schedule JSONB NOT NULL DEFAULT '{}'::jsonb,
    supported_order_types TEXT[] NOT NULL
        DEFAULT ARRAY['MARKET', 'LIMIT', 'STOP_LOSS', 'STOP_LOSS_MARKET'],
    lot_size INTEGER NOT NULL DEFAULT 1 CHECK (lot_size > 0),
    freeze_quantity BIGINT CHECK (freeze_quantity > 0),
    rate_limit_per_s INTEGER CHECK (rate_limit_per_s > 0),
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    order_id VARCHAR(50) PRIMARY KEY,
    user_id VARCHAR(50) NOT NULL,
    client_order_id VARCHAR(64) NOT NULL,
    request_hash CHAR(64) NOT NULL,
    symbol VARCHAR(20) NOT NULL,
    exchange VARCHAR(3) NOT NULL,
    side VARCHAR(4) NOT NULL CHECK (side IN ('BUY', 'SELL')),
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    order_type VARCHAR(20) NOT NULL,
    limit_price NUMERIC(12, 4),
    trigger_price NUMERIC(12, 4),
    product VARCHAR(3) NOT NULL,
    routing_objective VARCHAR(30) NOT NULL,
    max_brokers INTEGER,
    status VARCHAR(20) NOT NULL DEFAULT 'ROUTED',
    response JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uq_orders_user_client_order UNIQUE (user_id, client_order_id)
);

CREATE INDEX idx_orders_user_created ON orders (user_id, created_at);
