"""ROS: a node that reads a camera topic and publishes the people of each frame.

    core.py   ROS-independent: image messages -> BGR, a topic as a live Source (newest frame
              only), the node's parameters, the people message (JSON)
    ros1.py   the ROS 1 node (rospy): subscribers, publishers, parameters, log lines

`pafpose ros` or `python -m pafpose.ros` runs the ROS 1 node. Importing this package does not
import rospy.
"""

from .core import (
    ENCODINGS,
    MessageError,
    NodeSettings,
    StampedFrame,
    TopicSource,
    message_to_bgr,
    people_json,
    people_record,
)

__all__ = ["ENCODINGS", "MessageError", "NodeSettings", "StampedFrame", "TopicSource",
           "message_to_bgr", "people_json", "people_record"]
