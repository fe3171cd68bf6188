"""Progress output: nothing at verbose=0, epoch lines at verbose=1, bars only on a terminal
(or at verbose=2), for fitting, feature extraction, prediction and face detection."""

import io
import re
import sys

import numpy as np
import pytest
import torch

from gar_sklearn import MultiAttributeClassifier
from gar_sklearn._feature_cache import FeatureCache, feature_cache
from gar_sklearn._progress import progress_bar, show_progress, strip_colors, write_line
from gar_sklearn.backbones import MultiHeadNetwork, build_backbone
from gar_sklearn.datasets import make_synthetic_faces
from gar_sklearn.preprocessing import as_image_source

BAR = re.compile(r"\d+%\|")  # tqdm's "42%|" marks a drawn bar
TINY = dict(backbone="tiny", weights=None, image_size=16, batch_size=16, random_state=0)


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self):
        return True


class KernelStream(io.StringIO):
    """Stands in for ipykernel's OutStream: not a tty, yet shown live in a notebook."""


KernelStream.__module__ = "ipykernel.iostream"


@pytest.fixture(scope="module")
def data():
    return make_synthetic_faces(40, image_size=16, random_state=0)


def fake_terminal(monkeypatch):
    """Replace sys.stderr by a stream that claims to be a terminal; returns it.

    Called in the test body: pytest's capture reinstalls its own sys.stderr
    between the setup and call phases, which would undo a fixture's patch.
    """
    stream = Terminal()
    monkeypatch.setattr(sys, "stderr", stream)
    return stream


# ---------------------------------------------------------------- the rule
@pytest.mark.parametrize(
    "verbose, stream, expected",
    [
        (0, Terminal(), False),  # asked to be quiet: even on a terminal
        (1, Terminal(), True),
        (1, io.StringIO(), False),  # piped or redirected
        (1, KernelStream(), True),  # a Jupyter kernel's output
        (2, io.StringIO(), True),  # explicitly asked for
        (True, Terminal(), True),
        (None, Terminal(), False),
    ],
)
def test_show_progress_rule(verbose, stream, expected):
    assert show_progress(verbose, stream) is expected


def test_show_progress_reads_stderr_at_call_time(monkeypatch):
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert show_progress(1)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not show_progress(1)


def test_progress_bar_draws_on_a_terminal_only(monkeypatch):
    for stream, drawn in ((Terminal(), True), (io.StringIO(), False)):
        monkeypatch.setattr(sys, "stderr", stream)
        with progress_bar(1, total=5, desc="work") as bar:
            bar.update(5)
        assert bool(BAR.search(stream.getvalue())) is drawn
        assert ("work" in stream.getvalue()) is drawn


def test_progress_bar_over_an_iterable_yields_every_item(monkeypatch):
    terminal = fake_terminal(monkeypatch)
    assert list(progress_bar(1, desc="items", iterable=range(4))) == [0, 1, 2, 3]
    assert "0/4" in terminal.getvalue()


def test_write_line_keeps_colours_on_a_terminal_only():
    coloured = "\x1b[36m4.5692\x1b[0m"
    plain, tty = io.StringIO(), Terminal()
    write_line(coloured, stream=plain)
    write_line(coloured, stream=tty)
    assert plain.getvalue() == "4.5692\n"
    assert tty.getvalue() == coloured + "\n"
    assert strip_colors("a\x1b[1;32mb\x1b[0mc") == "abc"


# ---------------------------------------------------------------- fit and predict
def test_verbose_0_prints_nothing_even_on_a_terminal(data, monkeypatch, capsys):
    terminal = fake_terminal(monkeypatch)
    X, y = data
    clf = MultiAttributeClassifier(max_epochs=2, freeze=2, verbose=0, **TINY).fit(X, y)
    clf.predict(X)
    out, err = capsys.readouterr()
    assert out == "" and err == ""
    assert terminal.getvalue() == ""


def test_verbose_1_not_a_terminal_prints_epoch_lines_and_no_bars(data, capsys):
    X, y = data
    clf = MultiAttributeClassifier(max_epochs=3, freeze=2, verbose=1, **TINY).fit(X, y)
    clf.predict(X)
    out, err = capsys.readouterr()
    lines = out.splitlines()
    header = lines[0].split()
    assert header[:2] == ["epoch", "train_loss"]
    for name in ("valid_loss", "valid_acc_gender", "valid_acc_age", "valid_acc_race"):
        assert name in header
    rows = [line.split() for line in lines[2:]]
    assert [r[0] for r in rows] == ["1", "2", "3"]
    # the printed losses are the history's, without colour codes
    column = header.index("valid_loss")
    assert [float(r[column]) for r in rows] == pytest.approx(
        clf.history_[:, "valid_loss"], abs=1e-4
    )
    assert "\x1b[" not in out
    assert not BAR.search(err) and "\r" not in err


