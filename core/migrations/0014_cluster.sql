-- On a RabbitMQ cluster, retained messages stay on the node that took them and a last will is
-- lost with its node, so a bridge's online status cannot be a retained "online" / will
-- "offline" pair there. Instead each bridge sends a heartbeat on its status topic while it is
-- connected, and ingest records when it last heard one: online means heard recently.
ALTER TABLE bridges ADD COLUMN last_seen_at timestamptz;
