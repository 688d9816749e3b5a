"""Bad params stop with one clear message before any work."""
import re
import subprocess
import sys

import pytest
import yaml

from rtd.config import validate
from rtd.errors import ParamError
from tests.helpers import ROOT, default_params


def _set(p, dotted, value):
    node = p
    *parents, last = dotted.split(".")
    for k in parents:
        node = node[k]
    node[last] = value


CASES = [
    ("methods", ["ft", "sgd"], "unknown entry 'sgd'"),
    ("track", "audio", "unknown"),
    ("lambda_kd", -0.1, "lambda_kd` must be >= 0"),
    ("lambda_ar", -1, "lambda_ar` must be >= 0"),
    ("temperature", 0, "temperature` must be > 0"),
    ("temperature", -2.0, "temperature` must be > 0"),
    ("rho", 0.0, "rho` must be > 0"),
    ("rho", 1.5, "rho` must be <= 1"),
    ("seeds", [], "`seeds` must be a non-empty list"),
    ("seeds", [0, 0], "distinct integers in [0, 2**32 - 1]"),
    ("seeds", [0, 2**32], "distinct integers in [0, 2**32 - 1]"),
    ("erosion.seeds", [0, 2**32], "distinct integers in [0, 2**32 - 1]"),
    ("analysis.seed", 2**32, "`analysis.seed` must be <= 4294967295"),
    ("tracks", ["text"], "`track` = 'vision' (the track results.md leads with) is not in `tracks`"),
    ("analysis.tsne_perplexity", 1000, "must be smaller than the t-SNE sample"),
    ("train.warmup_steps", 15, "`train.warmup_steps` = 15 is not shorter than training (3 epoch(s) x 5 step(s) of 64 = 15 steps)"),
    ("train.batch_size", 512, "`train.batch_size` = 512 is larger than the training set (320 examples)"),
    ("seeds", [0, 1.5], "distinct integers"),
    ("wiseft.alphas", [0.0, 0.5, 1.2], "entry `1.2` must be <= 1"),
    ("wiseft.alphas", [0.0, 0.5], "must include 1"),
    ("wiseft.alphas", [0.0, 0.25, 1.0], "`wiseft.alphas` must include 0.5 (WiSE-FT"),
    ("ft_lrs", [3e-4], "`train.lr` = 0.0001 must be one of `ft_lrs`"),
    ("ft_lrs", [1e-4, -1e-3], "must be > 0"),
    ("ft_lrs", [], "must be a non-empty list of numbers"),
    ("lora_lrs", [1e-3, 3e-3], "`lora_lrs` = [0.001, 0.003] holds `lora.lr` = 0.001, which the arm's own row already runs"),
    ("l2sp_alphas", [0.01], "`l2sp_alphas` = [0.01] holds `l2sp.alpha` = 0.01"),
    ("lora_ranks", [8], "`lora_ranks` = [8] holds `lora.rank` = 8, which the arm's own row already runs"),
    ("lora_ranks", [4.5], "`lora_ranks` entry `4.5` must be an integer"),
    ("text.lora_ranks", [16, 16], "`text.lora_ranks` lists a value twice"),
    ("rtd_lrs", [3e-5, 1e-3], "`rtd_lrs` holds [0.001], not in `ft_lrs`"),
    ("text.rtd_lrs", [1e-3], "`text.rtd_lrs` holds [0.001], not in `ft_lrs`"),
    ("rho_sweep", [0.5, 0.5], "lists a value twice"),
    ("controls_rho_sweep", [0.3], "holds [0.3], not in `rho_sweep`"),
    ("online_transforms_sweep", ["all", "fog"], "`online_transforms_sweep` has unknown entry 'fog'"),
    ("controls_online_sweep", ["stain"], "`controls_online_sweep` holds ['stain'], not in `online_transforms_sweep`"),
    ("ood_online.pgd_target", "both", "`ood_online.pgd_target` = 'both' is unknown; choose one of teacher, student"),
    ("lora.rank", 0, "`lora.rank` must be >= 1"),
    ("lora.target_modules", "((", "not a valid regular expression"),
    ("sdft.temperature", 0, "`sdft.temperature` must be > 0"),
    ("l2sp.alpha", -1, "`l2sp.alpha` must be >= 0"),
    ("train.bn_policy", "sometimes", "bn_policy"),
    ("train.lr", "fast", "must be a number"),
    ("ood.transforms", ["blur", "fog"], "unknown entry 'fog'"),
    ("ood.transforms", [], "must not be empty"),
    ("ood.blur.kernel_size", 4, "must be odd"),
    ("ood.jpeg.quality", [30, 10], "low <= high"),
    ("data.printed", [], "must not be empty"),
    ("eval.ece_bins", 0, "ece_bins` must be >= 1"),
    ("data.shortcut.p", 1.5, "`data.shortcut.p` must be <= 1"),
    ("data.shortcut.size", 0, "`data.shortcut.size` must be >= 1"),
    ("data.pretrain.decorative", [], "`data.pretrain.decorative` must not be empty"),
    ("data.pretrain.renders_per_digit.val", 0, "`data.pretrain.renders_per_digit.val` must be >= 1"),
    ("teacher.head", "zeroshot", "`teacher.head` = 'zeroshot' is unknown"),
    ("pretrain.epochs", 0, "`pretrain.epochs` must be >= 1"),
    ("erosion.inits", ["new_head"], "must include teacher"),
    ("erosion.seeds", [0], "two or more distinct"),
    ("erosion.alphas", [0.0, 0.5], "must include 0 and 1"),
    ("erosion.trend_fractions", [1.0], "two or more shares"),
    ("erosion.candidates", [0.0, 1.2], "must be <= 1"),
    ("text.data.nuisance", "rot13", "`text.data.nuisance` = 'rot13' is unknown"),
    ("text.data.zeroshot_top_k", 1, "needs `text.data.dataset: wordnet` and k >= 2"),
    ("text.data.dataset", "bible_books", "needs `text.data.dataset: wordnet`"),
    ("text.teacher.head", "linear", "`text.teacher.head` = 'linear' is unknown"),
    ("text.erosion.candidates", ["none", "rot13"], "`text.erosion.candidates` has unknown entry 'rot13'"),
    ("text.erosion.seeds", [3], "`text.erosion.seeds` must be two or more distinct"),
    ("text.erosion.alphas", [0.0, 0.5], "`text.erosion.alphas` must include 0 and 1"),
]


