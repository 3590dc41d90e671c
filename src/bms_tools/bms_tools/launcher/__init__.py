"""``bms launch``: runs ROS 2 XML launch files without launch_ros (docs/launch.md)."""
