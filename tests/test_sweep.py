"""tinygrad_lite.sweep: the same numbers bit for bit in this process, on joblib's worker
processes and on a Dask cluster; progress lines; errors that name the configuration."""
import re
import sys

import numpy as np
import pytest

from tinygrad_lite.data import spiral
from tinygrad_lite.models import TwoLayerNet
from tinygrad_lite.sweep import SweepError, SweepPoint, sweep

LRS, REGS = [0.1, 1.0], [1e-4, 1e-3]
SMALL = dict(hidden_size=20, std=0.1, learning_rate_decay=0.99, num_iters=100, batch_size=50)
LINE = re.compile(r"^lr \d\.\d{6}e[+-]\d\d reg \d\.\d{6}e[+-]\d\d train accuracy: \d\.\d{6} "
                  r"val accuracy: \d\.\d{6}$")


@pytest.fixture(scope="module")
def data():
    X, y = spiral(30, 3, seed=0)
    X_val, y_val = spiral(30, 3, seed=1)
    return X, y, X_val, y_val


@pytest.fixture(scope="module")
def sequential(data):
    return sweep(*data, LRS, REGS, **SMALL)


def assert_same(a, b):
    assert a.points == b.points  # accuracies and every history entry, compared exactly
    assert a.best == b.best
    for k in ("W1", "b1", "W2", "b2"):
        assert np.array_equal(a.best_net.params[k], b.best_net.params[k]), k


def test_each_configuration_is_seed_001s_loop(data, sequential):
    X, y, X_val, y_val = data
    for point in sequential.points:
        np.random.seed(0)
        net = TwoLayerNet(2, 20, 3, std=0.1)
        stats = net.train(X, y, X_val, y_val, learning_rate=point.learning_rate, learning_rate_decay=0.99,
                          reg=point.reg, num_iters=100, batch_size=50)
        assert stats == point.stats
        assert point.train_accuracy == np.mean(net.predict(X) == y)
        assert point.val_accuracy == np.mean(net.predict(X_val) == y_val)
    assert [(p.learning_rate, p.reg) for p in sequential.points] == [(lr, reg) for lr in LRS for reg in REGS]
    assert sequential.results == {(p.learning_rate, p.reg): (p.train_accuracy, p.val_accuracy)
                                  for p in sequential.points}
    best = max(sequential.points, key=lambda p: p.val_accuracy)
    assert sequential.best == best and best.learning_rate == 1.0
    assert sequential.best_net.predict(X_val).tolist() != [0] * len(X_val)


def test_two_joblib_workers_give_the_same_numbers(data, sequential):
    assert_same(sweep(*data, LRS, REGS, **SMALL, workers=2), sequential)


def test_more_workers_than_configurations_and_other_options(data):
    kw = dict(SMALL, l2_half=True, dtype=np.float32, seed=7)
    one = sweep(*data, [0.5], [1e-3, 0.0], **kw)
    assert_same(sweep(*data, [0.5], [1e-3, 0.0], **kw, workers=5), one)
    assert one.best_net.params["W1"].dtype == np.float32 and one.best_net.l2_half


def test_the_callers_random_state_is_left_alone(data):
    np.random.seed(123)
    expected = np.random.rand(3)
    np.random.seed(123)
    sweep(*data, [1.0], REGS, **SMALL)
    assert np.array_equal(np.random.rand(3), expected)


def test_a_tie_goes_to_the_first_configuration_of_the_grid(data):
    # lr this small leaves every net at its initial predictions: one val accuracy for all
    result = sweep(*data, [2e-12, 1e-12], [0.0, 1e-3], **SMALL, workers=2)
    assert len({p.val_accuracy for p in result.points}) == 1
    assert (result.best.learning_rate, result.best.reg) == (2e-12, 0.0)


def test_a_progress_line_per_finished_configuration(data, sequential, capsys):
    seen = []
    sweep(*data, LRS, REGS, **SMALL, workers=2, verbose=True, on_result=seen.append)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and all(LINE.match(line) for line in lines), lines
    assert sorted(lines) == sorted(str(p) for p in sequential.points)
    assert sorted(seen, key=lambda p: (p.learning_rate, p.reg)) == list(sequential.points)
    point = SweepPoint(1e-3, 0.5, 0.25, 0.5, {})
    assert str(point) == "lr 1.000000e-03 reg 5.000000e-01 train accuracy: 0.250000 val accuracy: 0.500000"


