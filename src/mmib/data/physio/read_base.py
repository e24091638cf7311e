"""What every reader of EEG and fNIRS recordings shares: the error and warning types, the file extensions, and
:func:`mne_read` (an MNE reader whose failure is one line naming the file and whose warnings name it too)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmib.errors import MMIBError


class PhysioInputError(MMIBError, ValueError):
    """A recording, channel, event or option is not what the pipeline expects; the message names it."""


class PhysioWarning(UserWarning):
    """Legal but suspicious input (a truncated file, trials dropped); the message names the file."""


FNIRS_TYPES = {"fnirs_cw_amplitude", "fnirs_od", "hbo", "hbr"}
EEG_EXTENSIONS = (".edf", ".bdf", ".vhdr", ".set", ".fif", ".fif.gz", ".mat")
FNIRS_EXTENSIONS = (".snirf", ".fif", ".fif.gz", ".hdr", ".csv", ".mat", "(NIRx folder)")
#: wavelengths (nm) of the NIRScout of the TU Berlin data sets (Shin et al. 2016, 2018) when a file does not say
TUBERLIN_WAVELENGTHS = (760.0, 850.0)
#: the fixed optode spacing of Hitachi ETG probe holders (m)
HITACHI_SPACING_M = 0.03


def suffix(path: Path) -> str:
    name = path.name.lower()
    return ".fif.gz" if name.endswith(".fif.gz") else path.suffix.lower()


def first_line(e: BaseException) -> str:
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0]}" if msg else type(e).__name__


def mne_read(reader: Callable[..., Any], path: Path, what: str, *args, **kwargs):
    """Call an MNE reader; any failure becomes a one-line :class:`PhysioInputError` naming ``path``.

    MNE's warnings during the read are re-issued as :class:`PhysioWarning` prefixed by the file.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            raw = reader(*args, **kwargs) if args else reader(path, **kwargs)
            raw.load_data(verbose="error")
        except (MMIBError, MemoryError):
            raise
        except Exception as e:  # noqa: BLE001  (MNE raises many kinds for a malformed file)
            raise PhysioInputError(f"{what} {path}: not a readable file ({first_line(e)})") from e
    for w in caught:
        if issubclass(w.category, DeprecationWarning) or "naming conventions" in str(w.message):
            continue
        text = str(w.message).strip().splitlines()[0] if str(w.message).strip() else ""
        if "does not match the file size" in text:
            text = _truncation(path, raw)
        warnings.warn(f"{what} {path}: {text}", PhysioWarning, stacklevel=3)
    return raw


def _truncation(path: Path, raw) -> str:
    """What a truncated EDF/BDF lost: its header's length against the data present, and about how many trials."""
    held = raw.n_times / raw.info["sfreq"]
    try:
        head = path.read_bytes()[:256]
        declared = int(head[236:244].decode("ascii").strip()) * float(head[244:252].decode("ascii").strip())
    except (ValueError, OSError):
        return f"the file is shorter than its header says (it holds {held:.1f} s); trials after its end are lost"
    n_trials = sum(1 for d in raw.annotations.description if not d.upper().startswith(("BAD", "EDGE")))
    lost = max(declared - held, 0.0)
    est = f"about {round(n_trials / held * lost)} trials" if n_trials and held > 0 else "its trials"
    return (f"truncated: the header declares {declared:.1f} s, the file holds {held:.1f} s; {est} after "
            f"{held:.1f} s are lost (their annotations were in the missing part)")
