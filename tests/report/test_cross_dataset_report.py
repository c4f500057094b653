"""Reports of runs evaluated on several test datasets (cross-dataset), on hand-made run
directories: the per-dataset columns of results.csv, their seed aggregates and the
cross-dataset table beside an unchanged in-domain table."""

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from zsseg_bench.report import ResultFileError, collect_results, write_report
from zsseg_bench.report.aggregate import aggregate_seeds

SEEN = ["background", "red circle"]
UNSEEN = ["blue square"]


def _metrics(seen, unseen, miou):
    hiou = 2 * seen * unseen / (seen + unseen) if seen + unseen else 0.0
    return {"mIoU": miou, "mIoU-seen": seen, "mIoU-unseen": unseen, "hIoU": hiou,
            "pAcc": 80.0, "mAcc": 50.0}


def make_run(root, method, seed, targets, first_is_transfer=False, dataset="toy"):
    """A run directory whose metrics.json holds ``targets`` (name -> (seen mIoU, unseen mIoU,
    mIoU, n_seen, n_unseen)) in order, as the engine writes it for ``DATASETS.TEST``."""
    run_id = f"{method}-{dataset}-inductive-s{seed}"
    d = Path(root) / "runs" / run_id
    (d / "train").mkdir(parents=True)
    (d / "cell.json").write_text(json.dumps({
        "run_id": run_id, "method": method, "method_label": method.title(),
        "dataset": dataset, "setting": "inductive", "seed": seed, "variant": "default"}))

    def split(n_seen, n_unseen, transfer):
        out = {"seen_classes": [f"s{i}" for i in range(n_seen)],
               "unseen_classes": [f"u{i}" for i in range(n_unseen)]}
        if transfer:
            out["cross_dataset"] = {"train_dataset": "toy_train", "setting": "inductive"}
        return out

    (first, (s, u, m, ns, nu)), *others = targets.items()
    record = {"iteration": 10, "wall_time_s": 1.0, "dataset": first,
              "metrics": {**_metrics(s, u, m), "IoU-background": s},
              **split(ns, nu, first_is_transfer)}
    if others:
        record["other_datasets"] = {n: _metrics(s, u, m) for n, (s, u, m, _, _) in others}
        record["other_splits"] = {n: split(ns, nu, True) for n, (_, _, _, ns, nu) in others}
    (d / "train" / "metrics.json").write_text(json.dumps(record))
    return d


def _toy_sweep(root):
    """Two methods x two seeds, each evaluated on its benchmark (toy_val) then on two other
    datasets: ov (3 seen / 2 unseen classes) and far (no class seen: mIoU only)."""
    for seed, (a, b) in enumerate([(40.0, 20.0), (44.0, 24.0)]):
        make_run(root, "zegclip", seed, {"toy_val": (a, b, a - 5, 2, 1),
                                        "ov": (a / 2, b / 2, a / 3, 3, 2),
                                        "far": (math.nan, b / 4, b / 4, 0, 7)})
        make_run(root, "two_stage", seed, {"toy_val": (a - 10, b - 10, a - 12, 2, 1),
                                          "ov": (a / 4, b / 4, a / 5, 3, 2),
                                          "far": (math.nan, b / 8, b / 8, 0, 7)})
    return root


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = _toy_sweep(tmp_path_factory.mktemp("xds") / "sweep")
    return write_report(root, title="Toy")


def test_results_csv_has_one_block_of_columns_per_test_dataset(report):
    df = pd.read_csv(report.results_csv)
    row = df[(df["method"] == "zegclip") & (df["seed"] == 1)].iloc[0]
    assert row["eval_dataset"] == "toy_val" and not row["cross_dataset"]
    assert row["toy_val/mIoU-S"] == 44.0 and row["toy_val/mIoU"] == 39.0
    assert row["ov/mIoU-U"] == 12.0 and row["ov/mIoU"] == pytest.approx(44 / 3)
    assert row["ov/hIoU"] == pytest.approx(2 * 22 * 12 / 34)
    assert (row["ov/n_seen"], row["ov/n_unseen"]) == (3, 2)
    assert math.isnan(row["far/mIoU-S"]) and row["far/n_seen"] == 0
    assert row["mIoU-S"] == 44.0  # the first dataset's metrics keep their columns
    columns = [c for c in df.columns if c.endswith("/mIoU")]
    assert columns == ["toy_val/mIoU", "ov/mIoU", "far/mIoU"]  # DATASETS.TEST order


def test_test_dataset_columns_are_aggregated_over_seeds(report):
    agg = pd.read_csv(report.aggregate_csv).set_index("method")
    z = agg.loc["zegclip"]
    assert z["n_seeds"] == 2 and z["ov/mIoU-S_mean"] == 21.0
    assert z["ov/mIoU-S_std"] == pytest.approx(math.sqrt(2.0))  # sample std of 20, 22
    assert z["far/mIoU_mean"] == pytest.approx(5.5) and math.isnan(z["far/mIoU-S_mean"])
    assert not bool(z["cross_dataset"])


