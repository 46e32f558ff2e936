"""CSV injection: text cells that a spreadsheet would run as formulas are written quoted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from regflow.io.safe_csv import neutralise_formulas
from regflow.tasks.score import write_scores

FORMULAS = ["=1+2", "+cmd", "-1+2", "@SUM(A1)", "\t=1", "\r=1", "-", "+inf+1"]
NUMBERS = ["-3.5", "+1e5", "-inf", "-NaN", "-.5", "ok", "a=b", ""]


def test_formulas_get_a_quote_and_numbers_and_plain_text_do_not() -> None:
    frame = pd.DataFrame({"text": FORMULAS + NUMBERS})
    safe = neutralise_formulas(frame)
    assert safe["text"].tolist() == ["'" + f for f in FORMULAS] + NUMBERS
    assert frame["text"].tolist() == FORMULAS + NUMBERS  # the input is left as it was


def test_only_text_cells_change_whatever_the_column_type() -> None:
    frame = pd.DataFrame(
        {
            "x": [-3.5, 1.0, -np.inf],
            "n": [-1, 2, 3],
            "mixed": [-2.0, "=A1", None],
            "cat": pd.Categorical(["=A1", "'=A1", "b"]),
        }
    )
    safe = neutralise_formulas(frame)
    pd.testing.assert_frame_equal(safe[["x", "n"]], frame[["x", "n"]])
    assert safe["mixed"].tolist() == [-2.0, "'=A1", None]
    assert safe["cat"].tolist() == ["'=A1", "'=A1", "b"]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_scores_quotes_formulas_in_csv_only(tmp_path: Path, suffix: str) -> None:
    scored = pd.DataFrame({"note": ["=HYPERLINK(1)", "-2"], "predicted": [-3.5, 1.0]})
    out = write_scores(scored, tmp_path / f"scores{suffix}")
    read = pd.read_csv(out, dtype={"note": str}) if suffix == ".csv" else pd.read_parquet(out)
    expected = ["'=HYPERLINK(1)", "-2"] if suffix == ".csv" else ["=HYPERLINK(1)", "-2"]
    assert read["note"].tolist() == expected
    assert read["predicted"].tolist() == [-3.5, 1.0]
    assert scored["note"].iloc[0] == "=HYPERLINK(1)"
