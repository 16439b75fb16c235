-- Pseudonymous events as ingest writes them, after desensitization: no IP,
-- user agent, account id, email or full URL is ever a column here.
-- Partitioned by hour so the retention job can drop whole hours
-- (18.16 has no TTL). Ordered by visitor so per-visitor-day rollups
-- (windowFunnel, LIMIT n BY visitor) read neighbouring rows.
-- ReplacingMergeTree on a key that ends in event_id: a spool replay cut
-- short, or a retried Segment message, may insert an event twice; merges
-- fold such copies and rollups count distinct event ids meanwhile.
CREATE TABLE IF NOT EXISTS {raw}.events (
    event_id         UUID,
    site             String,
    received         DateTime,
    seq              UInt16,
    type             Enum8('pageview' = 1, 'product_list_view' = 2, 'product_view' = 3, 'product_click' = 4, 'add_to_cart' = 5, 'remove_from_cart' = 6, 'checkout_step' = 7, 'purchase' = 8, 'search' = 9, 'slot_impression' = 10),
    visitor          UInt64,
    session          UInt64,
    user_hash        UInt64,
    path             String,
    page_type        String,
    utm_source       String,
    utm_medium       String,
    utm_campaign     String,
    referrer_host    String,
    browser          String,
    browser_major    UInt16,
    os               String,
    device           Enum8('desktop' = 1, 'mobile' = 2, 'tablet' = 3, 'other' = 4),
    country          FixedString(2),
    product_id       String,
    product_category String,
    product_price    Decimal(18, 2),
    position         UInt16,
    list             String,
    slot             String,
    variant          String,
    step             UInt8,
    order_value      Decimal(18, 2),
    currency         FixedString(3),
    items            UInt16,
    products         Array(String),
    search_term      String,
    search_results   Int32,
    imported         UInt8
) ENGINE = ReplacingMergeTree()
PARTITION BY toStartOfHour(received)
ORDER BY (site, visitor, received, event_id);