def test_a_failing_configuration_is_named_and_stops_the_sweep(data, monkeypatch):
    train = TwoLayerNet.train

    def fails_at_lr_1(self, *args, learning_rate, **kw):
        if learning_rate == 1.0:
            raise FloatingPointError("overflow in exp")
        return train(self, *args, learning_rate=learning_rate, **kw)

    monkeypatch.setattr(TwoLayerNet, "train", fails_at_lr_1)
    np.random.seed(5)
    state = np.random.get_state()[1].copy()
    seen = []
    with pytest.raises(SweepError, match=r"configuration lr 1 reg 0.0001 failed: FloatingPointError: "
                                         r"overflow in exp") as err:
        sweep(*data, LRS, REGS, **SMALL, on_result=seen.append)
    assert err.value.configurations == [(1.0, 1e-4)]
    assert [p.learning_rate for p in seen] == [0.1, 0.1]  # the configurations before it only
    assert np.array_equal(np.random.get_state()[1], state)


def test_an_error_in_a_worker_process_names_its_configuration(data):
    # 16 TiB of W1: every worker's allocation fails, the first to report stops the sweep
    with pytest.raises(SweepError, match=r"configuration lr \S+ reg \S+ failed: MemoryError") as err:
        sweep(*data, LRS, REGS, **dict(SMALL, hidden_size=2 ** 40), workers=2)
    assert len(err.value.configurations) == 1
    assert err.value.configurations[0] in [(lr, reg) for lr in LRS for reg in REGS]


def test_an_error_in_on_result_propagates(data):
    def boom(point):
        raise KeyError("from the callback")
    with pytest.raises(KeyError, match="from the callback"):
        sweep(*data, LRS, REGS, **SMALL, workers=2, on_result=boom)


@pytest.mark.parametrize("kw, error, match", [
    (dict(workers=0), ValueError, "workers must be an int >= 1, got 0"),
    (dict(workers=-2), ValueError, "workers must be an int >= 1"),
    (dict(workers=True), TypeError, "workers must be an int"),
    (dict(workers=2.0), TypeError, "workers must be an int"),
    (dict(workers=2, scheduler="tcp://127.0.0.1:8786"), ValueError, "not both"),
    (dict(num_iters=-1), ValueError, "num_iters must be an int >= 0"),
    (dict(hidden_size=0), ValueError, "hidden_size must be an int >= 1"),
    (dict(seed=2 ** 32), ValueError, "seed must be < 2\\*\\*32"),
    (dict(dtype=np.int64), TypeError, "dtype must be a floating type"),
    (dict(std=float("nan")), ValueError, "std must be finite"),
    (dict(on_result="print"), TypeError, "on_result must be callable"),
    (dict(scheduler=8786), TypeError, "scheduler must be an address"),
    (dict(scheduler="localhost"), ValueError, "scheduler 'localhost' is not a Dask scheduler address .*missing port"),
    (dict(scheduler="http://h:1"), ValueError, "scheduler 'http://h:1' is not a Dask scheduler address"),
])
def test_bad_arguments_fail_before_anything_runs(data, kw, error, match):
    if "scheduler" in kw and "workers" not in kw:
        pytest.importorskip("distributed")
    with pytest.raises(error, match=match):
        sweep(*data, LRS, REGS, **dict(SMALL, **kw))


@pytest.mark.parametrize("lrs, regs, error, match", [
    ([], REGS, ValueError, "learning_rates is empty"),
    ([1.0, 1.0], REGS, ValueError, "learning_rates repeats 1.0"),
    ([0.0], REGS, ValueError, "learning_rates must be > 0, got 0.0"),
    ([float("inf")], REGS, ValueError, r"learning_rates\[0\] must be finite"),
    (LRS, [-1e-3], ValueError, "regularization_strengths must be >= 0"),
    (LRS, ["1e-3"], TypeError, r"regularization_strengths\[0\] must be a number, got str"),
    (LRS, 1e-3, TypeError, "regularization_strengths must be a sequence"),
])
def test_bad_grids(data, lrs, regs, error, match):
    with pytest.raises(error, match=match):
        sweep(*data, lrs, regs, **SMALL)


