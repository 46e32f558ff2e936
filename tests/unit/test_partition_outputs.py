"""What the dask workers write: a predictions part has the schema, pandas metadata included,
of the local run's predictions frame converted by Arrow, built straight from the arrays."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from regflow.partitioned.work import predictions_frame, predictions_table


@pytest.mark.parametrize("with_holdout", [False, True])
def test_predictions_table_is_the_converted_frame(with_holdout: bool) -> None:
    rng = np.random.default_rng(11)
    y, predicted = rng.normal(size=500), rng.normal(size=500)
    held = rng.random(500) < 0.2 if with_holdout else None
    built = predictions_table(y, predicted, held)
    converted = pa.Table.from_pandas(predictions_frame(y, predicted, held), preserve_index=False)
    assert built.equals(converted, check_metadata=True)
    assert built.to_pandas().equals(predictions_frame(y, predicted, held))
