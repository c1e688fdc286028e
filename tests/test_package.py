"""The package's shape: the root imports the core, the layers above it on first use;
the core's modules never need those layers (lint-imports checks the imports themselves)."""
import json
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_lite as tl

CORE = {"ops", "autograd", "trace", "tensor", "functional", "functional_autograd", "gradcheck",
        "compiler", "source"}
ABOVE = {"nn", "optim", "data", "models", "sweep", "compare", "reference", "derivation",
         "problems"}


def loaded_after(code: str) -> set:
    """The package's modules (their first name under tinygrad_lite) a fresh process has
    loaded after running ``code``."""
    probe = code + (
        "\nimport sys, json\n"
        "print(json.dumps(sorted({m.split('.')[1] for m in sys.modules"
        " if m.startswith('tinygrad_lite.')})))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    return set(json.loads(out.splitlines()[-1]))


@pytest.mark.parametrize("code", ["import tinygrad_lite.ops", "import tinygrad_lite",
                                  "import viz"])
def test_importing_the_core_loads_nothing_above_it(code):
    loaded = loaded_after(code)
    assert loaded & ABOVE == set(), code
    assert CORE <= loaded


def test_the_layers_above_the_core_load_on_first_use():
    loaded = loaded_after("import tinygrad_lite as tl\ntl.compare_gradients")
    assert {"compare"} <= loaded and loaded & {"nn", "optim", "data", "models"} == set()
    loaded = loaded_after("import tinygrad_lite as tl\ntl.nn.Linear(2, 3)")
    assert "nn" in loaded and loaded & {"optim", "models", "compare"} == set()


def test_lazy_names_are_the_layers_objects():
    import tinygrad_lite.compare
    import tinygrad_lite.derivation
    import tinygrad_lite.nn
    assert tl.nn is tinygrad_lite.nn and tl.compare is tinygrad_lite.compare
    assert tl.compare_gradients is tinygrad_lite.compare.compare_gradients
    assert tl.GradientReport is tinygrad_lite.compare.GradientReport
    # importing the module that defines tl.explain leaves tl.explain the function
    assert tl.explain is tinygrad_lite.derivation.explain and callable(tl.explain)
    for name in ("nn", "optim", "data", "models", "compare", "reference", "problems", "sweep"):
        assert getattr(tl, name) is sys.modules[f"tinygrad_lite.{name}"]
    assert {"nn", "optim", "data", "models", "compare", "compare_gradients", "GradientReport",
            "explain", "Tensor", "compile"} <= set(dir(tl))


def test_an_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'Tensr'"):
        tl.Tensr
    assert not hasattr(tl, "reference_implementation")


def test_import_star_gives_every_public_name():
    names: dict = {}
    exec("from tinygrad_lite import *", names)
    assert set(tl.__all__) <= set(names)
    for name in ("Tensor", "grad", "cross_entropy", "compile", "nn", "optim", "data", "models",
                 "compare_gradients", "GradientReport", "explain"):
        assert names[name] is getattr(tl, name)
    assert len(tl.__all__) == len(set(tl.__all__))


def test_op_table_records_through_the_tensor_layer():
    # Function.apply (on the op table) and apply (the Tensor layer) make the same node
    x = tl.Tensor(np.array([1.0, -2.0]), requires_grad=True)
    y = tl.ops.Relu.apply(x)
    assert type(y) is tl.Tensor and y.op is tl.ops.Relu and y.parents == (x,)
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 0.0]


def test_composite_methods_are_the_functional_composites():
    x = tl.Tensor(np.random.RandomState(0).randn(3, 4), requires_grad=True)
    for method, fn in (("softmax", tl.softmax), ("log_softmax", tl.log_softmax),
                       ("logsoftmax", tl.log_softmax), ("var", tl.var), ("std", tl.std)):
        assert getattr(tl.Tensor, method) is fn
        np.testing.assert_array_equal(getattr(x, method)(1).data, fn(x, 1).data)
    assert x.softmax(dim=1).groups[0].name == "softmax"
    y = np.array([0, 1, 2])
    assert x.cross_entropy(y).item() == tl.cross_entropy(x, y).item()


def test_input_grads_of_a_leaf_is_empty():
    assert tl.input_grads(tl.Tensor(np.ones(2), requires_grad=True), np.ones(2)) == []