def test_cross_dataset_table_after_the_in_domain_one(report):
    md = report.table_md.read_text()
    domain, cross = md.split("# Toy (cross-dataset)\n")
    assert domain.startswith("# Toy\n")
    assert "| Zegclip | inductive | toy | 42.0 ± 2.8 | 22.0 ± 2.8 |" in domain
    assert ("| Method | Setting | Trained on | toy_val mIoU | toy_val mIoU-S | toy_val mIoU-U | "
            "toy_val hIoU | ov mIoU | ov mIoU-S | ov mIoU-U | ov hIoU | far mIoU |") in cross
    # Baseline-first order as in the in-domain table; mean ± sample std over seeds.
    rows = [ln for ln in cross.splitlines() if ln.startswith("| Two_Stage") or
            ln.startswith("| Zegclip")]
    assert rows[1] == ("| Zegclip | inductive | toy | 37.0 ± 2.8 | 42.0 ± 2.8 | 22.0 ± 2.8 | "
                       "28.9 ± 3.1 | 14.0 ± 0.9 | 21.0 ± 1.4 | 11.0 ± 1.4 | 14.4 ± 1.6 | "
                       "5.5 ± 0.7 |")
    assert "Seen / unseen classes: toy_val 2 / 1; ov 3 / 2; far 0 / 7." in cross
    tex = report.table_tex.read_text()
    assert r"\multicolumn{4}{c}{toy\_val} & \multicolumn{4}{c}{ov} & \multicolumn{1}{c}{far}" \
        in tex
    assert r"\cmidrule(lr){4-7} \cmidrule(lr){8-11} \cmidrule(lr){12-12}" in tex
    assert r"Method & Setting & Trained on & mIoU & mIoU-S" in tex
    assert tex.count(r"\begin{tabular}") == 2


def test_only_the_cross_dataset_table_when_no_run_is_in_domain(tmp_path):
    """A model evaluated on other datasets only (as configs/sweeps/cross_dataset.yaml): its
    first dataset's metrics are no in-domain row, and no published in-domain row is added."""
    for seed in (0, 1):
        make_run(tmp_path, "zegclip", seed, {"voc_zs_val": (80.0 + seed, 40.0, 70.0, 13, 7),
                                            "ade": (30.0, 10.0 + seed, 20.0, 90, 60)},
                 first_is_transfer=True, dataset="coco_stuff")
    out = write_report(tmp_path, title="X")
    md = out.table_md.read_text()
    assert md.startswith("# X (cross-dataset)\n") and "published" not in md
    assert ("| Zegclip | inductive | coco_stuff | 70.0 ± 0.0 | 80.5 ± 0.7 | 40.0 ± 0.0 | "
            "53.4 ± 0.2 | 20.0 ± 0.0 | 30.0 ± 0.0 | 10.5 ± 0.7 | 15.5 ± 0.8 |") in md
    runs = collect_results(tmp_path).runs
    assert runs["cross_dataset"].all()
    assert bool(aggregate_seeds(runs)["cross_dataset"].iloc[0])


def test_a_single_transfer_dataset_gets_a_block(tmp_path):
    make_run(tmp_path, "zegclip", 0, {"ov": (50.0, 30.0, 40.0, 3, 2)}, first_is_transfer=True)
    md = write_report(tmp_path).table_md.read_text()
    assert "| Method | Setting | Trained on | ov mIoU | ov mIoU-S | ov mIoU-U | ov hIoU |" in md
    assert "| Zegclip | inductive | toy | 40.0 | 50.0 | 30.0 | 37.5 |" in md


def test_in_domain_runs_get_no_extra_columns(tmp_path):
    make_run(tmp_path, "zegclip", 0, {"toy_val": (50.0, 30.0, 40.0, 2, 1)})
    out = write_report(tmp_path)
    assert "cross-dataset" not in out.table_md.read_text()
    assert not [c for c in pd.read_csv(out.results_csv).columns if "/" in c]


@pytest.mark.parametrize("change, match", [
    ({"other_datasets": {"ov": {"mIoU-seen": 1.0}}}, "other_datasets.ov has no 'mIoU-unseen'"),
    ({"other_datasets": ["ov"]}, "other_datasets must be an object"),
    ({"other_datasets": {"ov": _metrics(1.0, 2.0, 3.0)},
      "other_splits": {"ov": {"unseen_classes": "u0"}}}, "unseen_classes must be a list"),
])
def test_malformed_test_dataset_blocks_name_the_file(tmp_path, change, match):
    d = make_run(tmp_path, "zegclip", 0, {"toy_val": (50.0, 30.0, 40.0, 2, 1)})
    path = d / "train" / "metrics.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises(ResultFileError, match=match) as info:
        collect_results(tmp_path)
    assert str(path) in str(info.value)