@pytest.mark.parametrize("key,value,message", CASES, ids=[f"{k}={v}" for k, v, _ in CASES])
def test_bad_param_is_rejected_with_a_message(key, value, message):
    p = default_params()
    _set(p, key, value)
    with pytest.raises(ParamError, match=re.escape(message)):
        validate(p)


def test_default_params_are_valid():
    validate(default_params())


def test_d_ood_from_one_class_keeps_the_online_per_class_runs_valid():
    p = default_params()
    p["ood"]["transforms"] = ["pgd"]   # README's ablation `-S 'ood.transforms=[pgd]'`; rtd_online@blur still runs blur
    validate(p)


def test_missing_key_is_named():
    p = default_params()
    del p["train"]["lr"]
    with pytest.raises(ParamError, match="missing key `train.lr`"):
        validate(p)


def test_stage_prints_one_line_and_exits_2_without_traceback(tmp_path):
    p = default_params()
    p["temperature"] = -1
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    proc = subprocess.run([sys.executable, "-m", "rtd.stages.train", "--arm", "rtd", "--seed", "0"], cwd=tmp_path,
                          capture_output=True, text=True, env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == ["error [train]: params.yaml: `temperature` must be > 0, got -1"]
    assert not (tmp_path / "models").exists()


def test_unknown_method_on_the_command_line(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(default_params()))
    proc = subprocess.run([sys.executable, "-m", "rtd.stages.train", "--arm", "sgd", "--seed", "0"], cwd=tmp_path,
                          capture_output=True, text=True, env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2 and "unknown training arm 'sgd'" in proc.stderr and "Traceback" not in proc.stderr


def test_params_are_read_as_yaml_1_2_like_dvc_writes_them(tmp_path):
    # `dvc exp run -S train.lr=1e-5` writes `1e-05`: a float in YAML 1.2, a string in PyYAML's YAML 1.1
    from rtd.config import load_params, load_yaml

    assert load_yaml("a: 1e-05\nb: 1.0e-2\nc: on\nd: true\ne: 3\nf: .5\n") == {
        "a": 1e-05, "b": 0.01, "c": "on", "d": True, "e": 3, "f": 0.5}
    text = (ROOT / "params.yaml").read_text().replace("\nlambda_ar: ", "\nlambda_ar: 1e-2  # ", 1)
    (tmp_path / "params.yaml").write_text(text)
    assert load_params(tmp_path / "params.yaml")["lambda_ar"] == 0.01


def test_an_unknown_key_is_named_with_the_closest_known_one():
    from rtd.config import check_unknown_keys

    p = default_params()
    p["train"]["warmup_stpes"] = 7
    validate(p)
    with pytest.raises(ParamError, match=r"unknown key `train.warmup_stpes`; did you mean `train.warmup_steps`\?"):
        check_unknown_keys(p)
    p = default_params()
    p["text"]["train"]["epochz"] = 2
    validate(p)
    with pytest.raises(ParamError, match=r"unknown key `text.train.epochz`; did you mean `text.train.epochs`\?"):
        check_unknown_keys(p)
    check_unknown_keys(default_params())


def test_a_misspelt_key_is_suggested_where_the_right_one_is_missing():
    p = default_params()
    p["lamda_kd"] = p.pop("lambda_kd")
    with pytest.raises(ParamError, match=r"missing key `lambda_kd` \(params.yaml has `lamda_kd`: misspelt\?\)"):
        validate(p)
