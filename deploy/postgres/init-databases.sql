-- One database per service (the same four that deploy/local/stack.sh creates). The postgres image
-- runs this once, as POSTGRES_USER (pizzeria), when it initialises an empty data directory; each
-- service's `<service> migrate` then creates its tables.
CREATE DATABASE orders;
CREATE DATABASE kitchen;
CREATE DATABASE notifications;
CREATE DATABASE analytics;
