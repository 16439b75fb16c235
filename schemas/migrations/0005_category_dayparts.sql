-- Category views by part of the UTC day (night 0–6, morning 6–12, afternoon
-- 12–18, evening 18–24), published with the daily bucket: hour-by-hour cells
-- of one category are too small to publish for most shops, four day-parts are
-- not. A table of its own, with its own ε.
CREATE TABLE IF NOT EXISTS {herd}.category_dayparts (
    site String, grain Enum8('hour' = 1, 'day' = 2), bucket DateTime,
    category String, daypart String,
    visitors UInt64, views UInt64
) ENGINE = MergeTree() PARTITION BY toYYYYMM(bucket) ORDER BY (site, bucket, grain, category, daypart);
