"""Checkpoints and run folders: write aside and rename, find, prune, restore bitwise.

Imports Keras only inside the functions that touch a model.
"""

from trainkit.checkpoints.checkpoint_dirs import (
    ARRAYS_FILE,
    CHECKPOINT_PREFIX,
    MANIFEST_FILE,
    MODEL_FILE,
    STATE_FILE,
    CheckpointDamagedError,
    CheckpointWriteError,
    checkpoint_folders,
    checkpoint_iters,
    clean_incomplete,
    complete_checkpoints,
    is_checkpoint_folder,
    latest_checkpoint,
    prune_checkpoints,
    read_checkpoint,
    verify_checkpoint,
    write_checkpoint,
)
from trainkit.checkpoints.lock import (
    LOCK_FILE,
    RunFolderChangedError,
    RunFolderLockedError,
    RunLock,
)
from trainkit.checkpoints.run_folder import (
    RunFolder,
    create_run_folder,
    find_resumable_run,
    run_name,
)

__all__ = [
    "ARRAYS_FILE",
    "CHECKPOINT_PREFIX",
    "LOCK_FILE",
    "MANIFEST_FILE",
    "MODEL_FILE",
    "STATE_FILE",
    "CheckpointDamagedError",
    "CheckpointWriteError",
    "RunFolder",
    "RunFolderChangedError",
    "RunFolderLockedError",
    "RunLock",
    "checkpoint_folders",
    "checkpoint_iters",
    "clean_incomplete",
    "complete_checkpoints",
    "create_run_folder",
    "find_resumable_run",
    "is_checkpoint_folder",
    "latest_checkpoint",
    "prune_checkpoints",
    "read_checkpoint",
    "run_name",
    "verify_checkpoint",
    "write_checkpoint",
]
