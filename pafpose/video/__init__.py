"""Video: sources (file, image folder, stream, camera), a pipelined runner, and writers.

    sources.py   Frame, Source and its kinds (file, image folder, live), open_source
    pipeline.py  iter_poses: frames -> network + decode (worker threads) -> tracking, in order
    writers.py   the annotated video and JSON lines, written under a temporary name
    run.py       process_video: source -> poses -> files (and a window), VideoSummary
    window.py    a window for live results (OpenCV's or Tk's)

The runner overlaps four stages in threads joined by bounded queues, in frame order:

    source reader -> network + decode (worker threads) -> tracking (in order) -> draw + encode

Files lose no frame (unless `every` asks); live sources (cameras, streams) keep only their
newest frame, so latency stays bounded when the network is slower than the source. Outputs are
renamed into place when the run ends, also when it ends early: they hold every frame done.
"""

from ..draw import annotate, id_color
from ..errors import VideoError
from .pipeline import EstimatorPool, FrameResult, iter_poses, threads_per_worker
from .run import VideoInterrupted, VideoSummary, process_video
from .sources import (
    DEFAULT_FPS,
    Frame,
    ImageFolderSource,
    LiveSource,
    Source,
    VideoFileSource,
    open_source,
)
from .window import Window, open_window
from .writers import FOURCC_BY_SUFFIX, JsonLinesWriter, VideoWriter, frame_record

__all__ = [
    "DEFAULT_FPS", "FOURCC_BY_SUFFIX", "EstimatorPool", "Frame", "FrameResult",
    "ImageFolderSource", "JsonLinesWriter", "LiveSource", "Source", "VideoError",
    "VideoFileSource", "VideoInterrupted", "VideoSummary", "VideoWriter", "annotate",
    "frame_record", "id_color", "iter_poses", "open_source", "open_window", "process_video",
    "threads_per_worker", "Window",
]
