"""TwoLayerNet against the cs231n notebook's numbers (seeds 000 and 001)."""
import importlib.util
import os

import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import eval_numerical_gradient, reference, rel_error
from tinygrad_lite.data import spiral
from tinygrad_lite.models import TwoLayerNet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CORRECT_SCORES = reference.TOY_CORRECT_SCORES
CORRECT_LOSS = reference.TOY_CORRECT_LOSS


def init_toy_model(**kw):
    np.random.seed(0)
    return TwoLayerNet(4, 10, 3, std=1e-1, **kw)


def init_toy_data():
    """Seed 001's toy data drawn from the global stream, as the notebook does: training
    then samples its batches from where the data left that stream."""
    np.random.seed(1)
    return reference.init_toy_data(seed=None)


@pytest.fixture
def toy():
    net = init_toy_model()
    X, y = init_toy_data()
    return net, X, y


def test_toy_scores(toy):
    net, X, y = toy
    scores = net.loss(X)
    assert isinstance(scores, np.ndarray) and scores.shape == (5, 3)
    assert np.sum(np.abs(scores - CORRECT_SCORES)) < 1e-7


@pytest.mark.parametrize("l2_half, reg", [(False, 0.05), (True, 0.1)])
def test_toy_loss_both_conventions(l2_half, reg):
    net = init_toy_model(l2_half=l2_half)
    X, y = init_toy_data()
    loss, grads = net.loss(X, y, reg=reg)
    assert isinstance(loss, float)
    assert abs(loss - CORRECT_LOSS) < 1e-10
    assert list(grads) == ["W1", "b1", "W2", "b2"]


@pytest.mark.parametrize("l2_half", [False, True])
def test_toy_gradients_match_numerical(l2_half):
    net = init_toy_model(l2_half=l2_half)
    X, y = init_toy_data()
    loss, grads = net.loss(X, y, reg=0.05)
    for name in grads:
        f = lambda W: net.loss(X, y, reg=0.05)[0]  # noqa: E731
        num = eval_numerical_gradient(f, net.params[name], verbose=False)
        assert grads[name].shape == net.params[name].shape
        assert rel_error(num, grads[name]) < 1e-8, name


def _hand_grads(params, X, y, reg, half):
    """Seed 000/001's hand-written backward pass, to cross-check the engine."""
    return reference.cs231n_two_layer(params, X, y, reg, l2_half=half)


@pytest.mark.parametrize("l2_half", [False, True])
def test_engine_gradients_equal_hand_backprop(l2_half):
    net = init_toy_model(l2_half=l2_half)
    X, y = init_toy_data()
    loss, grads = net.loss(X, y, reg=0.3)
    hand_loss, hand = _hand_grads(net.params, X, y, 0.3, l2_half)
    assert abs(loss - hand_loss) < 1e-12
    for k in hand:
        np.testing.assert_allclose(grads[k], hand[k], rtol=1e-10, atol=1e-13)


def test_toy_training_as_the_notebook(toy):
    net, X, y = toy
    stats = net.train(X, y, X, y, learning_rate=1e-1, reg=5e-6, num_iters=100, verbose=False)
    assert stats["loss_history"][-1] < 0.02
    assert len(stats["loss_history"]) == 100
    # N=5 < batch 200: iterations_per_epoch = max(5/200, 1) = 1, so the accuracy is
    # recorded (and the learning rate decayed) at every iteration.
    assert len(stats["train_acc_history"]) == len(stats["val_acc_history"]) == 100
    # The notebook re-creates the toy model in its training cell: same random stream,
    # same final loss, digit for digit.
    net = init_toy_model()
    stats = net.train(X, y, X, y, learning_rate=1e-1, reg=5e-6, num_iters=100, verbose=False)
    assert abs(stats["loss_history"][-1] - 0.017149607938732093) < 1e-12


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_train_compiled_gives_eager_numbers(dtype):
    """compile=True replays one traced step: the same stats, parameters and gradients."""
    X, y = spiral(100, 3, seed=0)
    X_val, y_val = spiral(50, 3, seed=1)
    runs = []
    for compiled in (False, True):
        np.random.seed(0)
        net = TwoLayerNet(2, 50, 3, std=1e-2, dtype=dtype)
        np.random.seed(1)  # the same batches
        stats = net.train(X.astype(dtype), y, X_val.astype(dtype), y_val, learning_rate=1.0,
                          learning_rate_decay=0.9, reg=1e-3, num_iters=200, batch_size=64,
                          compile=compiled)
        runs.append((stats, net))
    (eager, eager_net), (stats, net) = runs
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(stats["loss_history"], eager["loss_history"], rtol=tol)
    assert stats["train_acc_history"] == eager["train_acc_history"]
    assert stats["val_acc_history"] == eager["val_acc_history"]
    assert stats["loss_history"][-1] < 0.8 * stats["loss_history"][0]  # it trains
    for k in ("W1", "b1", "W2", "b2"):
        np.testing.assert_allclose(net.params[k], eager_net.params[k], rtol=tol, atol=tol * 1e-3)
        np.testing.assert_allclose(net._by_name[k].grad, eager_net._by_name[k].grad, rtol=tol,
                                   atol=tol * 1e-3)


