"""Checkpoints and run folders: write aside and rename, find, prune, restore bitwise.

Imports Keras only inside the functions that touch a model.
"""

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
from trainkit.checkpoints.store import (
    CHECKPOINT_PREFIX,
    MODEL_FILE,
    STATE_FILE,
    CheckpointWriteError,
    clean_incomplete,
    complete_checkpoints,
    latest_checkpoint,
    prune_checkpoints,
    read_checkpoint,
    write_checkpoint,
)

__all__ = [
    "CHECKPOINT_PREFIX",
    "LOCK_FILE",
    "MODEL_FILE",
    "STATE_FILE",
    "CheckpointWriteError",
    "RunFolder",
    "RunFolderChangedError",
    "RunFolderLockedError",
    "RunLock",
    "clean_incomplete",
    "complete_checkpoints",
    "create_run_folder",
    "find_resumable_run",
    "latest_checkpoint",
    "prune_checkpoints",
    "read_checkpoint",
    "run_name",
    "write_checkpoint",
]
