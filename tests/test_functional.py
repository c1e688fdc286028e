"""The composites (tinygrad_lite/functional.py): the nodes they record are tagged with
their group, and cross_entropy reads labels of any integer byte order. Their values
and gradients are tested with the op table (tests/test_ops.py) and against
torch.nn.functional (tests/test_losses.py)."""
import numpy as np
import pytest

import tinygrad_lite as tl


def leaf(data, **kw):
    return tl.Tensor(np.asarray(data, dtype=np.float64), requires_grad=True, **kw)


def test_composites_tag_their_nodes():
    x = leaf(np.random.randn(3, 4))
    loss = tl.cross_entropy(x, np.array([0, 1, 3]))
    inner = [t for t in tl.backward_order(loss) if t.op is not None]
    assert all(t.groups and t.groups[0].name == "cross_entropy" for t in inner)
    outer = tl.composite("outer")(lambda t: tl.var(t))
    nested = [t for t in tl.backward_order(outer(x)) if t.op is not None]
    assert any(len(t.groups) == 2 and [g.name for g in t.groups] == ["outer", "var"] for t in nested)
    s1, s2 = x.softmax(), x.softmax()
    assert s1.groups[0] is not s2.groups[0] and s1.groups[0].name == "softmax"
    assert (x * 2).groups == ()
    with tl.group("block", kind="module") as g:
        y = x * 2
    assert y.groups == (g,) and g.kind == "module"


def test_cross_entropy_takes_big_endian_labels():
    s = leaf(np.zeros((2, 3)))
    labels = np.array([0, 2], dtype=">i8")
    assert tl.cross_entropy(s, labels).item() == pytest.approx(np.log(3))
    with pytest.raises(IndexError, match="label -1"):
        tl.cross_entropy(s, np.array([0, -1], dtype=">i4"))