def test_train_compiled_stops_a_diverging_run_as_eagerly():
    X, y = spiral()
    errors = []
    for compiled in (False, True):
        np.random.seed(0)
        net = TwoLayerNet(2, 100, 3, std=1e-1)
        before = net.params.copy()
        with pytest.raises(tl.models.TrainingDivergedError) as e, np.errstate(all="ignore"):
            net.train(X, y, X, y, learning_rate=1e6, num_iters=2000, compile=compiled)
        errors.append(e.value.iteration)
        assert all(np.array_equal(before[k], net.params[k]) for k in before)
    assert errors[0] == errors[1]


def test_lr_decay_fires_once_per_epoch_including_it0():
    X, y = spiral(100, 3, seed=0)  # N=300, batch 200: iterations_per_epoch = 1.5
    np.random.seed(0)
    net = TwoLayerNet(2, 8, 3, std=1e-2)
    stats = net.train(X, y, X, y, learning_rate=0.5, num_iters=10, batch_size=200)
    assert len(stats["val_acc_history"]) == 4  # it = 0, 3, 6, 9 (it % 1.5 == 0)


def test_lr_decay_matches_cs231n_loop():
    """The same loop written out by hand (cs231n's train()) gives identical parameters."""
    X, y = spiral(20, 3, seed=3)
    np.random.seed(5)
    net = TwoLayerNet(2, 6, 3, std=1e-1)
    ref = {k: v.copy() for k, v in net.params.items()}
    np.random.seed(7)
    net.train(X, y, X, y, learning_rate=0.3, learning_rate_decay=0.5, reg=1e-3, num_iters=7, batch_size=25)
    np.random.seed(7)
    lr, ipe = 0.3, max(60 / 25, 1)
    for it in range(7):
        idx = np.random.choice(60, 25)
        _, g = _hand_grads(ref, X[idx], y[idx], 1e-3, False)
        for k in ref:
            ref[k] += -lr * g[k]
        if it % ipe == 0:
            lr *= 0.5
    for k in ref:
        np.testing.assert_allclose(net.params[k], ref[k], rtol=1e-10, atol=1e-14)


def test_batch_larger_than_data_samples_with_replacement(toy):
    net, X, y = toy
    stats = net.train(X, y, X, y, num_iters=3, batch_size=50)
    assert len(stats["loss_history"]) == 3


def test_params_dict_is_live(toy):
    net, X, y = toy
    W1 = net.params["W1"]
    assert W1 is net.fc1.W.data and net.params["b2"] is net.fc2.b.data
    W1 += 1.0  # in place through the dict: the module sees it
    np.testing.assert_array_equal(net.fc1.W.data, W1)
    net.fc2.W.data *= 2  # in place through the module: the dict sees it
    assert net.params["W2"] is net.fc2.W.data
    # cs231n's update spelling: += on the dict entry
    before = net.params["b1"].copy()
    net.params["b1"] += -0.5 * np.ones(10)
    np.testing.assert_array_equal(net.fc1.b.data, before - 0.5)
    # assignment replaces the module's weight
    new = np.zeros((4, 10))
    net.params["W1"] = new
    assert net.fc1.W.data is new
    np.testing.assert_allclose(
        net.loss(X), np.tile(net.params["b2"] + np.maximum(net.params["b1"], 0) @ net.params["W2"], (5, 1)))
    assert sorted(net.params) == ["W1", "W2", "b1", "b2"] and len(net.params) == 4


def test_params_assignment_errors(toy):
    net, _, _ = toy
    with pytest.raises(ValueError, match=r"params\['W1'\].*\(4, 10\).*\(10, 4\)"):
        net.params["W1"] = np.zeros((10, 4))
    with pytest.raises(KeyError, match="W3"):
        net.params["W3"] = np.zeros(3)
    with pytest.raises(TypeError, match="floating"):
        net.params["b1"] = np.array(["a"] * 10)
    with pytest.raises(TypeError):
        del net.params["W1"]


