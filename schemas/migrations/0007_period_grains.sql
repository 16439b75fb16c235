-- Period grains and "other" rows (docs/privacy.md).
-- Rollups publish ISO-week and calendar-month cells besides daily ones; the
-- hourly grain stays in the enum only for rows published before it was retired.
ALTER TABLE {herd}.kpis MODIFY COLUMN grain Enum8('hour' = 1, 'day' = 2, 'week' = 3, 'month' = 4);
ALTER TABLE {herd}.products MODIFY COLUMN grain Enum8('hour' = 1, 'day' = 2, 'week' = 3, 'month' = 4);
ALTER TABLE {herd}.categories MODIFY COLUMN grain Enum8('hour' = 1, 'day' = 2, 'week' = 3, 'month' = 4);
ALTER TABLE {herd}.category_dayparts MODIFY COLUMN grain Enum8('hour' = 1, 'day' = 2, 'week' = 3, 'month' = 4);
ALTER TABLE {herd}.slots MODIFY COLUMN grain Enum8('hour' = 1, 'day' = 2, 'week' = 3, 'month' = 4);
ALTER TABLE {herd}.positions MODIFY COLUMN grain Enum8('hour' = 1, 'day' = 2, 'week' = 3, 'month' = 4);
ALTER TABLE {herd}.funnels MODIFY COLUMN grain Enum8('hour' = 1, 'day' = 2, 'week' = 3, 'month' = 4);
ALTER TABLE {herd}.traffic MODIFY COLUMN grain Enum8('hour' = 1, 'day' = 2, 'week' = 3, 'month' = 4);
ALTER TABLE {herd}.habits MODIFY COLUMN grain Enum8('hour' = 1, 'day' = 2, 'week' = 3, 'month' = 4);
ALTER TABLE {herd}.searches MODIFY COLUMN grain Enum8('hour' = 1, 'day' = 2, 'week' = 3, 'month' = 4);
ALTER TABLE {herd}.rollup_runs MODIFY COLUMN grain Enum8('hour' = 1, 'day' = 2, 'week' = 3, 'month' = 4);
ALTER TABLE {raw}.rollup_counts MODIFY COLUMN grain Enum8('hour' = 1, 'day' = 2, 'week' = 3, 'month' = 4);
ALTER TABLE {raw}.rollup_late MODIFY COLUMN grain Enum8('hour' = 1, 'day' = 2, 'week' = 3, 'month' = 4);

-- other = 1: the one cell per bucket and parent that aggregates every key
-- below the threshold (its key columns other than the parent are empty).
-- kpis has no key, so its other is always 0; it has the column so that every
-- rollup is filtered the same way.
ALTER TABLE {herd}.kpis ADD COLUMN IF NOT EXISTS other UInt8 DEFAULT 0;
ALTER TABLE {herd}.products ADD COLUMN IF NOT EXISTS other UInt8 DEFAULT 0;
ALTER TABLE {herd}.categories ADD COLUMN IF NOT EXISTS other UInt8 DEFAULT 0;
ALTER TABLE {herd}.category_dayparts ADD COLUMN IF NOT EXISTS other UInt8 DEFAULT 0;
ALTER TABLE {herd}.slots ADD COLUMN IF NOT EXISTS other UInt8 DEFAULT 0;
ALTER TABLE {herd}.positions ADD COLUMN IF NOT EXISTS other UInt8 DEFAULT 0;
ALTER TABLE {herd}.funnels ADD COLUMN IF NOT EXISTS other UInt8 DEFAULT 0;
ALTER TABLE {herd}.traffic ADD COLUMN IF NOT EXISTS other UInt8 DEFAULT 0;
ALTER TABLE {herd}.habits ADD COLUMN IF NOT EXISTS other UInt8 DEFAULT 0;
ALTER TABLE {herd}.searches ADD COLUMN IF NOT EXISTS other UInt8 DEFAULT 0;

-- The release's share of the per-visitor-day budget, in zCDP ρ.
ALTER TABLE {herd}.rollup_runs ADD COLUMN IF NOT EXISTS rho Float64 DEFAULT 0;

-- Per-day true cell sums, kept only to build week and month cells after the
-- raw events are gone: one row per table, day and cell, holding the cell's
-- bounded sums over visitor-days and the number of visitor-days in it. No
-- pseudonym, no per-visitor row; readable by the publisher's user only (the
-- reader is refused {raw}); dropped once the week and month of its day are
-- published, and never kept past 40 days.
CREATE TABLE IF NOT EXISTS {raw}.cell_partials (
    site String, table_name String, day Date,
    cell String, true_visitor_days UInt64, true_sums Array(Float64)
) ENGINE = MergeTree() PARTITION BY day ORDER BY (site, table_name, day, cell);

-- Retention records the partial days it drops too.
ALTER TABLE {raw}.retention_runs MODIFY COLUMN kind Enum8('raw_partition' = 1, 'spool_file' = 2, 'partial_day' = 3);

-- The shop's product catalog (public: what the shop lists), loaded from the
-- file or feed the shop provides: the key space of the products rollup.
-- Product ids not in it are published as 'unlisted'. A load replaces the
-- site's catalog (the newest `loaded` wins; older versions are deleted).
CREATE TABLE IF NOT EXISTS {herd}.catalog (
    site String, product_id String, name String, category String, price Float64, loaded DateTime
) ENGINE = MergeTree() ORDER BY (site, product_id);
