"""One model registry (`pipeline.registry`): versions, CURRENT and the verified skops loader, used by the tagger's
training and tagging, the stance stage and the runner's cache keys."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fresh_process import run_fresh

from pipeline import config
from pipeline.errors import InputError, ModelFileError
from pipeline.registry import STANCE, TAGGER, ModelRegistry


def test_shipped_models_resolve_through_the_registry() -> None:
    for reg in (TAGGER, STANCE):
        assert reg.root == config.models_dir() / reg.kind
        cur = reg.current()
        assert cur in reg.versions()
        assert reg.resolve().name == cur and reg.model_file().name == reg.file_name
        assert reg.card().is_file()


def test_tagger_and_stance_find_their_model_through_the_registry() -> None:
    from pipeline.provenance import current_model_dir
    from pipeline.stance.api import current_model_file
    from pipeline.tagger import train

    params = config.load_params()
    assert train.resolve_model_dir(params) == TAGGER.resolve(params["tag"]["model_version"])
    assert current_model_dir(params) == TAGGER.resolve(params["tag"]["model_version"])
    assert current_model_file() == STANCE.model_file()


def test_promote_missing_version_and_bad_pointer_are_one_line_errors(tmp_path: Path) -> None:
    reg = ModelRegistry("stance", "stance.skops", tmp_path)
    assert reg.versions() == [] and reg.current() is None
    with pytest.raises(ModelFileError, match="no current stance model"):
        reg.resolve()
    shutil.copytree(STANCE.resolve(), tmp_path / "v-test")
    with pytest.raises(ModelFileError, match="cannot promote"):
        reg.promote("v-none")
    reg.promote("v-test")
    assert reg.current() == "v-test" and reg.versions() == ["v-test"]
    assert reg.resolve("v-test") == tmp_path / "v-test"
    with pytest.raises(ModelFileError, match="v-other not found"):
        reg.resolve("v-other")
    (tmp_path / "CURRENT").write_text("../elsewhere\n", encoding="utf-8")
    with pytest.raises(ModelFileError, match="no valid version"):
        reg.current()
    assert issubclass(ModelFileError, InputError)
    # what a cache key hashes does not raise: a missing model changes the key, the stage says why
    assert reg.expected_dir() == tmp_path


def test_env_override_moves_every_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WSIS_MODELS_DIR", str(tmp_path))
    assert TAGGER.root == tmp_path / "tagger" and STANCE.root == tmp_path / "stance"


def test_one_skops_loader_for_both_models() -> None:
    """The stance model loads through the same verified loader as the tagger (no second copy of the checks)."""
    import inspect

    from pipeline.stance import model as stance_model
    from pipeline.tagger import model as tagger_model

    for mod in (stance_model, tagger_model):
        src = inspect.getsource(mod)
        assert "load_verified_skops(" in src and "get_untrusted_types" not in src


def test_skops_trusts_no_sklearn_estimator_by_default_and_skips_the_estimator_walk(tmp_path: Path) -> None:
    """`pipeline.imports.skops_io` keeps skops from trusting every scikit-learn estimator by default (building that
    list imports all of sklearn): the shipped models still load, and a file holding a sklearn estimator is refused
    as untrusted. In a fresh process, because a test that imports skops directly first would build the full list."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from sklearn.linear_model import LinearRegression\n"
        "from pipeline.errors import ModelFileError\n"
        "from pipeline.imports import skops_io\n"
        "from pipeline.registry import STANCE, TAGGER, load_verified_skops\n"
        "from pipeline.stance.model import StanceModel, load_model\n"
        "from pipeline.tagger.model import Tagger, load_tagger\n"
        "assert isinstance(load_tagger(TAGGER.model_file()), Tagger)\n"
        "assert isinstance(load_model(STANCE.model_file()), StanceModel)\n"
        "from skops.io._trusted_types import SKLEARN_ESTIMATOR_TYPE_NAMES\n"
        "assert SKLEARN_ESTIMATOR_TYPE_NAMES == [], len(SKLEARN_ESTIMATOR_TYPE_NAMES)\n"
        "assert 'sklearn.gaussian_process' not in sys.modules and 'torch' not in sys.modules, 'walked'\n"
        f"bad = Path({str(tmp_path / 'lr.skops')!r})\n"
        "skops_io().dump(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]), bad)\n"
        "try:\n"
        "    load_verified_skops(bad, ['pipeline.tagger.model.Tagger'], Tagger, require_hash=False)\n"
        "except ModelFileError as exc:\n"
        "    assert 'untrusted types' in str(exc) and 'LinearRegression' in str(exc), exc\n"
        "else:\n"
        "    raise AssertionError('a sklearn estimator loaded without being trusted')\n"
        "import sklearn.utils\n"
        "assert len(sklearn.utils.all_estimators(type_filter='regressor')) > 10, 'the walk is restored'\n"
        "print('ok')\n"
    )
    run_fresh(script)