def test_parameter_names_for_diagrams(toy):
    net, X, y = toy
    assert [p.name for p in net.parameters()] == ["W1", "b1", "W2", "b2"]
    assert list(dict(net.named_parameters())) == ["W1", "b1", "W2", "b2"]
    assert list(net.state_dict()) == ["W1", "b1", "W2", "b2"]
    root = net.loss_tensor(X, y, reg=0.05)
    nodes = tl.backward_order(root)
    groups = {(g.name, g.kind) for n in nodes for g in n.groups}
    assert {("fc1", "module"), ("relu", "module"), ("fc2", "module"),
            ("cross_entropy", "function"), ("l2_penalty", "function")} <= groups
    leaves = {n.name for n in nodes if n.op is None}
    assert leaves == {"W1", "b1", "W2", "b2"}


def test_loss_without_labels_records_no_graph(toy):
    net, X, _ = toy
    scores = net.loss(X)
    assert type(scores) is np.ndarray
    assert all(p.grad is None for p in net.parameters())


def test_predict(toy):
    net, X, _ = toy
    np.testing.assert_array_equal(net.predict(X), np.argmax(CORRECT_SCORES, axis=1))


def test_loss_called_twice_gives_fresh_grads(toy):
    net, X, y = toy
    _, g1 = net.loss(X, y, reg=0.05)
    g1 = {k: v.copy() for k, v in g1.items()}
    _, g2 = net.loss(X, y, reg=0.05)
    for k in g1:
        np.testing.assert_array_equal(g1[k], g2[k])  # not accumulated


def test_spiral_training_accuracy_with_example_defaults():
    spec = importlib.util.spec_from_file_location("two_layer", os.path.join(ROOT, "examples", "two_layer.py"))
    ex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ex)
    d = ex.DEFAULTS["spiral"]
    X, y = spiral()
    X_val, y_val = spiral(seed=1)
    np.random.seed(0)
    net = TwoLayerNet(2, d["hidden_size"], 3, std=d["std"])
    net.train(X, y, X_val, y_val, learning_rate=d["lr"], learning_rate_decay=d["lr_decay"],
              reg=d["reg"], num_iters=d["iters"], batch_size=d["batch_size"])
    assert (net.predict(X) == y).mean() > 0.95
    assert (net.predict(X_val) == y_val).mean() > 0.9


def test_save_load_round_trip(toy, tmp_path):
    net, X, y = toy
    path = net.save(tmp_path / "net")
    assert path.endswith(".npz") and os.path.exists(path)
    np.random.seed(123)
    other = TwoLayerNet(4, 10, 3)
    W1_array = other.params["W1"]
    other.load(path)
    assert other.params["W1"] is W1_array  # loaded in place
    np.testing.assert_array_equal(other.loss(X), net.loss(X))
    with np.load(path, allow_pickle=False) as f:
        assert sorted(f.files) == ["W1", "W2", "b1", "b2"]
    with pytest.raises(ValueError, match="W1 has shape"):
        TwoLayerNet(5, 10, 3).load(path)


def test_clear_errors(toy):
    net, X, y = toy
    with pytest.raises(ValueError, match=r"X must have shape \(N, 4\), got \(5, 3\)"):
        net.loss(X[:, :3], y)
    images = np.zeros((2, 2, 2, 1))
    with pytest.raises(ValueError, match="reshape"):
        net.loss(images)
    with pytest.raises(TypeError, match="integer"):
        net.loss(X, y.astype(float))
    with pytest.raises(IndexError, match="label 3"):
        net.loss(X, np.array([0, 1, 3, 2, 1]))
    with pytest.raises(ValueError, match=r"labels must have shape \(5,\)"):
        net.loss(X, y[:4])
    with pytest.raises(ValueError, match="batch_size"):
        net.train(X, y, X, y, batch_size=0)
    with pytest.raises(ValueError, match=r"y_val must have shape \(5,\)"):
        net.train(X, y, X, y[:2])
    with pytest.raises(ValueError, match="outside"):
        net.train(X, y + 5, X, y)


def test_verbose_off_terminal_prints_cs231n_lines(toy, capsys):
    net, X, y = toy
    net.train(X, y, X, y, num_iters=101, verbose=True)
    out = capsys.readouterr().out
    assert "iteration 0 / 101: loss" in out and "iteration 100 / 101: loss" in out


def test_module_mode_switch_still_works(toy):
    net, _, _ = toy
    assert net.train(False) is net and not net.training and not net.fc1.training
    net.train()
    assert net.fc1.training


