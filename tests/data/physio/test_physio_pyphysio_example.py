"""Issue 21: the worked example of docs/guide/eeg-fnirs.md on pyphysio's real fNIRS recording runs as written
(reduced here to the first 500 s) and decodes tapping vs rest from HbO."""

from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "guide" / "eeg-fnirs.md"


def test_pyphysio_worked_example_runs_reduced(capsys):
    from mmib.data.physio.io import pyphysio_test_data

    if pyphysio_test_data() is None:
        pytest.skip("pyphysio (mmib[packaged]) is not installed")
    text = GUIDE.read_text()
    section = text[text.index("### Worked example: pyphysio's real fNIRS recording"):]
    start = section.index("```python") + len("```python")
    code = section[start: section.index("```", start)]
    assert "CROP_S = None" in code
    exec(compile(code.replace("CROP_S = None", "CROP_S = 500.0"), str(GUIDE), "exec"), {})
    out = capsys.readouterr().out.strip().splitlines()
    assert "tapping vs rest" in out[-2]
    assert 0.4 <= float(out[-1]) <= 1.0  # a finite cross-validated accuracy
