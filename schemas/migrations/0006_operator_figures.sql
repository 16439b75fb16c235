-- Exact operational figures move where the dashboard's user cannot read
-- them ({raw}: the reader is refused it by grant). How many raw events a
-- release covered, how many cells it suppressed, how many events came late
-- and how many rows retention dropped are exact counts: next to the noisy
-- published cells, one shopper's arrival moves them by one. Operators (herd
-- audit, herd sql) read them; dashboards and reports do not.
CREATE TABLE IF NOT EXISTS {raw}.rollup_counts (
    table_name String, site String, grain Enum8('hour' = 1, 'day' = 2), bucket DateTime,
    cells_suppressed UInt32, raw_events UInt64, recorded DateTime
) ENGINE = MergeTree() PARTITION BY toYYYYMM(bucket) ORDER BY (table_name, site, grain, bucket);

CREATE TABLE IF NOT EXISTS {raw}.rollup_late (
    site String, grain Enum8('hour' = 1, 'day' = 2), bucket DateTime,
    published_events UInt64, late_events UInt64, checked DateTime
) ENGINE = ReplacingMergeTree(checked) ORDER BY (site, bucket, grain);

CREATE TABLE IF NOT EXISTS {raw}.retention_runs (
    ran DateTime, kind Enum8('raw_partition' = 1, 'spool_file' = 2),
    item String, rows UInt64, reason String
) ENGINE = MergeTree() ORDER BY (ran, kind, item);

ALTER TABLE {herd}.rollup_runs DROP COLUMN IF EXISTS cells_suppressed;
ALTER TABLE {herd}.rollup_runs DROP COLUMN IF EXISTS raw_events;
DROP TABLE IF EXISTS {herd}.rollup_late;
DROP TABLE IF EXISTS {herd}.retention_runs;

-- No rollup reads the hashed account id: herd keeps none.
ALTER TABLE {raw}.events DROP COLUMN IF EXISTS user_hash;
