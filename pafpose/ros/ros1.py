"""The ROS 1 node (rospy): camera topic in, people (JSON in std_msgs/String) and an annotated
image out. Everything that is not rospy lives in `pafpose.ros.core`.

Debian and Ubuntu install rospy (python3-rospy) into the system Python's dist-packages, which a
virtual environment does not see. `import_rospy` then appends that folder at the END of
sys.path, so this environment's own packages (numpy, OpenCV, Pillow, ...) keep precedence;
PYTHONPATH would put the system's older copies first.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from ..draw import annotate
from ..errors import MissingDependencyError, RosError
from ..track import Tracker
from ..video.pipeline import FrameResult, iter_poses
from .core import MessageError, NodeSettings, Stamp, StampedFrame, TopicSource, people_json

#: Where Debian / Ubuntu's python3-rospy and the message packages are installed.
SYSTEM_PACKAGES = Path("/usr/lib/python3/dist-packages")
#: Bytes rospy reads at once: larger than a frame, so queue_size=1 keeps only the newest one.
BUFF_SIZE = 1 << 25
_INSTALL = ("on Debian / Ubuntu: apt-get install python3-rospy python3-sensor-msgs "
            "python3-std-msgs ros-core; elsewhere source a ROS 1 setup.bash")


def import_rospy() -> ModuleType:
    """rospy, from this Python's path or else from the system's dist-packages (appended last);
    MissingDependencyError says how to install it."""
    try:
        import rospy
    except ImportError:
        if not (SYSTEM_PACKAGES / "rospy").is_dir():
            raise MissingDependencyError(f"rospy (ROS 1) is not installed ({_INSTALL})") from None
        if str(SYSTEM_PACKAGES) not in sys.path:
            sys.path.append(str(SYSTEM_PACKAGES))
        try:
            import rospy
        except ImportError as exc:
            raise MissingDependencyError(f"rospy in {SYSTEM_PACKAGES} cannot be imported by "
                                         f"this Python {sys.version.split()[0]}: {exc}") from None
    return rospy


def _stamp(msg: Any) -> Stamp:
    header = msg.header
    return int(header.stamp.secs), int(header.stamp.nsecs), str(header.frame_id)


@dataclass(frozen=True)
class NodeSummary:
    """What a node run did: frames answered, messages received, stale and bad ones skipped."""

    answered: int
    received: int
    dropped: int
    bad: int

    def describe(self) -> str:
        """One line for the log."""
        return (f"{self.answered} frames answered of {self.received} received "
                f"({self.dropped} stale dropped, {self.bad} unusable)")


def run_node(settings: NodeSettings, estimator_options: dict[str, Any] | None = None,
             argv: Sequence[str] = (), name: str = "pafpose") -> NodeSummary:
    """Run the node until ROS shuts it down (or Ctrl-C). `settings` are the defaults of its ROS
    parameters; `estimator_options` go to PoseEstimator; `argv` holds ROS remappings
    (`image:=/camera/image_raw`, `_preset:=fast`, `__name:=pose`)."""
    rospy = import_rospy()
    import rosgraph

    _check_master(rosgraph, name)
    rospy.init_node(name, argv=[sys.argv[0], *argv], disable_signals=True)
    try:  # from here on, the node leaves the master when it ends, whatever the reason
        settings = settings.with_params(lambda key, default: rospy.get_param(f"~{key}", default))
        return _serve(rospy, settings, estimator_options or {})
    finally:
        rospy.signal_shutdown("pafpose node stopped")


def _serve(rospy: ModuleType, settings: NodeSettings,
           estimator_options: dict[str, Any]) -> NodeSummary:
    """Load the model, subscribe, and answer frames until ROS shuts down (or Ctrl-C)."""
    from sensor_msgs.msg import CompressedImage, Image
    from std_msgs.msg import Header, String

    from ..estimator import PoseEstimator

    estimator = PoseEstimator(settings.model, preset=settings.preset, backend=settings.backend,
                              precision=settings.precision, progress=False, **estimator_options)
    topic = rospy.resolve_name(settings.topic)
    people_pub = rospy.Publisher("~people", String, queue_size=10)
    image_pub = rospy.Publisher("~annotated", Image, queue_size=1)

    def on_bad(msg: Any, exc: MessageError) -> None:
        rospy.logwarn_throttle_identical(
            10.0, f"pafpose: skipped a frame of {topic} (frame_id {msg.header.frame_id!r}): {exc}")

    source = TopicSource(topic, _stamp, on_bad=on_bad, stopped=rospy.is_shutdown,
                         rate=settings.rate, max_pixels=estimator.max_pixels)
    kind = CompressedImage if settings.compressed else Image
    subscriber = rospy.Subscriber(topic, kind, source.put, queue_size=1, buff_size=BUFF_SIZE,
                                  tcp_nodelay=True)
    rospy.loginfo(f"pafpose: reading {topic} ({kind._type}); publishing "
                  f"{people_pub.resolved_name} (std_msgs/String, JSON) and "
                  f"{image_pub.resolved_name} (sensor_msgs/Image, bgr8); {estimator.preset.name} "
                  f"preset, {estimator.backend} {estimator.precision}, tracking "
                  f"{'on' if settings.track else 'off'}")
    tracker = Tracker(smooth=settings.smooth) if settings.track or settings.smooth else None
    answered = 0
    try:
        for result in iter_poses(source, estimator, tracker=tracker):
            people_pub.publish(String(data=people_json(result)))
            if image_pub.get_num_connections() > 0:
                image_pub.publish(_annotated(result, Image, Header, rospy.Time))
            answered += 1
    finally:
        subscriber.unregister()
        summary = NodeSummary(answered, source.received, source.dropped, source.bad)
        rospy.loginfo(f"pafpose: {summary.describe()}")
    return summary


def _check_master(rosgraph: ModuleType, name: str, timeout: float = 5.0) -> None:
    """RosError unless a ROS master answers at ROS_MASTER_URI within `timeout` seconds."""
    uri = rosgraph.get_master_uri()
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)  # an unreachable host would block for minutes
    try:
        online = rosgraph.Master(f"/{name}").is_online()
    except ValueError:
        raise RosError(f"ROS_MASTER_URI {uri!r} is not a master's URL (http://HOST:PORT)") from None
    finally:
        socket.setdefaulttimeout(previous)
    if not online:
        raise RosError(f"no ROS master at {uri}: start roscore, or set ROS_MASTER_URI")


def _annotated(result: FrameResult, image_type: type, header_type: type, time_type: type) -> Any:
    """The annotated frame as a sensor_msgs/Image (bgr8) with the input's stamp and frame id."""
    frame = result.frame
    assert isinstance(frame, StampedFrame)
    drawn = annotate(frame.image, result.people)
    height, width = drawn.shape[:2]
    header = header_type(stamp=time_type(*frame.stamp), frame_id=frame.frame_id)
    return image_type(header=header, height=height, width=width, encoding="bgr8",
                      is_bigendian=0, step=width * 3, data=drawn.tobytes())
