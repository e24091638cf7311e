"""Every objective's docstring has an ``Example:`` that runs (issue 23): the doctests of every module of
``mmib.objectives`` run here and must pass, and every objective class (an ``nn.Module`` whose ``forward`` returns a
``LossOutput``) must carry one."""

import doctest
import importlib
import inspect
import pkgutil

import pytest
import torch

import mmib.objectives as objectives_pkg

MODULES = sorted(info.name for info in pkgutil.walk_packages(objectives_pkg.__path__, objectives_pkg.__name__ + "."))


def _objective_classes():
    out = []
    for name in MODULES:
        mod = importlib.import_module(name)
        for cls_name, cls in vars(mod).items():
            if (inspect.isclass(cls) and issubclass(cls, torch.nn.Module) and cls.__module__ == name
                    and not cls_name.startswith("_")
                    and "LossOutput" in str(inspect.signature(cls.forward).return_annotation)):
                out.append(cls)
    return out


@pytest.mark.parametrize("module", MODULES)
def test_the_docstring_examples_run(module):
    mod = importlib.import_module(module)
    finder, runner = doctest.DocTestFinder(exclude_empty=True), doctest.DocTestRunner(verbose=False)
    for test in finder.find(mod, module, globs=dict(vars(mod))):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{module}: {result.failed} of {result.attempted} doctest examples failed"


@pytest.mark.parametrize("cls", _objective_classes(), ids=lambda c: c.__name__)
def test_every_objective_has_an_example(cls):
    doc = inspect.getdoc(cls) or ""
    assert "Example:" in doc and ">>>" in doc, f"{cls.__module__}.{cls.__name__}: no 'Example:' with >>> lines"


def test_the_objectives_are_found():
    names = {c.__name__ for c in _objective_classes()}
    assert {"PairwiseCLIPLoss", "CoMMLoss", "FactorCLLoss", "IBBLoss", "OMFLoss", "SupConLoss", "VIBLoss"} <= names