def test_bad_data(data):
    X, y, X_val, y_val = data
    with pytest.raises(ValueError, match=r"X_val has 3 columns, X has 2"):
        sweep(X, y, np.c_[X_val, X_val[:, :1]], y_val, LRS, REGS)
    with pytest.raises(ValueError, match=r"X must be a 2-D array \(N, D\)"):
        sweep(X[:, 0], y, X_val, y_val, LRS, REGS)
    with pytest.raises(ValueError, match=r"sweep: y must have shape \(90,\)"):
        sweep(X, y[:-1], X_val, y_val, LRS, REGS)
    with pytest.raises(TypeError, match=r"sweep: y_val must hold integer class labels"):
        sweep(X, y, X_val, y_val.astype(float), LRS, REGS)
    with pytest.raises(ValueError, match=r"sweep: y has labels outside \[0, 2\)"):
        sweep(X, y, X_val, y_val, LRS, REGS, num_classes=2)


def test_scheduler_without_dask_names_the_extra(data, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # what `import distributed` sees when absent
    with pytest.raises(ImportError, match=r"pip install 'tinygrad_lite\[cluster\]'"):
        sweep(*data, LRS, REGS, **SMALL, scheduler="tcp://127.0.0.1:8786")


# ------------------------------------------------------------------ Dask distributed

@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    # Threads of this process: starts in a fraction of a second. Two threads in one
    # worker run two configurations of the sweep in one process at once.
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        yield cluster, client


def test_a_dask_cluster_gives_the_same_numbers(data, sequential, cluster, capsys):
    local_cluster, client = cluster
    assert_same(sweep(*data, LRS, REGS, **SMALL, scheduler=client, verbose=True), sequential)
    lines = capsys.readouterr().out.splitlines()
    assert sorted(lines) == sorted(str(p) for p in sequential.points)
    assert_same(sweep(*data, LRS, REGS, **SMALL, scheduler=local_cluster.scheduler_address), sequential)
    assert client.status == "running"  # a client passed in is the caller's: left open


def test_a_failing_configuration_on_dask_is_named(data, cluster, monkeypatch):
    train = TwoLayerNet.train

    def fails_at_reg_0001(self, *args, reg, **kw):
        if reg == 1e-3:
            raise ValueError("bad reg")
        return train(self, *args, reg=reg, **kw)

    monkeypatch.setattr(TwoLayerNet, "train", fails_at_reg_0001)  # the workers are threads of this process
    with pytest.raises(SweepError, match=r"configuration lr \S+ reg 0.001 failed: ValueError: bad reg") as err:
        sweep(*data, LRS, REGS, **SMALL, scheduler=cluster[1])
    assert err.value.configurations[0][1] == 1e-3


def test_a_diverging_configuration_is_recorded_and_the_sweep_goes_on(data, capsys):
    result = sweep(*data, [1.0, 1e6], [1e-4], **SMALL, workers=2, verbose=True)
    fine, diverged = result.points
    assert fine.diverged is None and result.best == fine
    assert re.fullmatch(r"the loss is (nan|inf) at iteration \d+", diverged.diverged)
    assert np.isnan(diverged.val_accuracy) and np.isnan(diverged.train_accuracy) and diverged.stats == {}
    alone = sweep(*data, [1.0], [1e-4], **SMALL)
    assert alone.best == fine  # the diverged configuration changed nothing else
    lines = capsys.readouterr().out.splitlines()
    assert "lr 1.000000e+06 reg 1.000000e-04 diverged: the loss is " in "\n".join(lines)


def test_every_configuration_diverging_is_an_error(data):
    with pytest.raises(SweepError, match=r"every configuration diverged \(\(lr 1e\+06, reg 0.0001\), "
                                         r"\(lr 1e\+07, reg 0.0001\)\); lower the learning rates"):
        sweep(*data, [1e6, 1e7], [1e-4], **SMALL)
