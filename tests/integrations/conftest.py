"""Fixtures of the integration tests: the tiny toy world, rendered once per session."""

from __future__ import annotations

import pytest

from tests.integrations.helpers import NUM_TRAIN, NUM_VAL, PREFIX


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory):
    """A datasets root holding a toy world of 8 train + 4 val images, registered in this
    process as ``d2_test_train`` / ``d2_test_val`` (subprocesses see it as ``synthetic_*``)."""
    import zsseg_bench.data.datasets  # noqa: F401  (registers the built-in datasets)
    from zsseg_bench.data.catalog import DatasetCatalog
    from zsseg_bench.data.datasets.synthetic import register_all_synthetic
    from zsseg_bench.data.synthetic import prepare_synthetic

    root = tmp_path_factory.mktemp("datasets")
    prepare_synthetic(str(root), num_train=NUM_TRAIN, num_val=NUM_VAL)
    if f"{PREFIX}_train" not in DatasetCatalog.list():
        register_all_synthetic(str(root), prefix=PREFIX, num_train=NUM_TRAIN, num_val=NUM_VAL)
    return root
