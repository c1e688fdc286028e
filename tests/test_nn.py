"""tinygrad_lite.nn: modules, naming and grouping, init, functional composites."""
from collections import OrderedDict

import numpy as np
import pytest

import tinygrad_lite as tl
import tinygrad_lite.functional as tlF
from tinygrad_lite import nn
from tinygrad_lite.nn import functional as F
from tinygrad_lite.nn import init


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 6, std=0.1)
        self.act = nn.Tanh()
        self.fc2 = nn.Linear(6, 3, std=0.1)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Outer(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = Net()
        self.scale = tl.Tensor(np.ones(3), requires_grad=True)

    def forward(self, x):
        return self.net(x) * self.scale


# ----------------------------------------------------------------- Linear and init

def test_linear_std_init_is_cs231n_draw():
    np.random.seed(0)
    lin = nn.Linear(4, 10, std=1e-1)
    np.random.seed(0)
    np.testing.assert_array_equal(lin.W.data, 1e-1 * np.random.randn(4, 10))
    np.testing.assert_array_equal(lin.b.data, np.zeros(10))
    assert lin.W.shape == (4, 10) and lin.b.shape == (10,)
    assert lin.W.requires_grad and lin.b.requires_grad


def test_linear_default_init_is_he_as_seed_002():
    np.random.seed(3)
    lin = nn.Linear(300, 25)
    np.random.seed(3)
    np.testing.assert_array_equal(lin.W.data, np.random.randn(300, 25) * np.sqrt(2.0 / 300))
    np.random.seed(3)
    w, b = init.he(300, 25)  # seed 002's initalize_he_weights
    np.testing.assert_array_equal(w, lin.W.data)
    assert b.shape == (1, 25) and not b.any()


def test_xavier_init_statistics():
    np.random.seed(0)
    W = init.xavier_normal((400, 200))
    assert abs(W.std() - np.sqrt(2 / 600)) < 0.002
    U = init.xavier_uniform((400, 200))
    assert U.max() <= np.sqrt(6 / 600) and U.min() >= -np.sqrt(6 / 600)
    lin = nn.Linear(400, 200, init="xavier")
    assert abs(lin.W.data.std() - np.sqrt(2 / 600)) < 0.002
    t = tl.Tensor(np.zeros((50, 20)), requires_grad=True)
    assert init.kaiming_normal_(t) is t and abs(t.data.std() - np.sqrt(2 / 50)) < 0.03
    init.zeros_(t)
    assert not t.data.any()
    assert init.fan_in_out((7, 3)) == (7, 3)


def test_linear_forward_and_no_bias():
    np.random.seed(0)
    lin = nn.Linear(3, 2, std=1.0)
    x = np.random.randn(5, 3)
    np.testing.assert_allclose(lin(x).data, x @ lin.W.data + lin.b.data)
    nb = nn.Linear(3, 2, bias=False)
    assert nb.b is None and [n for n, _ in nb.named_parameters()] == ["W"]
    np.testing.assert_allclose(nb(x).data, x @ nb.W.data)


def test_linear_errors():
    with pytest.raises(ValueError, match="in_features must be a positive int"):
        nn.Linear(0, 3)
    with pytest.raises(ValueError, match="unknown init"):
        nn.Linear(2, 3, init="bogus")
    m = Net()
    with pytest.raises(ValueError, match=r"fc1 \(Linear 4 -> 6\): expected input of shape \(N, 4\), got \(5, 3\)"):
        m(np.zeros((5, 3)))
    with pytest.raises(TypeError):
        m(np.array([["a"] * 4]))


# ----------------------------------------------------------------- naming and groups

def test_named_parameters_and_tensor_names():
    m = Net()
    assert list(dict(m.named_parameters())) == ["fc1.W", "fc1.b", "fc2.W", "fc2.b"]
    assert [p.name for p in m.parameters()] == ["fc1.W", "fc1.b", "fc2.W", "fc2.b"]
    o = Outer()
    assert list(dict(o.named_parameters())) == ["scale", "net.fc1.W", "net.fc1.b", "net.fc2.W", "net.fc2.b"]
    assert o.net.fc1.W.name == "net.fc1.W" and o.scale.name == "scale"
    assert o.num_parameters() == 3 + 4 * 6 + 6 + 6 * 3 + 3
    assert [n for n, _ in o.named_modules()] == ["", "net", "net.fc1", "net.act", "net.fc2"]


def test_module_calls_are_grouped():
    m = Net()
    out = m(np.random.randn(2, 4))
    nodes = tl.backward_order(out)
    names = {tuple((g.name, g.kind) for g in n.groups) for n in nodes if n.op is not None}
    assert (("Net", "module"), ("fc2", "module")) in names
    assert (("Net", "module"), ("act", "module")) in names
    assert (("Net", "module"), ("fc1", "module")) in names
    # two calls: two distinct Group objects
    out2 = m(np.random.randn(2, 4))
    assert out.groups[-1] is not out2.groups[-1]
    # nested: the path of the child in its parent
    o = Outer()
    out = o(np.random.randn(2, 4))
    inner = [n for n in tl.backward_order(out) if n.op is not None and len(n.groups) == 3]
    assert {n.groups[2].name for n in inner} == {"net.fc1", "net.act", "net.fc2"}
    assert all(n.groups[0].name == "Outer" and n.groups[1].name == "net" for n in inner)


def test_sequential():
    np.random.seed(0)
    seq = nn.Sequential(nn.Linear(4, 5, std=0.1), nn.ReLU(), nn.Linear(5, 2, std=0.1))
    assert len(seq) == 3 and isinstance(seq[1], nn.ReLU) and isinstance(seq[-1], nn.Linear)
    assert list(dict(seq.named_parameters())) == ["0.W", "0.b", "2.W", "2.b"]
    x = np.random.randn(3, 4)
    ref = np.maximum(x @ seq[0].W.data + seq[0].b.data, 0) @ seq[2].W.data + seq[2].b.data
    out = seq(x)
    np.testing.assert_allclose(out.data, ref)
    assert out.groups[-1].name == "2:Linear" and out.groups[-1].kind == "module"
    named = nn.Sequential(OrderedDict([("fc1", nn.Linear(4, 5)), ("relu", nn.ReLU())]))
    assert list(dict(named.named_parameters())) == ["fc1.W", "fc1.b"]
    assert named(x).groups[-1].name == "relu"
    with pytest.raises(TypeError, match="not a Module"):
        nn.Sequential(nn.ReLU(), lambda x: x)


def test_activations_match_functional():
    x = np.linspace(-3, 3, 12).reshape(3, 4)
    np.testing.assert_allclose(nn.ReLU()(x).data, np.maximum(x, 0))
    np.testing.assert_allclose(nn.Sigmoid()(x).data, 1 / (1 + np.exp(-x)))
    np.testing.assert_allclose(nn.Tanh()(x).data, np.tanh(x))
    np.testing.assert_allclose(F.relu(x).data, np.maximum(x, 0))


def test_gradcheck_through_modules():
    np.random.seed(1)
    m = nn.Sequential(nn.Linear(3, 4, std=0.5), nn.Sigmoid(), nn.Linear(4, 4, std=0.5), nn.Tanh(),
                      nn.Linear(4, 2, std=0.5))
    x = np.random.randn(5, 3)
    y = np.array([0, 1, 1, 0, 1])
    params = list(m.parameters())
    assert tl.gradcheck(lambda *ps: F.cross_entropy(m(x), y), params)


def test_forgetting_super_init_is_explained():
    class Bad(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(RuntimeError, match=r"super\(\).__init__\(\)"):
        Bad()


# ----------------------------------------------------------------- modes, dropout, grads

def test_dropout_train_and_eval():
    np.random.seed(0)
    d = nn.Dropout(0.25)
    x = tl.Tensor(np.ones((200, 50)), requires_grad=True)
    y = d(x)
    kept = y.data != 0
    assert abs(kept.mean() - 0.75) < 0.02
    np.testing.assert_allclose(y.data[kept], 1 / 0.75)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, y.data)  # the same mask scales the gradient
    d.eval()
    assert d(x) is x
    seq = nn.Sequential(nn.Linear(3, 3), nn.Dropout())
    seq.eval()
    assert not seq[1].training
    seq.train()
    assert seq[1].training
    for bad in (1.5, -0.1, True, "0.5"):
        with pytest.raises(ValueError, match="probability"):
            nn.Dropout(bad)


def test_dropout_p_one_zeroes_everything_as_pytorch():
    d = nn.Dropout(1.0)
    x = tl.Tensor(np.random.randn(4, 5), requires_grad=True)
    y = d(x)
    assert y.shape == (4, 5) and not y.data.any() and np.isfinite(y.data).all()
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, np.zeros((4, 5)))
    assert d.eval()(x) is x
    assert not F.dropout(x, 1.0).data.any() and F.dropout(x, 1, training=False) is x
    torch = pytest.importorskip("torch")
    assert not torch.nn.Dropout(1.0)(torch.ones(3)).any()