def test_the_epoch_that_stops_training_early_is_printed(data, capsys):
    X, y = data
    clf = MultiAttributeClassifier(max_epochs=30, patience=1, lr=0.5, verbose=1, **TINY).fit(X, y)
    assert len(clf.history_) < 30  # stopped early
    rows = [
        line.split()[0]
        for line in capsys.readouterr().out.splitlines()
        if line.strip() and line.split()[0].isdigit()
    ]
    assert rows == [str(e) for e in clf.history_[:, "epoch"]]


def test_verbose_1_on_a_terminal_draws_feature_epoch_and_predict_bars(data, monkeypatch, capsys):
    terminal = fake_terminal(monkeypatch)
    X, y = data
    feature_cache.clear()  # earlier tests cached these very features
    clf = MultiAttributeClassifier(max_epochs=2, freeze=2, verbose=1, **TINY).fit(X, y)
    assert clf.used_feature_cache_
    clf.predict(X[:10])
    bars = terminal.getvalue()
    n_train, n_valid = 36, 4  # validation_fraction=0.1 of 40
    assert "features:   0%|" in bars and f"0/{n_train}" in bars  # the training images' features
    assert f"0/{n_valid}" in bars  # then the validation images'
    n_batches = -(-n_train // 16) + -(-n_valid // 16)
    for epoch in (1, 2):
        assert f"epoch {epoch}:   0%|" in bars
    assert f"0/{n_batches} [" in bars
    assert "predict:   0%|" in bars and "0/10 [" in bars
    out, _ = capsys.readouterr()
    assert len(out.splitlines()) == 4  # header, rule, two epochs: stdout holds no bar


def test_verbose_2_draws_bars_when_not_a_terminal(data, capsys):
    X, y = data
    MultiAttributeClassifier(max_epochs=1, verbose=2, **TINY).fit(X, y).predict(X[:5])
    _, err = capsys.readouterr()
    assert "epoch 1:" in err and "predict:" in err and BAR.search(err)


def test_features_already_cached_draw_no_bar(data, monkeypatch):
    terminal = fake_terminal(monkeypatch)
    X, y = data
    params = dict(max_epochs=1, freeze=2, verbose=1, validation_fraction=0, **TINY)
    feature_cache.clear()
    MultiAttributeClassifier(**params).fit(X, y)
    assert "features" in terminal.getvalue()
    terminal.seek(0)
    terminal.truncate()
    MultiAttributeClassifier(**params).fit(X, y)  # the same features: served from the cache
    assert "features" not in terminal.getvalue()
    assert "epoch 1" in terminal.getvalue()


def test_feature_cache_progress_contract():
    """progress(total) once with the number of views to compute; update() adds up to it; closed."""
    torch.manual_seed(0)
    module = MultiHeadNetwork(build_backbone("tiny", weights=None), [2], n_frozen=2)
    X, _ = make_synthetic_faces(10, image_size=16, random_state=1)
    source = as_image_source(X)
    calls = []

    class Recorder:
        def __init__(self, total):
            self.total, self.updates, self.closed = total, [], False
            calls.append(self)

        def update(self, n):
            self.updates.append(n)

        def close(self):
            self.closed = True

    cache = FeatureCache()
    keys = source.cache_keys()
    from gar_sklearn.augmentation import RandomFlip

    common = dict(backbone="tiny", image_size=16, batch_size=4, progress=Recorder)
    cache.get(module, source, keys[:6], n_views=2, augmenter=RandomFlip(p=1.0), **common)
    assert [c.total for c in calls] == [12]
    assert calls[0].updates == [4, 4, 4] and calls[0].closed
    cache.get(module, source, keys[:6], n_views=2, augmenter=RandomFlip(p=1.0), **common)
    assert len(calls) == 1  # nothing to compute: no bar
    cache.get(module, source, keys, n_views=2, augmenter=RandomFlip(p=1.0), **common)
    assert calls[1].total == 8 and sum(calls[1].updates) == 8  # only the 4 new images


# ---------------------------------------------------------------- face detection
def test_face_cropper_bar_over_photos(monkeypatch):
    terminal = fake_terminal(monkeypatch)
    pytest.importorskip("cv2")
    from gar_sklearn.preprocessing import FaceCropper

    photos = np.full((3, 40, 40, 3), 128, np.uint8)
    FaceCropper(on_no_face="ignore").transform(photos)
    assert terminal.getvalue() == ""  # verbose=0 by default
    FaceCropper(on_no_face="ignore", verbose=1).transform(photos)
    assert "faces:   0%|" in terminal.getvalue() and "0/3 [" in terminal.getvalue()


def test_face_cropper_bar_hidden_when_not_a_terminal(capsys):
    pytest.importorskip("cv2")
    from gar_sklearn.preprocessing import FaceCropper

    FaceCropper(on_no_face="ignore", verbose=1).transform(np.full((2, 40, 40, 3), 128, np.uint8))
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("verbose", [-1, 0.5, "yes"])
def test_face_cropper_rejects_a_bad_verbose(verbose):
    pytest.importorskip("cv2")
    from gar_sklearn.preprocessing import FaceCropper

    with pytest.raises(ValueError, match=r"The 'verbose' parameter must be an int >= 0. Got"):
        FaceCropper(verbose=verbose).fit()


# ---------------------------------------------------------------- plain lines (not a terminal)
PLAIN = re.compile(r"^(\w[\w ]*): (\d+)/(\d+) (img|batch) \((\d+)%\), [\d.e+-]+ \4/s")


def test_plain_progress_lines_when_stderr_is_not_a_terminal(data, monkeypatch, capsys):
    from gar_sklearn import _progress

    monkeypatch.setattr(_progress, "PLAIN_INTERVAL_S", 0.0)  # a line at every update
    X, y = data
    feature_cache.clear()
    clf = MultiAttributeClassifier(max_epochs=2, freeze=2, verbose=1, **TINY).fit(X, y)
    clf.predict(X[:10])
    out, err = capsys.readouterr()
    assert "\r" not in err and not BAR.search(err)
    lines = err.splitlines()
    done = {}
    for line in lines:
        match = PLAIN.match(line)
        if match:
            desc, n, total = match[1], int(match[2]), int(match[3])
            assert 0 < n <= total and int(match[5]) == round(100 * n / total)
            assert n == total or " left" in line
            done[desc] = max(done.get(desc, 0), n)
    n_batches = -(-36 // 16) + -(-4 // 16)  # training and validation batches of an epoch
    assert done == {"features": 36, "epoch 1": n_batches, "epoch 2": n_batches, "predict": 10}
    assert "train_loss=" in err  # the epoch lines carry the running loss
    assert [line for line in lines if line.startswith("predict: done, 10 img in ")]
    assert len(out.splitlines()) == 4  # the epoch table on stdout, unchanged


def test_plain_progress_is_silent_for_short_steps(data, capsys):
    X, y = data
    MultiAttributeClassifier(max_epochs=1, verbose=1, **TINY).fit(X, y).predict(X)
    assert capsys.readouterr().err == ""  # each step ends within PLAIN_INTERVAL_S


def test_plain_progress_counts_an_iterable_and_closes_once():
    from gar_sklearn import _progress

    stream = io.StringIO()
    bar = _progress.PlainProgress(desc="faces", iterable=range(3), stream=stream)
    bar.last_line -= _progress.PLAIN_INTERVAL_S  # the first update is due for a line
    assert list(bar) == [0, 1, 2]
    bar.close()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("faces: 1/3 img (33%), ") and lines[0].endswith(" left")
    assert len(lines) == 2 and lines[1].startswith("faces: done, 3 img in 0:0")


def test_verbose_1_returns_plain_progress_only_off_a_terminal(monkeypatch):
    from gar_sklearn import _progress

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert isinstance(progress_bar(1, total=3), _progress.PlainProgress)
    assert not isinstance(progress_bar(0, total=3), _progress.PlainProgress)
    assert not isinstance(progress_bar(2, total=3), _progress.PlainProgress)
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert not isinstance(progress_bar(1, total=3), _progress.PlainProgress)


# ---------------------------------------------------------------- the fusion model's parts
def test_fusion_names_each_part_before_its_epoch_table(capsys):
    from gar_sklearn import GenderFusionClassifier

    X, y = make_synthetic_faces(60, image_size=16, gender_dependent=True, random_state=0)
    part = dict(TINY, max_epochs=1, verbose=1)
    fusion = GenderFusionClassifier(
        strategy="separate",  # the write-up's design: a network per part
        gender_estimator=MultiAttributeClassifier(attributes=("gender",), **part),
        specialist=MultiAttributeClassifier(attributes=("age", "race"), **part),
        random_state=0,
    ).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    headings = [line for line in lines if line.startswith("== ")]
    sizes = fusion.train_sizes_
    assert headings == [
        "== gender classifier (gender, 60 images) ==",
        f"== specialist gender=Male (age, race, {sizes['Male']} images) ==",
        f"== specialist gender=Female (age, race, {sizes['Female']} images) ==",
    ]
    # each heading is followed by its part's table: header, rule, one epoch
    for heading in headings:
        at = lines.index(heading)
        assert lines[at + 1].split()[:2] == ["epoch", "train_loss"]
        assert lines[at + 3].split()[0] == "1"
    shared = GenderFusionClassifier(
        gender_estimator=MultiAttributeClassifier(attributes=("gender",), **part),
        specialist=MultiAttributeClassifier(attributes=("race",), **part),
        gender_from="gender_estimator",
        random_state=0,
    ).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line.startswith("== ")] == [
        "== gender classifier (gender, 60 images) ==",
        "== shared network (gender, race@Male, race@Female, 60 images) ==",
    ]
    assert shared.strategy_ == "shared"
    quiet = dict(part, verbose=0)
    GenderFusionClassifier(
        strategy="separate",  # the write-up's design: a network per part
        gender_estimator=MultiAttributeClassifier(attributes=("gender",), **quiet),
        specialist=MultiAttributeClassifier(attributes=("age", "race"), **quiet),
        random_state=0,
    ).fit(X, y)
    assert capsys.readouterr().out == ""
