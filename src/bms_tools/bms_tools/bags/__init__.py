"""rosbag2 recording, replay and offline analysis for the BMS, built on the ``rosbags`` library.

``rosbag2_py`` is not installable here (docs/bags.md), so the bags are written with ``rosbags``
in the standard rosbag2 layout (metadata.yaml version 9, MCAP or sqlite3): any rosbag2 reader,
``ros2 bag`` included, opens them.
"""