def test_zero_grad():
    m = Net()
    F.cross_entropy(m(np.random.randn(3, 4)), np.array([0, 1, 2])).backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


# ----------------------------------------------------------------- state

def test_state_dict_is_a_snapshot_and_loads_in_place(tmp_path):
    np.random.seed(0)
    m = Net()
    sd = m.state_dict()
    assert list(sd) == ["fc1.W", "fc1.b", "fc2.W", "fc2.b"]
    assert sd["fc1.W"] is not m.fc1.W.data
    m.fc1.W.data += 1
    other = Net()
    W = other.fc1.W
    arr = W.data
    other.load_state_dict(sd)
    assert other.fc1.W is W and other.fc1.W.data is arr
    np.testing.assert_array_equal(other.fc1.W.data, sd["fc1.W"])
    with pytest.raises(ValueError, match=r"missing keys \['fc2.b'\]"):
        other.load_state_dict({k: v for k, v in sd.items() if k != "fc2.b"})
    bad = dict(sd, **{"fc1.W": np.zeros((6, 4))})
    with pytest.raises(ValueError, match=r"fc1.W has shape \(6, 4\), the parameter has shape \(4, 6\)"):
        other.load_state_dict(bad)
    other.load_state_dict({"fc1.b": np.ones(6)}, strict=False)
    np.testing.assert_array_equal(other.fc1.b.data, np.ones(6))


