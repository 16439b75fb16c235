-- Who downloaded which report or export, when: the dashboard records every
-- download here and the admin page shows it. Staff names only; nothing
-- about shoppers.
CREATE TABLE IF NOT EXISTS {herd}.downloads (
    at DateTime, user String, role String, what String
) ENGINE = MergeTree() ORDER BY (at, user);
