"""mmib.data.physio.montage: 10-20 site positions from MNE's template and the fNIRS source-detector layout."""

import numpy as np
import pytest

from mmib.data.physio.montage import (
    DEFAULT_EEG_CHANNELS,
    DEFAULT_FNIRS_PAIRS,
    fnirs_layout,
    site_positions,
    standard_montage,
)


def test_site_positions_are_template_positions_in_metres():
    pos = site_positions(DEFAULT_EEG_CHANNELS)
    assert pos.shape == (16, 3)
    ch_pos = standard_montage().get_positions()["ch_pos"]
    np.testing.assert_array_equal(pos[DEFAULT_EEG_CHANNELS.index("Cz")], ch_pos["Cz"])
    r = np.linalg.norm(pos - pos.mean(0), axis=1)
    assert 0.05 < r.min() and r.max() < 0.15  # a head, in metres
    left, right = site_positions(["C3", "C4"])
    assert left[0] < 0 < right[0]  # MNE's head frame: +x towards the right ear
    with pytest.raises(ValueError, match=r"unknown 10-20 site 'Cx', 'Q9'; valid sites include"):
        site_positions(["Cz", "Cx", "Q9"])


def test_fnirs_layout_names_and_distances():
    names, src, det = fnirs_layout(5)
    # FC3-C3, FC4-C4, CP3-C3, CP4-C4, FC3-FC5: sources and detectors numbered by first appearance
    assert names == ["S1_D1", "S2_D2", "S3_D1", "S4_D2", "S1_D3"]
    np.testing.assert_array_equal(src, site_positions([s for s, _ in DEFAULT_FNIRS_PAIRS[:5]]))
    np.testing.assert_array_equal(det, site_positions([d for _, d in DEFAULT_FNIRS_PAIRS[:5]]))
    full_names, s16, d16 = fnirs_layout(len(DEFAULT_FNIRS_PAIRS))
    assert len(set(full_names)) == 16
    dist = np.linalg.norm(s16 - d16, axis=1)
    assert np.all((dist > 0.015) & (dist < 0.06)), dist  # source-detector separations of long channels
    assert fnirs_layout(1, pairs=[("Fz", "Cz")])[0] == ["S1_D1"]
    for n in (0, 17):
        with pytest.raises(ValueError, match=r"n_fnirs_channels must lie in \[1, 16\]"):
            fnirs_layout(n)
