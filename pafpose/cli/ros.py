"""`pafpose ros`: the ROS 1 node, a camera topic in, people (JSON) and an annotated image out.
The flags give the defaults of the node's ROS parameters (~preset, ~rate, ...)."""

from __future__ import annotations

import argparse
import signal

from . import options, stop


def remapping(text: str) -> str:
    """A ROS command-line remapping or private parameter: NAME:=VALUE."""
    name, sep, _ = text.partition(":=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME:=VALUE (a ROS remapping such as "
                                         f"image:=/usb_cam/image_raw), got {text!r}")
    return text


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ros command."""
    p = sub.add_parser(
        "ros", help="ROS 1 node: camera topic in, people (JSON) and an annotated image out",
        description="A ROS 1 node. It reads sensor_msgs/Image (bgr8, rgb8, mono8, bgra8, "
        "rgba8, mono16) or CompressedImage, and publishes ~people (std_msgs/String, JSON) and "
        "~annotated (sensor_msgs/Image). The node's private ROS parameters (~image_topic, "
        "~compressed, ~preset, ~model, ~backend, ~precision, ~track, ~smooth, ~rate) override "
        "the flags below.")
    p.add_argument("remappings", nargs="*", type=remapping, metavar="NAME:=VALUE",
                   help="ROS remappings and parameters: image:=/usb_cam/image_raw, "
                   "_preset:=fast, __name:=pose")
    options.add_model_args(p)
    p.add_argument("--image-topic", default="image", metavar="TOPIC",
                   help="camera topic (~image_topic; default: image)")
    p.add_argument("--compressed", action="store_true",
                   help="read TOPIC/compressed, sensor_msgs/CompressedImage (~compressed)")
    p.add_argument("--no-track", action="store_true", help="no ids (~track)")
    p.add_argument("--smooth", action="store_true",
                   help="smooth keypoints, One-Euro filter (~smooth)")
    p.add_argument("--rate", type=options.positive_at_most(1000, "frames per second"),
                   metavar="HZ", help="process at most HZ frames per second (~rate; default: "
                   "as many as the CPU allows; the newest frame is taken, stale ones dropped)")
    p.set_defaults(func=run, take_extra=lambda args, extra: _take_remappings(p, args, extra))


def _take_remappings(parser: argparse.ArgumentParser, args: argparse.Namespace,
                     extra: list[str]) -> None:
    """Remappings after an option (argparse places positionals of one run only), or an error."""
    wrong = [a for a in extra if a.startswith("-") or ":=" not in a]
    if wrong:
        parser.error(f"unrecognized arguments: {' '.join(wrong)}")
    args.remappings += [remapping(a) for a in extra]


def run(args: argparse.Namespace) -> int:
    """Run the node until ROS shuts it down or Ctrl-C (exit 0)."""
    from ..ros.core import NodeSettings
    from ..ros.ros1 import run_node

    kwargs = options.estimator_options(args)
    settings = NodeSettings(
        image_topic=args.image_topic, compressed=args.compressed, preset=kwargs.pop("preset"),
        model=str(kwargs.pop("model")), backend=kwargs.pop("backend"),
        precision=kwargs.pop("precision"), track=not args.no_track, smooth=args.smooth,
        rate=args.rate or 0.0)
    try:
        run_node(settings, kwargs, args.remappings)
    except KeyboardInterrupt:  # Ctrl-C is the way to stop a node: exit 0
        return 0 if stop.stopped_by() == signal.SIGINT else stop.interrupted_status()
    return 0
