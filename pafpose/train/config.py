"""TrainConfig: everything a training run needs, each setting with its command-line help.

The `pafpose train` flags are built from these fields (their metadata: the help, with
`{default}` standing for the field's default, the metavar, the choices and the accepted
range), so a setting, its default and its description are stated here only. No PyTorch
needed: the command line reads this module before it knows that training can run.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field

from ..defaults import DEFAULT_INPUT_SIZE, DEFAULT_MODEL
from ..errors import InputError

SCHEDULES = ("cosine", "constant")


def _flag(default: object = None, help: str = "", **cli: object):  # noqa: A002
    """A field shown as a `pafpose train` flag: its help and how the flag reads its value
    (`flag` another name, `negate` a --no-X flag, `metavar`, `choices`, `bounds`
    (low, high, what) for an integer)."""
    return field(default=default, metadata={"help": help, **cli})


@dataclass
class TrainConfig:
    """Everything a training run needs; stored in its checkpoints."""

    coco_dir: str = field(metadata={
        "help": "COCO folder: annotations/person_keypoints_<split>.json + <split>/ (or "
                "person_keypoints.json + images/)", "metavar": "DIR"})
    _: KW_ONLY
    model: str = _flag(DEFAULT_MODEL, "network: mobilenet_thin, mobilenet_v2_{large,small,1.4,"
                       "1.0,0.75,0.5}, cmu (default {default})")
    #: None = from scratch, "seed", a seed .pb or a checkpoint .pt
    weights: str | None = _flag(None, "start from the seed's weights ('seed'), a seed .pb or a "
                                "checkpoint (default: from scratch)", metavar="seed|PATH")
    stages: int | None = _flag(None, "refinement stages (default 6)",
                               bounds=(1, 6, "a stage count"))
    input_size: tuple[int, int] = _flag(DEFAULT_INPUT_SIZE, "training input size, multiples "
                                        "of 16 (default {default})", flag="input",
                                        metavar="WxH")
    output: str = _flag("runs/train", "run folder: checkpoints, logs (default {default})",
                        metavar="DIR")
    batch_size: int = _flag(8, "images per process (default {default})",
                            bounds=(1, 4096, "a batch size"))
    epochs: int = _flag(1, "epochs (default {default})", bounds=(1, 10**9, "an epoch count"))
    #: total optimiser steps (default: epochs x steps per epoch)
    steps: int | None = _flag(None, "optimiser steps in all (overrides --epochs)",
                              bounds=(1, 10**9, "a step count"))
    #: None: 1e-4 from scratch, 1e-5 when starting from weights
    lr: float | None = _flag(None, "AdamW learning rate (default 1e-4 from scratch, 1e-5 from "
                             "weights)")
    weight_decay: float = _flag(0.0, "(default {default})")
    warmup_steps: int = _flag(200, "linear warmup (default {default})")
    #: "cosine" (to 0 at the last step) or "constant" (after warmup)
    schedule: str = _flag("cosine", "after warmup (default {default})", choices=SCHEDULES)
    clip_grad: float = _flag(100.0, "max gradient norm, 0 = off (default {default})")
    amp: bool = _flag(True, "no mixed precision on CUDA", negate=True)  # CUDA only
    augment: bool = _flag(True, "no random augmentation", negate=True)
    workers: int = _flag(2, "data loader processes (default {default})",
                         bounds=(0, 64, "a process count"))
    seed: int = _flag(0, "random seed (default {default})")
    train_split: str = _flag("train2017", "(default {default})")
    val_split: str = _flag("val2017", "(default {default})")
    #: use only the first N training images (tests, debugging)
    train_limit: int | None = _flag(None, "use the first N images only", metavar="N",
                                    bounds=(1, 10**9, "an image count"))
    #: steps between validations (0 = at the end only; -1 = never)
    val_every: int = _flag(0, "validation AP every STEPS (0 = at the end, -1 = never)",
                           metavar="STEPS")
    val_limit: int | None = _flag(500, "validation images (default {default})", metavar="N",
                                  bounds=(1, 10**9, "an image count"))
    #: inference preset for validation (None: as `pafpose eval`)
    val_preset: str | None = _flag(None, "inference preset of the validation (default: as "
                                   "pafpose eval)", metavar="PRESET")
    #: steps between checkpoints (and at the end, and on Ctrl-C)
    save_every: int = _flag(1000, "checkpoint every STEPS (and at the end; default {default})",
                            metavar="STEPS")
    log_every: int = _flag(10, "(default {default})", metavar="STEPS")
    resume: bool = _flag(False, "continue from OUTPUT/last.pt")
    device: str | None = _flag(None, "cpu, cuda or cuda:N (default: cuda when available)")
    #: None: frozen when starting from the seed's folded weights (not a flag)
    freeze_bn: bool | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        self.input_size = (int(self.input_size[0]), int(self.input_size[1]))
        if self.schedule not in SCHEDULES:
            raise InputError(f"unknown schedule {self.schedule!r} (cosine or constant)")
        if self.batch_size < 1 or self.epochs < 1 or (self.steps is not None and self.steps < 1):
            raise InputError("batch size, epochs and steps must be positive")
