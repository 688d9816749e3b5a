"""Pilot (issue 18, item 4): which ID nuisance gives fine-tuning ID accuracy to gain and still erodes OOD?

    PYTHONPATH=src python scripts/pilot_id_nuisance.py [none clutter grating invert lowc]

Applies each candidate to train / id_val / id_test of the pipeline's data (`dvc repro teacher` first; run it with
`data.id_texture.contrast: 0` for the clean renders), evaluates θ_T, then FT from θ_T at lr 1e-4 and 3e-4, seeds 0-1.
A measurement for docs/pipeline.md ("The ID texture"), not a pipeline stage; `grating` is what `data.id_texture` became.
"""
import sys, time, numpy as np, torch
from pathlib import Path
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from rtd.config import load_params
from rtd.data.splits import load_split, Split
from rtd.arms import build_method
from rtd.models import backbone_spec, load_model
from rtd.train import train
from rtd.evaluate import evaluate_splits
from rtd.io import seed_everything

p = load_params(ROOT / "params.yaml")
D = str(ROOT / "data/vision") + "/"
S = {s: load_split(D + f"{s}.safetensors") for s in ("train", "id_val", "id_test", "ood_val", "ood_test")}
spec = backbone_spec(p)

def clutter(x, seed, k=6, width=2):
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(seed); out = x.copy()
    for i in range(len(x)):
        im = Image.fromarray(out[i, 0]); d = ImageDraw.Draw(im)
        for _ in range(k):
            a, b = rng.uniform(0, 64, 2), rng.uniform(0, 64, 2)
            d.line([tuple(a), tuple(b)], fill=int(rng.integers(0, 120)), width=width)
        out[i, 0] = np.asarray(im)
    return out

def grating(x, seed, c=0.5):
    rng = np.random.default_rng(seed); out = x.astype(np.float32)
    yy, xx = np.mgrid[0:64, 0:64]
    for i in range(len(x)):
        th, ph, f = rng.uniform(0, np.pi), rng.uniform(0, 2*np.pi), rng.uniform(0.15, 0.35)
        g = 0.5 + 0.5*np.sin(f*(np.cos(th)*xx + np.sin(th)*yy) + ph)
        out[i, 0] = out[i, 0] * (1 - c * g)
    return np.clip(out, 0, 255).astype(np.uint8)

def invert(x, seed):
    return 255 - x

def lowcontrast_noise(x, seed, c=0.35, s=40):
    rng = np.random.default_rng(seed)
    out = 255 - (255 - x.astype(np.float32)) * c + rng.normal(0, s, x.shape) - 40
    return np.clip(out, 0, 255).astype(np.uint8)

kinds = {"none": None, "clutter": clutter, "grating": grating, "invert": invert, "lowc": lowcontrast_noise}
sel = sys.argv[1:] or list(kinds)
tp = p["train"]
for name in sel:
    fn = kinds[name]
    sp = dict(S)
    if fn is not None:
        for i, s in enumerate(("train", "id_val", "id_test")):
            sp[s] = Split(fn(S[s].images, 100 + i), S[s].labels, S[s].domains, S[s].domain_names)
    teacher = load_model(str(ROOT / "models/teacher/model.safetensors"), spec)
    ev = lambda m: evaluate_splits(m, sp["id_test"], sp["ood_val"], sp["ood_test"], 64, 15, id_val=sp["id_val"])
    mt = ev(teacher)
    print(f"{name}: teacher id {mt['id_acc']:.3f} id_val {mt['id_val_acc']:.3f} ood_val {mt['ood_val_acc']:.3f} ood_mean {mt['ood_domain_mean_acc']:.3f}", flush=True)
    for lr in (1e-4, 3e-4):
        for seed in (0, 1):
            seed_everything(seed, 2)
            m = build_method("ft", p, lr); model = load_model(str(ROOT / "models/teacher/model.safetensors"), spec)
            r = train(model, m, sp["train"], sp["id_val"], sp["ood_val"], tp, seed, progress=False)
            me = ev(r.model)
            print(f"  ft lr {lr} seed {seed}: id {me['id_acc']:.3f} id_val {me['id_val_acc']:.3f} ood_val {me['ood_val_acc']:.3f} ood_mean {me['ood_domain_mean_acc']:.3f} best_ep {r.best_epoch}", flush=True)
