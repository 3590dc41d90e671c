"""``bms conformance``: checks a node against the numbered requirements of its kind
(docs/standard/). Passive checks watch a running node; intrusive checks drive the lifecycle of a
node the kit starts itself, in a ROS domain of its own."""
