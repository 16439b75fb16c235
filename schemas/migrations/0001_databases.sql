-- herd's two databases (docs/ARCHITECTURE.md). {raw} holds short-lived pseudonymous
-- events that only ingest and the rollup job may touch; {herd} holds what is
-- published, and is all the dashboard's ClickHouse user can read.
CREATE DATABASE IF NOT EXISTS {raw};
CREATE DATABASE IF NOT EXISTS {herd};
