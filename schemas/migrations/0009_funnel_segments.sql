-- The funnels by segment: the layout variant a visitor-day saw first
-- (segment_kind 'variant') and its traffic source by the first referrer
-- (segment_kind 'source': direct, search, referral). Week and month cells.
CREATE TABLE IF NOT EXISTS {herd}.funnel_segments (
    site String, grain Enum8('hour' = 1, 'day' = 2, 'week' = 3, 'month' = 4), bucket DateTime,
    funnel String, step UInt8, segment_kind String, segment String,
    visitors UInt64,
    other UInt8 DEFAULT 0
) ENGINE = MergeTree() PARTITION BY toYYYYMM(bucket) ORDER BY (site, bucket, grain, funnel, segment_kind, segment, step);
