"""Cloud bridge (ROS -> MQTT 5 with an on-disk outbox), PostgreSQL sink, local test servers."""
