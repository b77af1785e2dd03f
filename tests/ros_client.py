"""The client side of tests/test_ros.py, run as its own process (rospy stays out of pytest's).

    python tests/ros_client.py VIDEO FRAMES

With ROS_MASTER_URI set, it publishes frames of VIDEO to the nodes the test started (`/pose`
reading /cam/image, `/pose_jpeg` reading /cam/image/compressed) and prints what came back as
one JSON document: replies to FRAMES frames sent one at a time, annotated images, log lines
for bad frames, a JPEG frame, and a burst of frames sent at once.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from pafpose.ros.ros1 import import_rospy

rospy = import_rospy()
from rosgraph_msgs.msg import Log  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from std_msgs.msg import Header, String  # noqa: E402

BASE = 1_700_000_000  # frame k is stamped BASE + k / 10 s (+ k ns, all distinct): 10 fps


class Inbox:
    """Messages of a topic, collected by its subscriber's thread."""

    def __init__(self, topic: str, kind: type, convert: Callable[[Any], Any]) -> None:
        self.items: list[Any] = []
        self.cond = threading.Condition()
        self.convert = convert
        self.sub = rospy.Subscriber(topic, kind, self._put, queue_size=100)

    def _put(self, msg: Any) -> None:
        with self.cond:
            self.items.append(self.convert(msg))
            self.cond.notify_all()

    def wait(self, found: Callable[[Any], bool], timeout: float) -> Any:
        """The first item for which `found` is true, waiting up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                hit = next((m for m in self.items if found(m)), None)
                if hit is not None or time.monotonic() > deadline:
                    return hit
                self.cond.wait(0.1)


def stamp(k: int) -> tuple[int, int]:
    return BASE + k // 10, k % 10 * 100_000_000 + k


def header(k: int) -> Header:
    return Header(stamp=rospy.Time(*stamp(k)), frame_id=f"cam{k}")


def raw(image: np.ndarray, k: int, encoding: str = "bgr8", cut: int = 0) -> Image:
    h, w = image.shape[:2]
    data = image.tobytes()
    return Image(header=header(k), height=h, width=w, encoding=encoding, is_bigendian=0,
                 step=w * 3, data=data[:len(data) - cut])


def stamp_of(record: dict) -> tuple[int, int]:
    return record["stamp"]["secs"], record["stamp"]["nsecs"]


def wait_connected(*ends: Any, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not all(e.get_num_connections() > 0 for e in ends):
        if time.monotonic() > deadline:
            raise SystemExit("ros_client: the nodes did not connect in time")
        time.sleep(0.1)


def main() -> None:
    video, count = sys.argv[1], int(sys.argv[2])
    cap = cv2.VideoCapture(video)
    frames = [cap.read()[1] for _ in range(count + 14)]
    rospy.init_node("ros_client", anonymous=True, disable_signals=True)
    image_pub = rospy.Publisher("/cam/image", Image, queue_size=100)
    jpeg_pub = rospy.Publisher("/cam/image/compressed", CompressedImage, queue_size=10)
    people = Inbox("/pose/people", String, lambda m: json.loads(m.data))
    jpeg_people = Inbox("/pose_jpeg/people", String, lambda m: json.loads(m.data))
    annotated = Inbox("/pose/annotated", Image, lambda m: {
        "stamp": [m.header.stamp.secs, m.header.stamp.nsecs], "frame_id": m.header.frame_id,
        "encoding": m.encoding, "size": [m.width, m.height],
        "drawn": int(np.count_nonzero(np.frombuffer(m.data, np.uint8).reshape(
            m.height, m.width, 3) != frames[int(m.header.frame_id[3:])]))})
    logs = Inbox("/rosout", Log, lambda m: {"name": m.name, "level": m.level, "msg": m.msg})
    wait_connected(image_pub, jpeg_pub, people.sub, jpeg_people.sub, annotated.sub)
    out: dict[str, Any] = {"replies": [], "bad": []}

    for k in range(count):  # one frame at a time: each is answered
        image_pub.publish(raw(frames[k], k))
        out["replies"].append(people.wait(lambda r, k=k: stamp_of(r) == stamp(k), 60.0))

    k = count  # bad frames: a log line each, and the next good frame is answered
    for encoding, cut, text in (("yuv422", 0, "yuv422"), ("bgr8", 5, "data holds")):
        image_pub.publish(raw(frames[k], k, encoding, cut))
        out["bad"].append(logs.wait(lambda m, t=text: m["name"] == "/pose" and t in m["msg"],
                                    30.0))
        k += 1
    image_pub.publish(raw(frames[k], k))
    out["after_bad"] = people.wait(lambda r, k=k: stamp_of(r) == stamp(k), 30.0)

    k += 1
    ok, jpeg = cv2.imencode(".jpg", frames[k])
    jpeg_pub.publish(CompressedImage(header=header(k), format="jpeg", data=jpeg.tobytes()))
    out["jpeg"] = jpeg_people.wait(lambda r, k=k: stamp_of(r) == stamp(k), 60.0)

    burst = range(k + 1, k + 11)  # sent at once: stale ones are dropped, the newest kept
    for k in burst:
        image_pub.publish(raw(frames[k], k))
    last = people.wait(lambda r, k=k: stamp_of(r) == stamp(k), 30.0)
    time.sleep(1.0)
    with people.cond:
        out["burst"] = {"sent": [stamp(k) for k in burst], "answered": [
            stamp_of(r) for r in people.items if int(r["frame_id"][3:]) in burst],
            "last": last}
    with annotated.cond:
        out["annotated"] = list(annotated.items)
    print(json.dumps(out))
    rospy.signal_shutdown("done")


if __name__ == "__main__":
    main()
