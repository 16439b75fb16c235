-- Published rollups (docs/privacy.md): everything the dashboard and reports read.
-- Every row is one cell of one closed bucket (grain hour or day) of one site,
-- selected and noised with differential privacy by the rollup job, which
-- inserts a bucket's cells in one block so a bucket is published whole or not
-- at all. Only noised values are stored; true counts exist nowhere.
-- The visitors column is the noised number of distinct visitor-days.
CREATE TABLE IF NOT EXISTS {herd}.kpis (
    site String, grain Enum8('hour' = 1, 'day' = 2), bucket DateTime,
    visitors UInt64, sessions UInt64, pageviews UInt64, orders UInt64, buyers UInt64, revenue Float64
) ENGINE = MergeTree() PARTITION BY toYYYYMM(bucket) ORDER BY (site, bucket, grain);

CREATE TABLE IF NOT EXISTS {herd}.products (
    site String, grain Enum8('hour' = 1, 'day' = 2), bucket DateTime,
    product_id String, category String,
    visitors UInt64, views UInt64, clicks UInt64, adds UInt64, purchases UInt64, revenue Float64
) ENGINE = MergeTree() PARTITION BY toYYYYMM(bucket) ORDER BY (site, bucket, grain, product_id, category);

CREATE TABLE IF NOT EXISTS {herd}.categories (
    site String, grain Enum8('hour' = 1, 'day' = 2), bucket DateTime,
    category String, device String,
    visitors UInt64, views UInt64, clicks UInt64, adds UInt64
) ENGINE = MergeTree() PARTITION BY toYYYYMM(bucket) ORDER BY (site, bucket, grain, category, device);

CREATE TABLE IF NOT EXISTS {herd}.slots (
    site String, grain Enum8('hour' = 1, 'day' = 2), bucket DateTime,
    page_type String, slot String, variant String,
    visitors UInt64, impressions UInt64, clicks UInt64
) ENGINE = MergeTree() PARTITION BY toYYYYMM(bucket) ORDER BY (site, bucket, grain, page_type, slot, variant);

CREATE TABLE IF NOT EXISTS {herd}.positions (
    site String, grain Enum8('hour' = 1, 'day' = 2), bucket DateTime,
    list_kind String, position UInt16,
    visitors UInt64, impressions UInt64, clicks UInt64
) ENGINE = MergeTree() PARTITION BY toYYYYMM(bucket) ORDER BY (site, bucket, grain, list_kind, position);

CREATE TABLE IF NOT EXISTS {herd}.funnels (
    site String, grain Enum8('hour' = 1, 'day' = 2), bucket DateTime,
    funnel String, step UInt8, device String,
    visitors UInt64
) ENGINE = MergeTree() PARTITION BY toYYYYMM(bucket) ORDER BY (site, bucket, grain, funnel, step, device);

CREATE TABLE IF NOT EXISTS {herd}.traffic (
    site String, grain Enum8('hour' = 1, 'day' = 2), bucket DateTime,
    dimension String, value String,
    visitors UInt64, pageviews UInt64, sessions UInt64, bounces UInt64
) ENGINE = MergeTree() PARTITION BY toYYYYMM(bucket) ORDER BY (site, bucket, grain, dimension, value);

CREATE TABLE IF NOT EXISTS {herd}.habits (
    site String, grain Enum8('hour' = 1, 'day' = 2), bucket DateTime,
    weekday UInt8, hour UInt8, device String,
    visitors UInt64, pageviews UInt64
) ENGINE = MergeTree() PARTITION BY toYYYYMM(bucket) ORDER BY (site, bucket, grain, weekday, hour, device);

CREATE TABLE IF NOT EXISTS {herd}.searches (
    site String, grain Enum8('hour' = 1, 'day' = 2), bucket DateTime,
    term String,
    visitors UInt64, searches UInt64, zero_results UInt64
) ENGINE = MergeTree() PARTITION BY toYYYYMM(bucket) ORDER BY (site, bucket, grain, term);

-- The audit trail, per table and bucket: a 'releasing' row written after the
-- noise is drawn and before the cells are inserted, then 'published' (or
-- 'failed'). A bucket counts as published with a 'published' row, or with a
-- 'releasing' row of zero cells (an empty release is a result too); one whose
-- 'releasing' row promised cells that never landed was never visible, and is
-- computed again.
-- raw_events is the number of distinct raw events the bucket covered when it
-- was published; rollup_late records how many arrived after.
-- params is JSON: k, the contribution bound, caps and ε of every mechanism.
CREATE TABLE IF NOT EXISTS {herd}.rollup_runs (
    table_name String, site String, grain Enum8('hour' = 1, 'day' = 2), bucket DateTime,
    cells_published UInt32, cells_suppressed UInt32,
    epsilon Float64, delta Float64, params String,
    raw_events UInt64,
    started DateTime, finished DateTime, error String,
    state Enum8('releasing' = 1, 'published' = 2, 'failed' = 3)
) ENGINE = MergeTree() PARTITION BY toYYYYMM(bucket) ORDER BY (table_name, site, grain, bucket);

CREATE TABLE IF NOT EXISTS {herd}.rollup_late (
    site String, grain Enum8('hour' = 1, 'day' = 2), bucket DateTime,
    published_events UInt64, late_events UInt64, checked DateTime
) ENGINE = ReplacingMergeTree(checked) ORDER BY (site, bucket, grain);

-- What the retention job removed, and why: raw hour partitions and spool files.
CREATE TABLE IF NOT EXISTS {herd}.retention_runs (
    ran DateTime, kind Enum8('raw_partition' = 1, 'spool_file' = 2),
    item String, rows UInt64, reason String
) ENGINE = MergeTree() ORDER BY (ran, kind, item);
