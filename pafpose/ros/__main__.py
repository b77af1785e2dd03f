"""`python -m pafpose.ros [OPTIONS] [NAME:=VALUE ...]` runs the ROS 1 node (`pafpose ros`)."""

import sys

from ..cli import main

sys.exit(main(["ros", *sys.argv[1:]]))