def test_save_load_npz_round_trip(tmp_path):
    np.random.seed(0)
    m = Net()
    path = m.save(str(tmp_path / "model.npz"))
    x = np.random.randn(4, 4)
    fresh = Net()
    assert not np.allclose(fresh(x).data, m(x).data)
    fresh.load(path)
    np.testing.assert_array_equal(fresh(x).data, m(x).data)
    fresh.load(str(tmp_path / "model"))  # the suffix may be left out
    with np.load(path, allow_pickle=False) as f:  # plain arrays, no pickle
        assert sorted(f.files) == ["fc1.W", "fc1.b", "fc2.W", "fc2.b"]
    with pytest.raises(FileNotFoundError, match="no such file"):
        fresh.load(str(tmp_path / "nope.npz"))


def test_repr():
    text = repr(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Dropout(0.1)))
    assert "(0): Linear(in_features=2, out_features=3, bias=True)" in text and "Dropout(p=0.1)" in text


# ----------------------------------------------------------------- functional

def test_functional_is_defined_once():
    for name in ("softmax", "log_softmax", "cross_entropy", "l2_penalty", "multiclass_hinge", "relu"):
        assert getattr(F, name) is getattr(tlF, name)
    assert tl.l2_penalty is tlF.l2_penalty and tl.multiclass_hinge is tlF.multiclass_hinge


