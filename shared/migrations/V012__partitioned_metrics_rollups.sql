-- V12: execution_metrics partitioned by month, report keys de-duplicated in a table of their own,
-- hourly and daily analytics roll-ups, and the functions that keep them (docs/data-layer.md,
-- "Partitions, retention and roll-ups").

-- A unique index on a partitioned table must contain the partition key, so UNIQUE (report_key)
-- cannot stay on execution_metrics: (report_key, created_at) would let a redelivered report
-- stamped a second later in. The key is stored here first, in the same statement as the
-- metrics row (INSERT ... ON CONFLICT DO NOTHING in a CTE), so a report is stored exactly once.
CREATE TABLE execution_report_keys (
    report_key VARCHAR(200) PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX idx_execution_report_keys_created ON execution_report_keys (created_at);

-- The unpartitioned table is copied into the partitioned one and dropped; its id sequence is
-- kept, so ids stay unique and increasing across the move.
ALTER TABLE execution_metrics RENAME TO execution_metrics_unpartitioned;
ALTER TABLE execution_metrics_unpartitioned
    RENAME CONSTRAINT execution_metrics_pkey TO execution_metrics_unpartitioned_pkey;
ALTER SEQUENCE execution_metrics_id_seq OWNED BY NONE;

-- created_at becomes TIMESTAMPTZ NOT NULL: a naive timestamp written by a session in IST would
-- land 5.5 hours off in UTC partitions and hourly buckets, and a primary key column cannot be
-- NULL. Existing values are read as UTC (every writer used the database's UTC default).
CREATE TABLE execution_metrics (
    id BIGINT NOT NULL DEFAULT nextval('execution_metrics_id_seq'),
    order_id VARCHAR(50) NOT NULL,
    broker_id VARCHAR(50) NOT NULL,
    symbol VARCHAR(20) NOT NULL,
    execution_latency_ms BIGINT,
    slippage_bps DECIMAL(8,4),
    price_improvement_bps DECIMAL(8,4),
    fill_rate DECIMAL(5,2),
    execution_quality_score DECIMAL(5,3),
    market_conditions JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    user_id VARCHAR(50),
    child_order_id VARCHAR(50),
    report_key VARCHAR(200),
    status VARCHAR(20),
    filled_quantity BIGINT,
    fill_price DECIMAL(12,4),
    charges_inr DECIMAL(14,4),
    CONSTRAINT execution_metrics_pkey PRIMARY KEY (id, created_at),
    CONSTRAINT ck_execution_metrics_filled CHECK (filled_quantity IS NULL OR filled_quantity >= 0),
    CONSTRAINT ck_execution_metrics_fill_price CHECK (fill_price IS NULL OR fill_price > 0),
    CONSTRAINT ck_execution_metrics_charges CHECK (charges_inr IS NULL OR charges_inr >= 0),
    CONSTRAINT ck_execution_metrics_latency
        CHECK (execution_latency_ms IS NULL OR execution_latency_ms >= 0),
    CONSTRAINT ck_execution_metrics_fill_rate
        CHECK (fill_rate IS NULL OR fill_rate BETWEEN 0 AND 100),
    CONSTRAINT ck_execution_metrics_quality
        CHECK (execution_quality_score IS NULL OR execution_quality_score BETWEEN 0 AND 1)
) PARTITION BY RANGE (created_at);

ALTER SEQUENCE execution_metrics_id_seq OWNED BY execution_metrics.id;

-- A row whose month has no partition yet lands here rather than failing; the roll-up job moves
-- such rows into their partition when it creates it.
CREATE TABLE execution_metrics_default PARTITION OF execution_metrics DEFAULT;

-- Monthly partitions in UTC, named execution_metrics_pYYYYMM. Creating one moves the rows the
-- default partition holds for its month (Postgres refuses the partition otherwise).
CREATE FUNCTION ensure_execution_partitions(p_from TIMESTAMPTZ, p_to TIMESTAMPTZ)
RETURNS INTEGER LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    month_start TIMESTAMPTZ := date_trunc('month', p_from, 'UTC');
    month_end TIMESTAMPTZ;
    part TEXT;
    created INTEGER := 0;
BEGIN
    WHILE month_start < p_to LOOP
        month_end := month_start + INTERVAL '1 month';
        part := 'execution_metrics_p' || to_char(month_start AT TIME ZONE 'UTC', 'YYYYMM');
        IF to_regclass(part) IS NULL THEN
            CREATE TEMP TABLE IF NOT EXISTS moving_metrics
                (LIKE execution_metrics) ON COMMIT DROP;
            WITH moved AS (
                DELETE FROM execution_metrics_default
                WHERE created_at >= month_start AND created_at < month_end RETURNING *)
            INSERT INTO moving_metrics SELECT * FROM moved;
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF execution_metrics FOR VALUES FROM (%L) TO (%L)',
                part, month_start, month_end);
            INSERT INTO execution_metrics SELECT * FROM moving_metrics;
            DELETE FROM moving_metrics;
            created := created + 1;
        END IF;
        month_start := month_end;
    END LOOP;
    RETURN created;
END;
$$;

-- Retention: partitions wholly before the cutoff are dropped (and old rows of the default
-- partition and old report keys deleted). Roll-ups live in their own table and are never
-- touched. The caller never passes a cutoff after the roll-up watermark.
CREATE FUNCTION drop_execution_partitions_before(p_cutoff TIMESTAMPTZ)
RETURNS INTEGER LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    part RECORD;
    dropped INTEGER := 0;
BEGIN
    FOR part IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'execution_metrics'::regclass
            AND c.relname ~ '^execution_metrics_p[0-9]{6}$'
            AND to_date(substr(c.relname, 20), 'YYYYMM')::timestamp AT TIME ZONE 'UTC'
                + INTERVAL '1 month' <= p_cutoff
    LOOP
        EXECUTE format('DROP TABLE %I', part.relname);
        dropped := dropped + 1;
    END LOOP;
    DELETE FROM execution_metrics_default WHERE created_at < p_cutoff;
    DELETE FROM execution_report_keys WHERE created_at < p_cutoff;
    RETURN dropped;
END;
$$;

-- Partitions for the moved rows' months and the next two, then the rows and their keys.
DO $$
BEGIN
    PERFORM ensure_execution_partitions(
        LEAST(now(),
            (SELECT min(created_at) AT TIME ZONE 'UTC' FROM execution_metrics_unpartitioned)),
        now() + INTERVAL '2 months');
END;
$$;

INSERT INTO execution_metrics (id, order_id, broker_id, symbol, execution_latency_ms,
    slippage_bps, price_improvement_bps, fill_rate, execution_quality_score, market_conditions,
    created_at, user_id, child_order_id, report_key, status, filled_quantity, fill_price,
    charges_inr)
SELECT id, order_id, broker_id, symbol, execution_latency_ms, slippage_bps,
    price_improvement_bps, fill_rate, execution_quality_score, market_conditions,
    COALESCE(created_at AT TIME ZONE 'UTC', now()), user_id, child_order_id, report_key, status,
    filled_quantity, fill_price, charges_inr
FROM execution_metrics_unpartitioned;

INSERT INTO execution_report_keys (report_key, created_at)
SELECT report_key, COALESCE(created_at AT TIME ZONE 'UTC', now())
FROM execution_metrics_unpartitioned WHERE report_key IS NOT NULL;

DROP TABLE execution_metrics_unpartitioned;

CREATE INDEX idx_execution_metrics_broker_symbol ON execution_metrics (broker_id, symbol);
CREATE INDEX idx_execution_metrics_created_at ON execution_metrics (created_at);
CREATE INDEX idx_execution_metrics_user_created ON execution_metrics (user_id, created_at);
CREATE INDEX idx_execution_metrics_order ON execution_metrics (order_id);

-- The live part of the analytics reads a trader's children created since the watermark.
CREATE INDEX idx_child_orders_user_created ON child_orders (user_id, created_at);

-- Roll-ups: one row per trader x broker x strategy x UTC hour (grain 'h'), UTC day ('d') or
-- UTC month ('m'); a year's query reads about 12 months, 30 days and 23 hours of rows.
-- broker_id '' holds the orders created in the bucket (an order is not a broker's). Sums and
-- counts merge by addition; latency percentiles merge through a sparse histogram over fixed
-- log-spaced buckets (latency_bucket below): bucket i >= 1 holds [1.05^(i-1), 1.05^i) ms.
CREATE TABLE execution_rollups (
    grain CHAR(1) NOT NULL CHECK (grain IN ('h', 'd', 'm')),
    bucket_start TIMESTAMPTZ NOT NULL,
    user_id VARCHAR(50) NOT NULL,
    broker_id VARCHAR(50) NOT NULL,
    strategy VARCHAR(50) NOT NULL,
    orders BIGINT NOT NULL,
    children BIGINT NOT NULL,
    ordered_quantity BIGINT NOT NULL,
    executions BIGINT NOT NULL,
    filled_quantity BIGINT NOT NULL,
    latency_count BIGINT NOT NULL,
    latency_sum NUMERIC NOT NULL,
    latency_buckets INTEGER[] NOT NULL,
    latency_counts BIGINT[] NOT NULL,
    slippage_count BIGINT NOT NULL,
    slippage_sum NUMERIC NOT NULL,
    improvement_count BIGINT NOT NULL,
    improvement_sum NUMERIC NOT NULL,
    charges_inr NUMERIC NOT NULL,
    rolled_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, grain, bucket_start, broker_id, strategy),
    CHECK (cardinality(latency_buckets) = cardinality(latency_counts))
);

CREATE INDEX idx_execution_rollups_bucket ON execution_rollups (grain, bucket_start);

-- How far the hourly roll-up has run: every hour before rolled_through is in execution_rollups.
CREATE TABLE execution_rollup_state (
    name VARCHAR(20) PRIMARY KEY,
    rolled_through TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE FUNCTION latency_bucket(ms BIGINT) RETURNS INTEGER
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN ms < 1 THEN 0 ELSE LEAST(1 + floor(ln(ms) / ln(1.05))::integer, 500) END
$$;

-- The facts of [p_from, p_to) per trader x broker x strategy x UTC hour, from the raw tables,
-- for every trader (p_user NULL: the roll-up) or one (the live part of a query). Executions
-- count by their own time, children and routed quantity by the child's creation, orders by the
-- order's. Dynamic SQL, so each call is planned with its own bounds and user.
CREATE FUNCTION execution_facts(p_from TIMESTAMPTZ, p_to TIMESTAMPTZ, p_user VARCHAR)
RETURNS TABLE (bucket_start TIMESTAMPTZ, user_id VARCHAR, broker_id VARCHAR, strategy VARCHAR,
    orders BIGINT, children BIGINT, ordered_quantity BIGINT, executions BIGINT,
    filled_quantity BIGINT, latency_count BIGINT, latency_sum NUMERIC, latency_buckets INTEGER[],
    latency_counts BIGINT[], slippage_count BIGINT, slippage_sum NUMERIC,
    improvement_count BIGINT, improvement_sum NUMERIC, charges_inr NUMERIC)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    only_user TEXT := CASE WHEN p_user IS NULL THEN '' ELSE ' AND %1$s.user_id = $3' END;
BEGIN
    RETURN QUERY EXECUTE format($q$
WITH e AS (
    SELECT date_trunc('hour', m.created_at, 'UTC') AS h, m.user_id AS u, m.broker_id AS b,
        COALESCE(d.routing_strategy, o.routing_objective, 'UNKNOWN')::varchar AS s,
        m.execution_latency_ms AS lat, m.slippage_bps, m.price_improvement_bps, m.charges_inr,
        m.filled_quantity
    FROM execution_metrics m
        LEFT JOIN orders o ON o.order_id = m.order_id
        LEFT JOIN order_routing_decisions d ON d.order_id = m.order_id
    WHERE m.created_at >= $1 AND m.created_at < $2 AND m.user_id IS NOT NULL %1$s
), hist AS (
    SELECT h, u, b, s, array_agg(k ORDER BY k) AS ks, array_agg(n ORDER BY k) AS ns
    FROM (SELECT h, u, b, s, latency_bucket(lat) AS k, count(*) AS n FROM e
          WHERE lat IS NOT NULL GROUP BY 1, 2, 3, 4, 5) per_bucket
    GROUP BY 1, 2, 3, 4
), facts AS (
    SELECT h, u, b, s, 0::bigint AS orders, 0::bigint AS children, 0::numeric AS ordered,
        count(*) AS executions, COALESCE(sum(filled_quantity), 0) AS filled,
        count(lat) AS lat_n, COALESCE(sum(lat), 0) AS lat_sum,
        count(slippage_bps) AS slip_n, COALESCE(sum(slippage_bps), 0) AS slip_sum,
        count(price_improvement_bps) AS pi_n, COALESCE(sum(price_improvement_bps), 0) AS pi_sum,
        COALESCE(sum(charges_inr), 0) AS charges
    FROM e GROUP BY 1, 2, 3, 4
    UNION ALL
    SELECT date_trunc('hour', c.created_at, 'UTC'), c.user_id, c.broker_id,
        COALESCE(d.routing_strategy, o.routing_objective, 'UNKNOWN')::varchar,
        count(DISTINCT c.order_id), count(*), sum(c.quantity), 0, 0, 0, 0, 0, 0, 0, 0, 0
    FROM child_orders c JOIN orders o ON o.order_id = c.order_id
        LEFT JOIN order_routing_decisions d ON d.order_id = c.order_id
    WHERE c.created_at >= $1 AND c.created_at < $2 %2$s
    GROUP BY 1, 2, 3, 4
    UNION ALL
    SELECT date_trunc('hour', o.created_at, 'UTC'), o.user_id, ''::varchar,
        COALESCE(d.routing_strategy, o.routing_objective, 'UNKNOWN')::varchar,
        count(*), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
    FROM orders o LEFT JOIN order_routing_decisions d ON d.order_id = o.order_id
    WHERE o.created_at >= $1 AND o.created_at < $2 %3$s
    GROUP BY 1, 2, 3, 4
)
SELECT f.h, f.u::varchar, f.b::varchar, f.s, sum(f.orders)::bigint, sum(f.children)::bigint,
    sum(f.ordered)::bigint, sum(f.executions)::bigint, sum(f.filled)::bigint,
    sum(f.lat_n)::bigint, sum(f.lat_sum)::numeric,
    COALESCE(min(hist.ks), '{}'::integer[]), COALESCE(min(hist.ns), '{}'::bigint[]),
    sum(f.slip_n)::bigint, sum(f.slip_sum)::numeric, sum(f.pi_n)::bigint,
    sum(f.pi_sum)::numeric, sum(f.charges)::numeric
FROM facts f LEFT JOIN hist ON hist.h = f.h AND hist.u = f.u AND hist.b = f.b AND hist.s = f.s
GROUP BY f.h, f.u, f.b, f.s
$q$, format(only_user, 'm'), format(only_user, 'c'), format(only_user, 'o'))
    USING p_from, p_to, p_user;
END;
$$;

-- Merge the rows of grain p_source into grain p_target (unit 'day' or 'month') for every
-- p_target bucket that [p_from, p_to) touches, replacing what was there.
CREATE FUNCTION merge_execution_rollups(
    p_source CHAR, p_target CHAR, p_unit TEXT, p_from TIMESTAMPTZ, p_to TIMESTAMPTZ)
RETURNS VOID LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    lo TIMESTAMPTZ := date_trunc(p_unit, p_from, 'UTC');
    hi TIMESTAMPTZ := date_trunc(p_unit, p_to - INTERVAL '1 microsecond', 'UTC')
        + ('1 ' || p_unit)::interval;
BEGIN
    DELETE FROM execution_rollups WHERE grain = p_target AND bucket_start >= lo AND bucket_start < hi;
    INSERT INTO execution_rollups (grain, bucket_start, user_id, broker_id, strategy, orders,
        children, ordered_quantity, executions, filled_quantity, latency_count, latency_sum,
        latency_buckets, latency_counts, slippage_count, slippage_sum, improvement_count,
        improvement_sum, charges_inr)
    SELECT p_target, s.bucket, s.user_id, s.broker_id, s.strategy, s.orders, s.children,
        s.ordered_quantity, s.executions, s.filled_quantity, s.latency_count, s.latency_sum,
        COALESCE(h.ks, '{}'), COALESCE(h.ns, '{}'), s.slippage_count, s.slippage_sum,
        s.improvement_count, s.improvement_sum, s.charges_inr
    FROM (
        SELECT date_trunc(p_unit, r.bucket_start, 'UTC') AS bucket, r.user_id, r.broker_id,
            r.strategy, sum(r.orders) AS orders, sum(r.children) AS children,
            sum(r.ordered_quantity) AS ordered_quantity, sum(r.executions) AS executions,
            sum(r.filled_quantity) AS filled_quantity, sum(r.latency_count) AS latency_count,
            sum(r.latency_sum) AS latency_sum, sum(r.slippage_count) AS slippage_count,
            sum(r.slippage_sum) AS slippage_sum, sum(r.improvement_count) AS improvement_count,
            sum(r.improvement_sum) AS improvement_sum, sum(r.charges_inr) AS charges_inr
        FROM execution_rollups r
        WHERE r.grain = p_source AND r.bucket_start >= lo AND r.bucket_start < hi
        GROUP BY 1, 2, 3, 4) s
    LEFT JOIN (
        SELECT bucket, user_id, broker_id, strategy, array_agg(k ORDER BY k) AS ks,
            array_agg(n ORDER BY k) AS ns
        FROM (SELECT date_trunc(p_unit, r.bucket_start, 'UTC') AS bucket, r.user_id,
                  r.broker_id, r.strategy, u.k, sum(u.n)::bigint AS n
              FROM execution_rollups r, unnest(r.latency_buckets, r.latency_counts) AS u(k, n)
              WHERE r.grain = p_source AND r.bucket_start >= lo AND r.bucket_start < hi
              GROUP BY 1, 2, 3, 4, 5) per_bucket
        GROUP BY 1, 2, 3, 4) h
    USING (bucket, user_id, broker_id, strategy);
END;
$$;

-- Roll the hours of [p_from, p_to) again from the raw rows (replacing what was there: running
-- it twice gives the same rows), re-merge the UTC days and months they touch, and advance the
-- watermark when the range starts at or before it (a backfill further back leaves it alone).
CREATE FUNCTION rollup_execution_hours(p_from TIMESTAMPTZ, p_to TIMESTAMPTZ)
RETURNS INTEGER LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    hourly INTEGER;
BEGIN
    IF p_from >= p_to THEN
        RETURN 0;
    END IF;
    DELETE FROM execution_rollups
    WHERE grain = 'h' AND bucket_start >= p_from AND bucket_start < p_to;
    INSERT INTO execution_rollups (grain, bucket_start, user_id, broker_id, strategy, orders,
        children, ordered_quantity, executions, filled_quantity, latency_count, latency_sum,
        latency_buckets, latency_counts, slippage_count, slippage_sum, improvement_count,
        improvement_sum, charges_inr)
    SELECT 'h', f.* FROM execution_facts(p_from, p_to, NULL) f;
    GET DIAGNOSTICS hourly = ROW_COUNT;
    PERFORM merge_execution_rollups('h', 'd', 'day', p_from, p_to);
    PERFORM merge_execution_rollups('d', 'm', 'month', p_from, p_to);
    INSERT INTO execution_rollup_state AS st (name, rolled_through) VALUES ('hourly', p_to)
    ON CONFLICT (name) DO UPDATE SET rolled_through = p_to, updated_at = now()
    WHERE st.rolled_through >= p_from AND st.rolled_through < p_to;
    RETURN hourly;
END;
$$;

REVOKE EXECUTE ON FUNCTION merge_execution_rollups(CHAR, CHAR, TEXT, TIMESTAMPTZ, TIMESTAMPTZ)
    FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION ensure_execution_partitions(TIMESTAMPTZ, TIMESTAMPTZ) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION drop_execution_partitions_before(TIMESTAMPTZ) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION rollup_execution_hours(TIMESTAMPTZ, TIMESTAMPTZ) FROM PUBLIC;
