"""`Chain`: compose preprocessors; at most one of them cuts slices."""

from __future__ import annotations

from typing import Any

from trainkit.data.preprocessors.base import (
    Preprocessor,
    check_initialized,
    check_slice,
    start_batch,
)


class Chain(Preprocessor):
    """Apply preprocessors in order to every slice.

    At most one member may cut a batch into more than one slice; that member governs
    slicing (`slices_per_batch`, `update_state`), and every member transforms each slice
    in order, seeing `slice_idx`. Member `k`'s `rng` is derived from the slice's key with
    `k` appended, so members draw independent numbers; every member knows the slice's
    rows in the global batch (`global_rows()`, `sample_rngs()`).

    Example:
        >>> pre = Chain(RandomCropPreprocessor(24), TimeseriesPreprocessor(8))
    """

    def __init__(self, *preprocessors: Preprocessor) -> None:
        super().__init__()
        if not preprocessors:
            raise ValueError("Chain needs at least one preprocessor. Received: Chain()")
        for member in preprocessors:
            check_initialized(member)
        _check_one_pad(preprocessors)
        self.members = list(preprocessors)
        self._governor = self.members[0]

    def check_sample_shape(self, sample_shape: tuple[int, ...]) -> None:
        for member in self.members:
            member.check_sample_shape(sample_shape)

    def on_batch_load(self, batch: Any, labels: Any) -> None:
        for member in self.members:
            start_batch(member, batch, labels)
        slicers = [m for m in self.members if m.slices_per_batch > 1]
        if len(slicers) > 1:
            names = ", ".join(type(m).__name__ for m in slicers)
            raise ValueError(
                f"Chain members {names} each cut a batch into more than one slice; at most "
                "one member may slice. Put the others in their own pass, or make them "
                "transform each slice (slices_per_batch=1)."
            )
        self._governor = slicers[0] if slicers else self.members[0]
        self.slices_per_batch = self._governor.slices_per_batch

    def count_slices(self, sample_shape: tuple[int, ...]) -> int | None:
        counts = [member.count_slices(sample_shape) for member in self.members]
        if any(count is None for count in counts):
            return None
        return max(count for count in counts if count is not None)

    def process(self, batch: Any, labels: Any) -> tuple[Any, ...]:
        key = self._rng_key or ()
        weights = None  # a member's sample weights hold until a later member gives its own
        for k, member in enumerate(self.members):
            member.slice_idx = self.slice_idx
            member.set_rng_key((*key, k), self._rng_rows)
            batch, labels, *more = check_slice(member, member.process(batch, labels))
            weights = more[0] if more else weights
        return (batch, labels) if weights is None else (batch, labels, weights)

    def update_state(self) -> None:
        self._governor.slice_idx = self.slice_idx
        self._governor.update_state()
        self.slice_idx = self._governor.slice_idx
        self.batch_exhausted = self._governor.batch_exhausted
        for member in self.members:
            member.slice_idx, member.batch_exhausted = self.slice_idx, self.batch_exhausted

    def reset_state(self) -> None:
        super().reset_state()
        for member in self.members:
            member.reset_state()

    def on_epoch_end(self, epoch: int) -> None:
        for member in self.members:
            member.on_epoch_end(epoch)

    def post_process(self, predictions: Any, description: dict[str, Any] | None = None) -> Any:
        """Each member's `post_process()`, last member first (undoing `process()` in reverse).

        `description` is the chain's `describe_slice()` (every member's entries merged);
        each member reads its own entries from it. None lets each member use its own last
        slice.
        """
        for member in reversed(self.members):
            predictions = member.post_process(predictions, description)
        return predictions

    def for_prediction(self) -> Preprocessor | None:
        """The chain of its members' prediction forms (those that are None dropped);
        None when none is left, the member itself when one is left."""
        forms = [member.for_prediction() for member in self.members]
        if all(form is member for form, member in zip(forms, self.members)):
            return self
        kept = [form for form in forms if form is not None]
        if not kept:
            return None
        return kept[0] if len(kept) == 1 else Chain(*kept)

    def describe_slice(self) -> dict[str, Any]:
        described: dict[str, Any] = {}
        for member in self.members:
            described.update(member.describe_slice())
        return described

    def get_config(self) -> dict[str, Any]:
        return {"class": "Chain", "members": [m.get_config() for m in self.members]}

    def state_dict(self) -> dict[str, Any]:
        return {"members": [m.state_dict() for m in self.members]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for member, member_state in zip(self.members, state["members"], strict=True):
            member.load_state_dict(member_state)


def _check_one_pad(preprocessors: tuple[Preprocessor, ...]) -> None:
    """Refuse two PadPreprocessors in one chain: a later pad would serve weights and
    lengths that know nothing of the earlier one's (padding counted in the loss)."""
    from trainkit.data.preprocessors.pad import PadPreprocessor

    def pads(members: Any) -> list[Preprocessor]:
        found = []
        for member in members:
            found += pads(member.members) if isinstance(member, Chain) else []
            found += [member] if isinstance(member, PadPreprocessor) else []
        return found

    if len(pads(preprocessors)) > 1:
        raise ValueError(
            "Chain got more than one PadPreprocessor: each would serve its own padding "
            "mask and lengths, and the last would silently replace the others'. Pad "
            "members of different lengths with one PadPreprocessor and `groups=`, e.g. "
            "PadPreprocessor(groups=[{'batch': ['points0'], 'labels': ['seg']}, "
            "{'batch': ['points1']}]). Received: Chain with "
            f"{len(pads(preprocessors))} PadPreprocessors"
        )