@pytest.mark.parametrize("half, factor", [(False, 2.0), (True, 1.0)])
def test_l2_penalty_value_and_gradient(half, factor):
    np.random.seed(0)
    W1 = tl.Tensor(np.random.randn(4, 3), requires_grad=True)
    W2 = tl.Tensor(np.random.randn(3, 2), requires_grad=True)
    b = tl.Tensor(np.random.randn(2), requires_grad=True)
    reg = 0.3
    pen = F.l2_penalty([W1, W2], reg, half=half)
    expect = (0.5 if half else 1.0) * reg * (np.sum(W1.data ** 2) + np.sum(W2.data ** 2))
    assert abs(pen.item() - expect) < 1e-12
    assert pen.groups[-1].name == "l2_penalty" and pen.groups[-1].kind == "function"
    (pen + b.sum()).backward()
    np.testing.assert_allclose(W1.grad, factor * reg * W1.data)
    np.testing.assert_allclose(W2.grad, factor * reg * W2.data)
    np.testing.assert_array_equal(b.grad, np.ones(2))  # exactly the tensors given
    assert tl.gradcheck(lambda w: F.l2_penalty(w, 0.7, half=half), [W1])


def test_l2_penalty_errors():
    W = tl.Tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(ValueError, match="reg must be a finite number >= 0"):
        F.l2_penalty([W], -1.0)
    with pytest.raises(TypeError, match="reg must be a number"):
        F.l2_penalty([W], "0.1")
    with pytest.raises(ValueError, match="no tensors"):
        F.l2_penalty([], 0.1)
    with pytest.raises(TypeError, match="floating point"):
        F.l2_penalty([tl.Tensor(np.ones(3, dtype=int))], 0.1)


def _svm_loss_vectorized(W, X, y, reg=0.0):
    """cs231n's svm_loss_vectorized (no regularisation here)."""
    N = X.shape[0]
    scores = X.dot(W)
    correct = scores[np.arange(N), y][:, None]
    margins = np.maximum(0, scores - correct + 1)
    margins[np.arange(N), y] = 0
    loss = margins.sum() / N
    binary = (margins > 0).astype(float)
    binary[np.arange(N), y] = -binary.sum(axis=1)
    dW = X.T.dot(binary) / N
    return loss, dW


def test_multiclass_hinge_matches_cs231n_svm():
    np.random.seed(0)
    X = np.random.randn(20, 5)
    y = np.random.randint(0, 4, 20)
    W = tl.Tensor(0.5 * np.random.randn(5, 4), requires_grad=True)
    loss = F.multiclass_hinge(tl.Tensor(X) @ W, y)
    loss.backward()
    ref_loss, ref_dW = _svm_loss_vectorized(W.data, X, y)
    assert abs(loss.item() - ref_loss) < 1e-12
    np.testing.assert_allclose(W.grad, ref_dW, atol=1e-12)
    assert loss.groups[-1].name == "multiclass_hinge"
    s = tl.Tensor(np.random.randn(6, 3), requires_grad=True)
    assert tl.gradcheck(lambda s: F.multiclass_hinge(s, y[:6] % 3), [s])
    assert abs(nn.MultiClassHingeLoss()(X @ W.data, y).item() - ref_loss) < 1e-12
    with pytest.raises(ValueError, match=r"multiclass_hinge: labels must have shape \(20,\)"):
        F.multiclass_hinge(X @ W.data, y[:3])


def test_cross_entropy_module():
    logits = np.random.randn(4, 3)
    y = np.array([0, 2, 1, 1])
    assert nn.CrossEntropyLoss()(logits, y).item() == F.cross_entropy(logits, y).item()


def test_linear_has_no_pytorch_weight_name():
    lin = nn.Linear(3, 2)
    with pytest.raises(AttributeError, match=r"W, of shape \(in_features, out_features\)"):
        lin.weight
    assert not hasattr(lin, "bias")


# ----------------------------------------------------------------- ownership of names

def test_slicing_a_sequential_renames_nothing():
    m = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))
    before = [p.name for p in m.parameters()]
    assert before == ["0.W", "0.b", "2.W", "2.b"]
    s = m[1:]
    assert [p.name for p in m.parameters()] == before
    assert list(dict(s.named_parameters())) == ["2.W", "2.b"]  # PyTorch keeps the keys
    assert s[1] is m[2] and s["2"] is m[2] and len(s) == 2
    assert s(np.ones((4, 5))).shape == (4, 2)
    assert m[2](np.ones((1, 5))).groups[-1].name == "2:Linear"  # group names untouched too
    s.append(nn.Tanh())  # a fresh key, not '2' again
    assert list(dict(s.named_children())) == ["1", "2", "3"] and len(m) == 3
    assert [p.name for p in m.parameters()] == before


