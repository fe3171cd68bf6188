"""gar_sklearn on a dask cluster: grid search through joblib's dask backend, prediction over partitions.

A LocalCluster of two worker processes stands in for a real cluster: tasks and
models are pickled and sent to other processes exactly as they would be to
other machines.
"""

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.model_selection import GridSearchCV, KFold

from gar_sklearn import MultiAttributeClassifier
from gar_sklearn.datasets import make_synthetic_faces
from gar_sklearn.parallel import predict_partitions

from .conftest import TINY

distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")
db = pytest.importorskip("dask.bag")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        worker_dashboard_address=None,
    ) as cluster:
        with distributed.Client(cluster) as client:
            yield client


@pytest.fixture(scope="module")
def faces():
    return make_synthetic_faces(96, image_size=32, random_state=1)


@pytest.fixture(scope="module")
def model(faces):
    X, y = faces
    return MultiAttributeClassifier(age_bins="fairface", max_epochs=3, **TINY).fit(X, y)


@pytest.fixture(scope="module")
def image_files(faces, tmp_path_factory):
    X, _ = faces
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for i, img in enumerate(X):
        path = folder / f"face_{i:03d}.png"
        Image.fromarray(img).save(path)
        paths.append(str(path))
    return paths


def test_grid_search_runs_on_the_cluster_and_matches_a_local_search(client, faces, image_files):
    joblib = pytest.importorskip("joblib")
    # paths: each fit decodes files in a dask worker process, which may not start DataLoader workers
    X, y = image_files, faces[1]
    grid = {"lr": [3e-3, 3e-2], "max_epochs": [1, 2]}
    cv = KFold(2, shuffle=True, random_state=0)
    estimator = MultiAttributeClassifier(age_bins="fairface", **{**TINY, "lr": 1e-2})
    local = GridSearchCV(estimator, grid, cv=cv).fit(X, y)
    with distributed.get_task_stream(client) as stream, joblib.parallel_config(backend="dask"):
        remote = GridSearchCV(estimator, grid, cv=cv, n_jobs=-1).fit(X, y)
    # the 4 candidates x 2 folds were fitted on the workers, not here
    workers = {task["worker"] for task in stream.data}
    assert len(stream.data) >= 8 and workers <= set(client.scheduler_info()["workers"])
    # same seeds, same single-threaded CPU arithmetic: the same scores as the local search
    np.testing.assert_allclose(
        remote.cv_results_["mean_test_score"],
        local.cv_results_["mean_test_score"],
        rtol=0,
        atol=1e-12,
    )
    assert remote.best_params_ == local.best_params_
    np.testing.assert_array_equal(remote.predict(X[:8]), local.predict(X[:8]))


def test_predict_partitions_from_a_model_file_loads_it_once_per_worker(
    client, model, image_files, tmp_path
):
    path = tmp_path / "model.pt"
    model.save(path)
    bag = db.from_sequence(image_files, npartitions=8)
    rows = predict_partitions(str(path), bag, proba=True).compute()

    expected = model.predict_frame(image_files, proba=True)
    assert [r["path"] for r in rows] == image_files
    got = pd.DataFrame(rows).drop(columns="path")
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, rtol=1e-5)
    # 8 partitions ran on 2 workers, and each worker read the file once
    loads = client.run(lambda: __import__("gar_sklearn.parallel").parallel._model_cache.loads)
    assert sum(loads.values()) == len(loads) == 2


def test_predict_partitions_of_a_dataframe_keeps_its_index(client, model, image_files):
    dd = pytest.importorskip("dask.dataframe", reason="dask.dataframe needs pyarrow")
    frame = pd.DataFrame({"id": np.arange(len(image_files)) * 10, "file": image_files}).set_index(
        "id"
    )
    # an estimator object, sent to the workers; a partition with no rows too
    ddf = dd.from_pandas(frame, npartitions=3)
    first = ddf[ddf["file"].str.endswith("_000.png")]  # one row: two of three partitions empty
    out = predict_partitions(model, ddf, column="file", batch_size=7)
    assert list(out.columns) == list(model.attributes_)
    result = out.compute()
    pd.testing.assert_index_equal(result.index, frame.index)
    np.testing.assert_array_equal(result.to_numpy(), model.predict(image_files))
    one = predict_partitions(model, first, column="file").compute()
    pd.testing.assert_frame_equal(one, result.iloc[:1])
    assert model.batch_size == TINY["batch_size"]  # the override went to a copy
    series = predict_partitions(model, ddf["file"]).compute()
    pd.testing.assert_frame_equal(series, result)


def test_predict_partitions_skips_unreadable_files_when_asked(client, model, image_files, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    bag = db.from_sequence([image_files[0], str(broken)], npartitions=1)
    rows = predict_partitions(model, bag, on_error="skip").compute()
    assert rows[0]["gender"] == model.predict(image_files[:1])[0, 0]
    assert rows[1]["path"] == str(broken) and pd.isna(rows[1]["gender"])  # as predict_frame has it


def test_predict_partitions_checks_its_arguments(model, image_files, tmp_path):
    bag = db.from_sequence(image_files[:2], npartitions=1)
    with pytest.raises(
        TypeError, match="The 'paths' parameter must be a dask DataFrame, Series or Bag"
    ):
        predict_partitions(model, image_files)
    with pytest.raises(
        TypeError, match="The 'model' parameter must be a fitted gar_sklearn estimator"
    ):
        predict_partitions(object(), bag)
    with pytest.raises(ValueError, match="which is not a file"):
        predict_partitions(str(tmp_path / "missing.pt"), bag)
    with pytest.raises(ValueError, match="The 'device' parameter applies to a model file only"):
        predict_partitions(model, bag, device="cpu")
    with pytest.raises(ValueError, match="The 'column' parameter applies to a DataFrame only"):
        predict_partitions(model, bag, column="path")
