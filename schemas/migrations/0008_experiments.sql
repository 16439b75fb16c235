-- Layout experiments: per variant, the visitor-days that saw it (the first
-- variant of each), how many of them bought and their revenue; week and
-- month cells, an "other" row never (variants are keys of their own).
CREATE TABLE IF NOT EXISTS {herd}.experiments (
    site String, grain Enum8('hour' = 1, 'day' = 2, 'week' = 3, 'month' = 4), bucket DateTime,
    variant String,
    visitors UInt64, buyers UInt64, revenue Float64,
    other UInt8 DEFAULT 0
) ENGINE = MergeTree() PARTITION BY toYYYYMM(bucket) ORDER BY (site, bucket, grain, variant);