def test_wrapping_modules_already_owned_renames_nothing():
    m = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))
    w = nn.Sequential(m[2], nn.Tanh(), m[0])
    assert [p.name for p in m.parameters()] == ["0.W", "0.b", "2.W", "2.b"]
    assert list(dict(w.named_parameters())) == ["0.W", "0.b", "2.W", "2.b"]
    # a module shared by a second parent keeps the first parent's names
    net = Net()
    other = Net()
    other.fc1 = net.fc1
    assert net.fc1.W.name == "fc1.W" and net(np.ones((1, 4))).shape == (1, 3)
    # a tensor tied into a second module keeps its first owner's name
    lin = nn.Linear(2, 2)
    tied = nn.Linear(2, 2)
    tied.W = lin.W
    assert lin.W.name == "W"
    _outer = nn.Sequential(OrderedDict([("a", lin), ("b", tied)]))  # adopts lin and tied
    assert lin.W.name == "a.W" and tied.b.name == "b.b"


def test_first_parent_adopts_a_top_level_model_and_release_frees_it():
    net = Net()
    assert net.fc1.W.name == "fc1.W"
    o = Outer()  # built bottom-up: every first parent adopts
    assert o.net.fc1.W.name == "net.fc1.W"
    wrapped = nn.Sequential(net, nn.Identity())  # net had no parent: adopted
    assert net.fc1.W.name == "0.fc1.W" and list(dict(wrapped.named_parameters()))[0] == "0.fc1.W"
    assert net.fc1(np.ones((1, 4))).groups[-1].name == "0.fc1"
    fc1 = net.fc1
    del net.fc1  # released: the next parent adopts it
    fresh = nn.Sequential(fc1)
    assert fc1.W.name == "0.W" and dict(fresh.named_parameters())["0.W"] is fc1.W
    with pytest.raises(ValueError, match="cannot contain itself"):
        fresh.me = fresh
    with pytest.raises(ValueError, match="cannot contain itself"):
        fc1.up = fresh


def test_two_layer_net_names_survive_reuse():
    from tinygrad_lite.models import TwoLayerNet
    net = TwoLayerNet(4, 10, 3, std=1e-1)
    seq = nn.Sequential(net.fc1, net.relu, net.fc2)
    assert [p.name for p in net.parameters()] == ["W1", "b1", "W2", "b2"]
    assert list(dict(seq.named_parameters())) == ["0.W", "0.b", "2.W", "2.b"]


# ----------------------------------------------------------------- ModuleList, ModuleDict

class Stack(nn.Module):
    def __init__(self, sizes):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b, std=0.1) for a, b in zip(sizes, sizes[1:]))

    def forward(self, x):
        for layer in self.layers:
            x = layer(x).tanh()
        return x


def test_module_list_registers_and_trains():
    np.random.seed(0)
    m = Stack([3, 4, 2])
    assert list(dict(m.named_parameters())) == ["layers.0.W", "layers.0.b", "layers.1.W", "layers.1.b"]
    assert [p.name for p in m.parameters()] == ["layers.0.W", "layers.0.b", "layers.1.W", "layers.1.b"]
    assert m.layers[1](np.ones((1, 4))).groups[-1].name == "layers.1:Linear"
    W = m.layers[1].W.data.copy()
    opt = tl.optim.SGD(m.parameters(), lr=0.1)
    F.cross_entropy(m(np.random.randn(5, 3)), np.array([0, 1, 1, 0, 1])).backward()
    opt.step()
    assert not np.array_equal(m.layers[1].W.data, W)
    assert set(m.state_dict()) == {"layers.0.W", "layers.0.b", "layers.1.W", "layers.1.b"}