def test_float32_net_stays_float32():
    np.random.seed(0)
    net = TwoLayerNet(4, 10, 3, std=1e-1, dtype=np.float32)
    X, y = init_toy_data()
    loss, grads = net.loss(X.astype(np.float32), y, reg=0.05)
    assert all(g.dtype == np.float32 for g in grads.values())
    assert all(p.dtype == np.float32 for p in net.params.values())
    assert abs(loss - CORRECT_LOSS) < 1e-5
    net.train(X.astype(np.float32), y, X.astype(np.float32), y, num_iters=3)
    assert net.params["W1"].dtype == np.float32
    with pytest.raises(TypeError, match="floating"):
        TwoLayerNet(4, 10, 3, dtype=np.int32)


def test_load_returns_the_net_and_from_file_builds_one(toy, tmp_path):
    net, X, y = toy
    path = net.save(tmp_path / "net.npz")
    other = TwoLayerNet(4, 10, 3)
    assert other.load(path) is other  # net = TwoLayerNet(D, H, C).load(path)
    np.random.seed(7)
    before = np.random.get_state()[1].copy()
    built = TwoLayerNet.from_file(path, l2_half=True)
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # no draws
    assert (built.input_size, built.hidden_size, built.output_size, built.l2_half) == (4, 10, 3, True)
    np.testing.assert_array_equal(built.loss(X), net.loss(X))
    assert [p.name for p in built.parameters()] == ["W1", "b1", "W2", "b2"]
    assert TwoLayerNet.from_file(str(tmp_path / "net")).params["W1"].dtype == np.float64
    net32 = TwoLayerNet(4, 6, 2, dtype=np.float32)
    assert TwoLayerNet.from_file(net32.save(tmp_path / "n32")).params["W2"].dtype == np.float32
    with pytest.raises(FileNotFoundError, match="no such file"):
        TwoLayerNet.from_file(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", W=np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"holds \['W'\], expected"):
        TwoLayerNet.from_file(tmp_path / "other.npz")


# ----------------------------------------------------------------- a diverging run stops, whole

def test_a_loss_that_is_not_finite_stops_training_and_restores_the_net():
    import warnings
    X, y = spiral()
    np.random.seed(0)
    net = TwoLayerNet(2, 100, 3, std=1e-1)
    before = net.params.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not one NumPy overflow warning on the way
        with pytest.raises(tl.models.TrainingDivergedError) as e:
            net.train(X, y, X, y, learning_rate=1e6, num_iters=2000)
    err = e.value
    assert isinstance(err, FloatingPointError) and err.learning_rate == 1e6
    assert 0 < err.iteration < 2000 and not np.isfinite(err.loss)
    assert f"at iteration {err.iteration} of 2000" in str(err) and "lower learning_rate" in str(err)
    assert all(np.array_equal(before[k], net.params[k]) for k in before)
    assert all(p.grad is None for p in net.parameters())
    stats = net.train(X, y, X, y, learning_rate=1.0, num_iters=50)  # the net trains on from there
    assert np.isfinite(stats["loss_history"]).all()


def test_weights_that_overflow_in_the_last_step_are_caught_too():
    np.random.seed(0)
    X, y = 1e3 * np.random.randn(20, 4), np.arange(20) % 3
    net = init_toy_model()
    with pytest.raises(tl.models.TrainingDivergedError, match="nan or inf after the last step"):
        net.train(X, y, X, y, learning_rate=1e307, num_iters=1)
    np.testing.assert_array_equal(net.params["W1"], init_toy_model().params["W1"])


def test_from_state_dict_builds_a_net_of_copies_without_drawing(toy):
    net, X, y = toy
    state = net.state_dict()
    np.random.seed(3)
    before = np.random.get_state()[1].copy()
    built = TwoLayerNet.from_state_dict(state, l2_half=True)
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    np.testing.assert_array_equal(built.loss(X), net.loss(X))
    assert built.l2_half and built.params["W1"] is not state["W1"]
    state["W1"][...] = 0  # the net holds copies
    assert np.abs(built.params["W1"]).sum() > 0
    with pytest.raises(ValueError, match=r"from_state_dict: the state holds \['W1', 'b1'\], expected"):
        TwoLayerNet.from_state_dict({"W1": state["W1"], "b1": state["b1"]})
    with pytest.raises(ValueError, match=r"W1 \(4, 10\) and W2 \(3, 3\) are not \(D, H\) and \(H, C\)"):
        TwoLayerNet.from_state_dict(dict(state, W2=np.ones((3, 3))))
    with pytest.raises(TypeError, match="expected a mapping"):
        TwoLayerNet.from_state_dict([state["W1"]])
