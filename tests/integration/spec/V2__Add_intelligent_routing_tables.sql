-- The original specification's DDL ("Migration: V2__Add_intelligent_routing_tables.sql"),
-- copied verbatim as the fact our V2 migration is compared with, column by column.

-- Broker execution profiles
CREATE TABLE broker_execution_profiles (
    id BIGSERIAL PRIMARY KEY,
    broker_id VARCHAR(50) NOT NULL,
    symbol VARCHAR(20) NOT NULL,
    avg_execution_time_ms INTEGER,
    fill_rate_percentage DECIMAL(5,2),
    price_improvement_bps DECIMAL(8,4),
    slippage_bps DECIMAL(8,4),
    current_spread_bps DECIMAL(8,4),
    order_book_depth BIGINT,
    recent_volume BIGINT,
    max_order_size BIGINT,
    min_order_size BIGINT,
    status VARCHAR(20) NOT NULL DEFAULT 'AVAILABLE',
    response_time_ms INTEGER,
    error_rate_percentage DECIMAL(5,2),
    last_updated TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    UNIQUE(broker_id, symbol)
);

-- Order routing decisions
CREATE TABLE order_routing_decisions (
    id BIGSERIAL PRIMARY KEY,
    order_id VARCHAR(50) NOT NULL,
    user_id VARCHAR(50) NOT NULL,
    routing_strategy VARCHAR(30) NOT NULL,
    confidence_score DECIMAL(5,3),
    expected_execution_time_ms INTEGER,
    expected_slippage_bps DECIMAL(8,4),
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

-- Order allocations (for split orders)
CREATE TABLE order_allocations (
    id BIGSERIAL PRIMARY KEY,
    routing_decision_id BIGINT NOT NULL REFERENCES order_routing_decisions(id),
    broker_id VARCHAR(50) NOT NULL,
    allocation_percentage DECIMAL(5,2) NOT NULL,
    expected_execution_price DECIMAL(12,4),
    priority INTEGER NOT NULL DEFAULT 1,
    status VARCHAR(20) NOT NULL DEFAULT 'PENDING'
);

-- Execution metrics
CREATE TABLE execution_metrics (
    id BIGSERIAL PRIMARY KEY,
    order_id VARCHAR(50) NOT NULL,
    broker_id VARCHAR(50) NOT NULL,
    symbol VARCHAR(20) NOT NULL,
    execution_latency_ms BIGINT,
    slippage_bps DECIMAL(8,4),
    price_improvement_bps DECIMAL(8,4),
    fill_rate DECIMAL(5,2),
    execution_quality_score DECIMAL(5,3),
    market_conditions JSONB,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

-- Indexes for performance
CREATE INDEX idx_broker_profiles_broker_symbol ON broker_execution_profiles(broker_id, symbol);
CREATE INDEX idx_routing_decisions_user_id ON order_routing_decisions(user_id);
CREATE INDEX idx_routing_decisions_created_at ON order_routing_decisions(created_at);
CREATE INDEX idx_execution_metrics_broker_symbol ON execution_metrics(broker_id, symbol);
CREATE INDEX idx_execution_metrics_created_at ON execution_metrics(created_at);
