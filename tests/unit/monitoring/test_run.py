"""The checks `run_monitor` makes before and after gathering a window."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from churnops.errors import ConfigError, DataLoadError
from churnops.monitoring.reference import MonitoringReference
from churnops.monitoring.run import check_enough_rows, check_input_files, run_window
from churnops.monitoring.window import EmptyWindowError, WindowParts
from churnops.settings import MonitoringSettings, Settings
from tests.unit.monitoring.synthetic import with_predictions


def test_a_file_has_no_window_unless_one_is_asked_for() -> None:
    settings = Settings()
    settings.monitoring.default_window = "2d"

    assert run_window(settings, since=None, window=None, current="rows.csv") is None
    in_file = run_window(settings, since=None, window="12h", current="rows.csv")
    assert in_file is not None and in_file.end - in_file.start == timedelta(hours=12)
    store = run_window(settings, since=None, window=None, current=None)
    assert store is not None and store.end - store.start == timedelta(days=2)
    with pytest.raises(ConfigError, match="not both"):
        run_window(settings, since="2025-01-01", window="7d", current=None)


def test_missing_input_files_are_named_with_their_flag(tmp_path: Path) -> None:
    present = tmp_path / "present.csv"
    present.write_text("a\n1\n")
    check_input_files(current=str(present), reference=None)
    check_input_files(current="sqlite:///nowhere.db#predictions", reference=None)  # read later

    with pytest.raises(DataLoadError, match=r"--current file not found: .*absent\.csv"):
        check_input_files(current=str(tmp_path / "absent.csv"), reference=None)
    with pytest.raises(DataLoadError, match="--reference file not found"):
        check_input_files(current=str(present), reference=str(tmp_path / "ref.csv"))


def test_empty_and_tiny_windows_are_errors(
    reference: MonitoringReference, reference_frame: pd.DataFrame
) -> None:
    settings = MonitoringSettings(min_rows=50)
    parts = WindowParts(reference=reference, period=None)

    with pytest.raises(EmptyWindowError, match=r"no predictions in the window in rows\.csv"):
        check_enough_rows(parts, settings, window=None, where="rows.csv")
    parts.add_frame(with_predictions(reference_frame.head(49)))
    with pytest.raises(EmptyWindowError, match=r"only 49 prediction.*min_rows=50"):
        check_enough_rows(parts, settings, window=None, where="rows.csv")
    parts.add_frame(with_predictions(reference_frame.iloc[49:50]))
    check_enough_rows(parts, settings, window=None, where="rows.csv")
