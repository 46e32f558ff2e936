"""Any DataFrame either validates or fails with InvalidInputError naming column and check.

Never another exception, in either mode; and quarantine accounts for every row it was given.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from regflow.errors import InvalidInputError
from regflow.schemas.dataset import FLOAT32_MAX
from regflow.schemas.frames import LoadedData
from regflow.tasks.validate import validate_dataset

SOURCE = "prop.csv"
# Checks that judge one column: a problem from them must say which column.
COLUMN_CHECKS = {
    "column_present",
    "unique_column_names",
    "target_not_feature",
    "unique_features",
    "coerce_dtype",
    "not_nullable",
    "finite",
    "within_float32_range",
    "not_constant",
    "numeric_dtype",  # a boolean feature (schemas.columns)
    "reserved_column",
}
TABLE_CHECKS = {"at_least_3_rows", "numeric_features", "features_given", "max_invalid_fraction"}

names = st.text(alphabet="abxy_ 1é;", max_size=4)
floats = st.floats(allow_nan=True, allow_infinity=True)  # NaN, ±inf, 1e308, subnormals
clean = st.floats(min_value=-1e6, max_value=1e6)
# Repeats weight the draw towards frames that get past the column checks.
KINDS = ["clean"] * 4 + ["float", "float", "int", "bool", "text", "mixed", "mixed", "Int64"]
KINDS.append("string")
scalars = st.one_of(
    floats,
    st.integers(),  # beyond int64 too
    st.text(max_size=4),
    st.booleans(),
    st.none(),
)


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(min_value=0, max_value=50))
    unique = draw(st.sampled_from([True] * 4 + [False]))  # now and then duplicate names
    columns = draw(st.lists(names, min_size=1, max_size=5, unique=unique))
    data = []
    for _ in columns:
        kind = draw(st.sampled_from(KINDS))
        if kind == "clean":
            values = np.array(draw(st.lists(clean, min_size=n, max_size=n)), dtype=np.float64)
        elif kind == "float":
            values = np.array(draw(st.lists(floats, min_size=n, max_size=n)), dtype=np.float64)
        elif kind == "int":
            ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
            values = np.array(draw(st.lists(ints, min_size=n, max_size=n)), dtype=np.int64)
        elif kind == "bool":
            values = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
        elif kind == "text":
            values = np.array(draw(st.lists(st.text(max_size=4), min_size=n, max_size=n)), object)
        elif kind == "mixed":
            values = np.array(draw(st.lists(scalars, min_size=n, max_size=n)), dtype=object)
        elif kind == "Int64":
            small = st.one_of(st.none(), st.integers(min_value=-1000, max_value=1000))
            values = pd.array(draw(st.lists(small, min_size=n, max_size=n)), dtype="Int64")
        else:
            text = st.one_of(st.none(), st.text(max_size=4), floats.map(str))
            values = pd.array(draw(st.lists(text, min_size=n, max_size=n)), dtype="string")
        data.append(pd.Series(values))
    frame = pd.concat(data, axis=1) if data else pd.DataFrame()
    frame.columns = columns
    return frame


@st.composite
def requests(draw: st.DrawFn) -> tuple[pd.DataFrame, str, list[str] | None, str, float]:
    frame = draw(frames())
    present = list(map(str, frame.columns))
    # Mostly requests that name real columns; now and then anything at all.
    # (sampled_from shrinks towards its first item: the common case comes first)
    odd = draw(st.sampled_from(["no"] * 9 + ["target", "features"]))
    target = "absent" if odd == "target" else draw(st.sampled_from(present))
    others = [c for c in present if c != target]
    if odd == "features":
        features = draw(st.lists(st.sampled_from([*present, "absent"]), max_size=4))
    elif others and draw(st.booleans()):
        features = draw(st.lists(st.sampled_from(others), min_size=1, unique=True))
    else:
        features = None
    mode = draw(st.sampled_from(["fail", "quarantine"]))
    fraction = draw(st.floats(min_value=0.0, max_value=1.0))
    return frame, target, features, mode, fraction


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_any_frame_validates_or_names_column_and_check(
    request: tuple[pd.DataFrame, str, list[str] | None, str, float],
) -> None:
    frame, target, features, mode, fraction = request
    loaded = LoadedData(frame, SOURCE, "csv", "0" * 64, 0)
    try:
        valid = validate_dataset(loaded, target, features, mode, fraction)
    except InvalidInputError as err:
        event(f"invalid: {sorted({p.check for p in err.problems})[0]}")
        assert err.problems and err.exit_code == 2
        message = str(err)
        assert message.startswith(f"{SOURCE}: invalid input")
        known = {str(c) for c in frame.columns} | {target, *(features or [])}
        for problem in err.problems:
            assert problem.file == SOURCE
            assert problem.check in COLUMN_CHECKS | TABLE_CHECKS, problem.check
            assert f"check '{problem.check}' failed" in message
            if problem.check in COLUMN_CHECKS:
                assert problem.column in known, problem
                assert f"column '{problem.column}'" in message
        return

    event(f"valid ({mode})")
    # What validates is what training needs: float64, finite, in float32's range, >= 3 rows,
    # no constant column; the columns are the features, then the target.
    chosen = valid.frame
    assert list(chosen.columns) == [*valid.features, target] and target not in valid.features
    assert all(dtype == np.float64 for dtype in chosen.dtypes) and len(chosen) >= 3
    values = chosen.to_numpy()
    assert np.isfinite(values).all() and (np.abs(values) <= FLOAT32_MAX).all()
    assert (values.max(axis=0) > values.min(axis=0)).all()
    assert valid.rows_read == len(frame)
    if mode == "quarantine":
        # No row is dropped silently: used + listed = read, within the allowed share.
        assert valid.rejected is not None
        assert len(chosen) + valid.rows_rejected == len(frame)
        assert valid.rows_rejected <= fraction * len(frame)
        assert valid.rejected["row"].between(1, len(frame)).all()
        assert set(valid.rejected["column"]) <= set(chosen.columns)
    else:
        assert valid.rejected is None and len(chosen) == len(frame)