def test_module_list_api():
    a, b, c = nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 3)
    ml = nn.ModuleList([a, b])
    ml.append(c)
    assert len(ml) == 3 and list(ml) == [a, b, c] and ml[-1] is c
    assert isinstance(ml[1:], nn.ModuleList) and list(ml[1:]) == [b, c]
    assert c.W.name == "2.W" and ml[1:][1] is c and c.W.name == "2.W"  # the slice renames nothing
    del ml[0]  # renumbered, as PyTorch: the names of what it owns follow
    assert list(dict(ml.named_parameters())) == ["1.W", "1.b"] and c.W.name == "1.W"
    ml.insert(0, a)
    assert list(ml) == [a, b, c] and a.W.name == "0.W" and c.W.name == "2.W"
    ml[1] = nn.Tanh()
    assert isinstance(ml[1], nn.Tanh)
    ml += [nn.Identity()]
    assert len(ml) == 4 and len(ml + nn.ModuleList([nn.ReLU()])) == 5
    with pytest.raises(TypeError, match="expected a Module"):
        ml.append(lambda x: x)
    with pytest.raises(IndexError, match="out of range"):
        ml[7]
    with pytest.raises(NotImplementedError, match="forward"):
        ml(np.ones(2))


def test_module_dict_api():
    md = nn.ModuleDict({"enc": nn.Linear(2, 3), "act": nn.ReLU()})
    md["dec"] = nn.Linear(3, 2)
    assert list(md) == ["enc", "act", "dec"] and "enc" in md and len(md) == 3
    assert md.enc is md["enc"] and md["dec"].W.name == "dec.W"
    assert list(dict(md.named_parameters())) == ["enc.W", "enc.b", "dec.W", "dec.b"]
    assert md.pop("act").__class__ is nn.ReLU and md.keys() == ["enc", "dec"]
    with pytest.raises(KeyError, match="keys are"):
        md["nope"]
    with pytest.raises(KeyError, match="without '.'"):
        md["a.b"] = nn.ReLU()
    with pytest.raises(TypeError, match="expected a Module"):
        md["x"] = 3
    md.clear()
    assert len(md) == 0 and list(md.parameters()) == []


@pytest.mark.parametrize("container, fix", [(list, "ModuleList"), (tuple, "ModuleList"),
                                            (lambda ms: dict(enumerate(ms)), "ModuleDict")])
def test_plain_containers_of_modules_are_refused(container, fix):
    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = container([nn.Linear(2, 2), nn.Linear(2, 2)])

    with pytest.raises(TypeError, match=f"Bad.layers: a plain .* not registered .*nn.{fix}"):
        Bad()


def test_plain_list_of_parameters_is_refused_other_lists_are_fine():
    m = nn.Module()
    with pytest.raises(TypeError, match="not registered"):
        m.ws = [tl.Tensor(np.ones(2), requires_grad=True)]
    m.sizes = [3, 4, 5]
    m.arrays = (np.ones(2), tl.Tensor(np.ones(2)))
    m.empty = []
    assert m.sizes == [3, 4, 5] and list(m.parameters()) == []


def test_replacing_an_owned_parameter_with_a_tied_one_does_not_steal_it():
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    outer = nn.Sequential(OrderedDict([("a", a), ("b", b)]))
    b.W = a.W  # b's old W is released; a.W stays a's
    assert a.W.name == "a.W"
    nn.Sequential(OrderedDict([("x", outer)]))
    assert a.W.name == "x.a.W" and b.b.name == "x.b.b"
    fresh = tl.Tensor(np.ones((2, 2)), requires_grad=True, name="mine")
    b.W = fresh  # unowned: adopted
    assert fresh.name == "x.b.W"
    del b.W
    assert [n for n, _ in b.named_parameters()] == ["b"]


def test_copies_and_pickles_keep_ownership():
    import copy
    import pickle
    m = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    for clone in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert [p.name for p in clone.parameters()] == ["0.W", "0.b", "2.W", "2.b"]
        assert clone(np.ones((1, 2))).shape == (1, 1)
        nn.Sequential(OrderedDict([("net", clone)]))  # the top-level clone is adopted
        assert [p.name for p in clone.parameters()] == ["net.0.W", "net.0.b", "net.2.W", "net.2.b"]
        assert [p.name for p in m.parameters()] == ["0.W", "0.b", "2.W", "2.b"]
