"""Events of a recording, shared by the EEG and fNIRS pipelines: the trial conditions of its annotations, MNE events
from them, and the warning when epochs are dropped."""

from __future__ import annotations

from collections.abc import Sequence

from mmib.data.physio.read_base import PhysioInputError, PhysioWarning
from mmib.errors import did_you_mean


def trial_conditions(raw) -> list[str]:
    """The annotation descriptions of a recording that can be trials (sorted): all but MNE's ``BAD…``/``EDGE…``
    markers and BrainVision's ``New Segment`` marker."""
    return sorted(
        d for d in set(raw.annotations.description) if not d.upper().startswith(("BAD", "EDGE", "NEW SEGMENT"))
    )


def trial_events(raw, conditions: Sequence[str] | None = None, source: str = "recording"):
    """Events from the recording's annotations.

    Args:
        raw: an MNE Raw with annotations.
        conditions: annotation descriptions to keep, in class order (``y`` = index in this list); ``None`` keeps
            every description except MNE's ``BAD…``/``EDGE…`` markers, sorted alphabetically.
        source: name of the recording for error messages.

    Returns:
        ``(events, event_id, onsets_s)``: MNE events array, ``{description: code}`` (code = class index + 1) and
        the event times in seconds from the start of the recording.

    Raises:
        PhysioInputError: when there are no annotations or a requested condition never occurs.
    """
    import mne

    present = sorted(set(raw.annotations.description))
    if not trial_conditions(raw):
        raise PhysioInputError(f"{source}: no trial annotations (besides BAD/EDGE markers), so no events to epoch around")
    if conditions is None:
        conditions = trial_conditions(raw)
    missing = [c for c in conditions if c not in present]
    if missing:
        hint = did_you_mean(", ".join(missing), present).strip()
        raise PhysioInputError(
            f"{source}: condition {', '.join(map(repr, missing))} not among the annotations "
            f"({', '.join(present)}){'; ' + hint if hint else ''}"
        )
    event_id = {c: i + 1 for i, c in enumerate(conditions)}
    events, _ = mne.events_from_annotations(raw, event_id=event_id, verbose="error")
    onsets = (events[:, 0] - raw.first_samp) / raw.info["sfreq"]
    return events, event_id, onsets


def epochs_for(signal, events, event_id, cfg, raw, source: str):
    """``mne.Epochs`` of ``signal`` (the preprocessed recording) around ``events``, with ``cfg``'s window
    (``tmin``, ``tmax``), ``baseline`` and ``resample`` — the one epoching step of the EEG and fNIRS pipelines; a
    warning naming ``source`` when trials fall past the end of ``raw`` (the recording as read)."""
    import mne

    epochs = mne.Epochs(
        signal, events, event_id, tmin=cfg.tmin, tmax=cfg.tmax, baseline=cfg.baseline, preload=True,
        reject_by_annotation=False, verbose="error",
    )  # fmt: skip
    warn_dropped_epochs(epochs, len(events), raw, source, stacklevel=4)
    if cfg.resample:
        epochs.resample(cfg.resample, verbose="error")
    return epochs


def warn_dropped_epochs(epochs, n_events: int, raw, source: str, stacklevel: int = 3) -> None:
    """Warn, naming ``source``, when MNE dropped epochs (their window runs past the recording's start or end)."""
    n_drop = n_events - len(epochs)
    if n_drop > 0:
        import warnings

        reasons = sorted({r for log in epochs.drop_log for r in log})
        warnings.warn(
            f"{source}: {n_drop} of {n_events} trials dropped ({', '.join(reasons) or 'no data'}: the epoch window "
            f"[{epochs.tmin:g}, {epochs.tmax:g}] s runs past the recording, which ends at {raw.times[-1]:.1f} s)",
            PhysioWarning,
            stacklevel=stacklevel,
        )
